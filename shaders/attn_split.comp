#version 450
// qomni — split-K attention for decode (flash-decoding), pass 1 of 2. One workgroup per
// (query head h, query row r, chunk c of the visible keys): chunk c covers keys
// [lo + c·span, lo + (c + 1)·span) ∩ [lo, hi), so a short decode batch spreads over many
// workgroups instead of walking the whole cache in one. Keys go by in tiles of TILE; each
// key's dot product is split over WG / TILE threads (adjacent threads read adjacent vec4s
// of the key), the tile's scores update a running softmax, and each thread accumulates
// output dims d = tid + i·WG. Writes the chunk's unnormalized output, its max and its sum
// to the partial buffer; attn_combine.comp merges the chunks. Empty chunks write
// (−inf, 0, 0). Needs hd % 4 == 0, hd ≤ 256, WG % TILE == 0. Visible keys as attention.comp.
// dyn ≠ 0 (a decode step recorded once and replayed): the first query position comes from
// step[dyn_off] at run time, m = q_pos0 + n, and the span is the one qomni_vk_attn_split
// picks for that m; the grid covers the most chunks the cache can need (n_chunks), and the
// chunks past the live ones are empty.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (constant_id = 1) const uint TILE = 32;

layout (push_constant) uniform Push {
  uint n, m, nh, nkv, hd, q_off, q_stride, k_off, v_off, kv_stride, o_off, o_stride, q_pos0,
      causal, window;
  float scale;
  uint span, n_chunks;
  uint block;
  uint dyn, dyn_off;
} p;

layout (std430, binding = 0) readonly buffer QBuf { float q[]; };
layout (std430, binding = 1) readonly buffer KBuf4 { vec4 k4[]; };
layout (std430, binding = 2) readonly buffer VBuf { float v[]; };
// partial: acc [n, nh, n_chunks, hd] at o_off, then (max, sum) [n, nh, n_chunks, 2]
layout (std430, binding = 3) writeonly buffer PBuf { float part[]; };
layout (std430, binding = 4) readonly buffer StepBuf { uint step[]; };

// QOMNI_VK_ATTN_MAX_CHUNKS of vk-ops.h: the split rule's most chunks
const uint MAX_CHUNKS = 128u;

shared vec4 qs[64];
shared float sc[WG];
shared float ps[TILE];

void
main ()
{
  const uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y, c = gl_WorkGroupID.z;
  const uint tid = gl_LocalInvocationID.x;
  const uint kvh = h / (p.nh / p.nkv);
  uint q_pos0 = p.q_pos0, m = p.m, span = p.span;
  if (p.dyn != 0u) {
    q_pos0 = step[p.dyn_off];
    m = q_pos0 + p.n;
    const uint tiles = (m + TILE - 1u) / TILE;
    span = max ((tiles + MAX_CHUNKS - 1u) / MAX_CHUNKS, 1u) * TILE;
  }
  const uint pos = q_pos0 + r;
  // block > 0: only keys of the query's own block [b0, b0 + block) (bidirectional
  // attention within segments: the encoders' windows and images)
  const uint b0 = p.block > 0u ? pos / p.block * p.block : 0u;
  const uint b1 = p.block > 0u ? b0 + p.block : m;
  const uint hi = min (p.causal != 0u ? min (m, pos + 1u) : m, b1);
  const uint lo = max (p.window > 0u && pos + 1u > p.window ? pos + 1u - p.window : 0u, b0);
  const uint c_lo = min (lo + c * span, hi);
  const uint c_hi = min (hi, c_lo + span);
  const uint hd4 = p.hd / 4u;
  const uint qo = p.q_off + r * p.q_stride + h * p.hd;
  for (uint i = tid; i < hd4; i += WG)
    qs[i] = vec4 (q[qo + 4u * i], q[qo + 4u * i + 1u], q[qo + 4u * i + 2u], q[qo + 4u * i + 3u]);
  barrier ();

  const uint TPK = WG / TILE;          // threads per key
  const uint kk = tid / TPK, part_i = tid % TPK;
  float m_run = -1.0 / 0.0, l_run = 0.0;
  float acc0 = 0.0, acc1 = 0.0;
  const uint d0 = tid, d1 = tid + WG;
  for (uint j0 = c_lo; j0 < c_hi; j0 += TILE) {
    const uint j = j0 + kk;
    float dsum = 0.0;
    if (j < c_hi) {
      const uint kb = (p.k_off + j * p.kv_stride + kvh * p.hd) / 4u;
      for (uint i = part_i; i < hd4; i += TPK)
        dsum += dot (qs[i], k4[kb + i]);
    }
    sc[tid] = dsum;
    barrier ();
    const uint cnt = min (TILE, c_hi - j0);
    if (tid < TILE) {
      float s = 0.0;
      for (uint t = 0; t < TPK; t++)
        s += sc[tid * TPK + t];
      ps[tid] = s * p.scale;
    }
    barrier ();
    float tmax = ps[0];
    for (uint jj = 1; jj < cnt; jj++)
      tmax = max (tmax, ps[jj]);
    const float m_new = max (m_run, tmax);
    const float corr = exp (m_run - m_new);
    barrier ();   // everyone has read the scores before they become weights
    if (tid < cnt)
      ps[tid] = exp (ps[tid] - m_new);
    barrier ();
    float tsum = 0.0;
    const uint vb = p.v_off + j0 * p.kv_stride + kvh * p.hd;
    acc0 *= corr;
    acc1 *= corr;
    for (uint jj = 0; jj < cnt; jj++) {
      const float w = ps[jj];
      tsum += w;
      if (d0 < p.hd)
        acc0 += w * v[vb + jj * p.kv_stride + d0];
      if (d1 < p.hd)
        acc1 += w * v[vb + jj * p.kv_stride + d1];
    }
    l_run = l_run * corr + tsum;
    m_run = m_new;
    barrier ();   // sc and ps are rewritten by the next tile
  }
  const uint rh = r * p.nh + h;
  const uint ob = p.o_off + (rh * p.n_chunks + c) * p.hd;
  if (d0 < p.hd)
    part[ob + d0] = acc0;
  if (d1 < p.hd)
    part[ob + d1] = acc1;
  if (tid == 0u) {
    const uint mb = p.o_off + p.n * p.nh * p.n_chunks * p.hd + (rh * p.n_chunks + c) * 2u;
    part[mb] = m_run;
    part[mb + 1u] = l_run;
  }
}
