#version 450
// qomni — scaled dot-product attention, one workgroup per (query head, query row): what
// qomni_vk_rec_attention records for heads over 128 (attn_tiled.comp takes the rest, the
// split kernels long decode caches). Keys go by in tiles of WG: each thread scores one
// key, the tile's max and sum update a running (online) softmax, and each thread
// accumulates output dims d = tid, tid + WG. GQA: query head h reads KV head
// h / (nh / nkv). Visible keys: [lo, hi) with hi = pos + 1 when causal, lo = pos − window + 1
// when window > 0, as qomni_cpu_attention; with block > 0 also only the query's own block
// of keys. Needs hd % 4 == 0, hd ≤ 2·WG.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, m, nh, nkv, hd, q_off, q_stride, k_off, v_off, kv_stride, o_off, o_stride, q_pos0,
      causal, window;
  float scale;
  uint span, n_chunks;   // ATTN_SPLIT's; unused here
  uint block;
} p;

layout (std430, binding = 0) readonly buffer QBuf { float q[]; };
layout (std430, binding = 1) readonly buffer KBuf4 { vec4 k4[]; };
layout (std430, binding = 2) readonly buffer VBuf { float v[]; };
layout (std430, binding = 3) writeonly buffer OBuf { float o[]; };

shared vec4 qs[64];
shared float ps[256];

void
main ()
{
  const uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint kvh = h / (p.nh / p.nkv);
  const uint pos = p.q_pos0 + r;
  // block > 0: only keys of the query's own block [b0, b0 + block) (bidirectional
  // attention within segments: the encoders' windows and images)
  const uint b0 = p.block > 0u ? pos / p.block * p.block : 0u;
  const uint b1 = p.block > 0u ? b0 + p.block : p.m;
  const uint hi = min (p.causal != 0u ? min (p.m, pos + 1u) : p.m, b1);
  const uint lo = max (p.window > 0u && pos + 1u > p.window ? pos + 1u - p.window : 0u, b0);
  const uint hd4 = p.hd / 4u;
  const uint qo = p.q_off + r * p.q_stride + h * p.hd;
  for (uint i = tid; i < hd4; i += WG)
    qs[i] = vec4 (q[qo + 4u * i], q[qo + 4u * i + 1u], q[qo + 4u * i + 2u], q[qo + 4u * i + 3u]);
  barrier ();

  float m_run = -1.0 / 0.0, l_run = 0.0;
  float acc0 = 0.0, acc1 = 0.0;
  const uint d0 = tid, d1 = tid + WG;
  for (uint j0 = lo; j0 < hi; j0 += WG) {
    const uint j = j0 + tid;
    float s = -1.0 / 0.0;
    if (j < hi) {
      const uint kb = (p.k_off + j * p.kv_stride + kvh * p.hd) / 4u;
      float d = 0.0;
      for (uint i = 0; i < hd4; i++)
        d += dot (qs[i], k4[kb + i]);
      s = d * p.scale;
    }
    const float m_new = max (m_run, wg_max (s));
    const float pj = j < hi ? exp (s - m_new) : 0.0;
    const float corr = exp (m_run - m_new);
    ps[tid] = pj;
    l_run = l_run * corr + wg_sum (pj);   // wg_sum's barrier publishes ps
    acc0 *= corr;
    acc1 *= corr;
    const uint cnt = min (WG, hi - j0);
    const uint vb = p.v_off + j0 * p.kv_stride + kvh * p.hd;
    for (uint jj = 0; jj < cnt; jj++) {
      const float w = ps[jj];
      if (d0 < p.hd)
        acc0 += w * v[vb + jj * p.kv_stride + d0];
      if (d1 < p.hd)
        acc1 += w * v[vb + jj * p.kv_stride + d1];
    }
    m_run = m_new;
    barrier ();   // ps is rewritten by the next tile
  }
  const float inv = hi > lo ? 1.0 / l_run : 0.0;
  const uint oo = p.o_off + r * p.o_stride + h * p.hd;
  if (d0 < p.hd)
    o[oo + d0] = acc0 * inv;
  if (d1 < p.hd)
    o[oo + d1] = acc1 * inv;
}
