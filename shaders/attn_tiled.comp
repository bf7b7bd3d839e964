#version 450
// qomni — prompt attention, tiled (flash attention). A workgroup of 128 takes BR = 32 query
// "pairs" (row, head) of one KV head: pairs are numbered row-major over (row, head of the
// group), so for GQA the nh / nkv query heads of a row sit side by side and every K/V tile
// serves all of them. The tile's visible keys stream through shared memory BC at a time
// with an online softmax (running max and sum per pair); the output is written once.
// Four threads (lanes) per pair: lane l holds the pair's query and output dims of vec4s
// l, l + 4, … in registers; a key's score is the sum of the four lanes' partial dots.
// float32 throughout. Visible keys as attention.comp (causal with q_pos0, window, block).
// Grid (⌈n·nh/nkv / 32⌉, nkv). Needs hd % 4 == 0, hd ≤ 128, k_off, v_off and kv_stride
// multiples of 4, and the pipeline table's WG = 128.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, m, nh, nkv, hd, q_off, q_stride, k_off, v_off, kv_stride, o_off, o_stride, q_pos0,
      causal, window;
  float scale;
  uint span, n_chunks;   // ATTN_SPLIT's; unused here
  uint block;
} p;

layout (std430, binding = 0) readonly buffer QBuf { float q[]; };
layout (std430, binding = 1) readonly buffer KBuf { vec4 k4[]; };
layout (std430, binding = 2) readonly buffer VBuf { vec4 v4[]; };
layout (std430, binding = 3) writeonly buffer OBuf { float o[]; };

const uint BR = 32u;   // pairs per workgroup: WG / 4
const uint BC = 32u;   // keys per tile
const uint HV = 8u;    // vec4s of a head per lane: hd ≤ 4 · 4 · HV = 128
const uint ST = 8u;    // vec4s of a K or V tile per thread: BC · 32 / WG

shared vec4 kv_sh[BC * 32u];           // one K or V tile, key c at c · hd/4
shared float p_sh[BR * (BC + 1u)];     // probabilities; the pad keeps pairs on other banks

vec4 stage[ST];   // this thread's share of the next tile, loaded ahead of its use
// (the loops over the register arrays stage, qv, acc and s are unrolled: constant indices
// keep them in registers)

// Keys [lo, hi) that the query at position pos sees (qomni_cpu_attention's rule; with
// block > 0 only its own block, bidirectional).
uvec2
visible (uint pos)
{
  const uint b0 = p.block > 0u ? pos / p.block * p.block : 0u;
  const uint b1 = p.block > 0u ? b0 + p.block : p.m;
  const uint hi = min (p.causal != 0u ? min (p.m, pos + 1u) : p.m, b1);
  const uint lo = max (p.window > 0u && pos + 1u > p.window ? pos + 1u - p.window : 0u, b0);
  return uvec2 (lo, hi);
}

// Loads keys j0 … j0 + BC − 1 of K (or V) into stage[]; keys at or past hi read as zero.
void
fetch (bool values, uint j0, uint hi, uint kvh)
{
  const uint hd4 = p.hd / 4u, tid = gl_LocalInvocationID.x;
  [[unroll]] for (uint u = 0u; u < ST; u++) {
    const uint e = tid + u * WG, c = e / hd4, j = j0 + c;
    stage[u] = vec4 (0.0);
    if (c < BC && j < hi) {
      const uint at = (j * p.kv_stride + kvh * p.hd) / 4u + e % hd4;
      stage[u] = values ? v4[p.v_off / 4u + at] : k4[p.k_off / 4u + at];
    }
  }
}

void
store ()
{
  const uint hd4 = p.hd / 4u, tid = gl_LocalInvocationID.x;
  [[unroll]] for (uint u = 0u; u < ST; u++)
    if (tid + u * WG < BC * hd4)
      kv_sh[tid + u * WG] = stage[u];
}

void
main ()
{
  // Numbered through the subgroups, so that lane ^ 1 and lane ^ 2 are the shuffles' partners
  // whatever the driver's mapping of local invocations to subgroups (subgroups are full:
  // their size divides 128).
  const uint t = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
  const uint lane = t & 3u, pr = t >> 2u;
  const uint hd4 = p.hd / 4u, G = p.nh / p.nkv, kvh = gl_WorkGroupID.y;
  // the last tiles of rows see the most keys under a causal mask: they start first
  const uint pairs = p.n * G, f0 = (gl_NumWorkGroups.x - 1u - gl_WorkGroupID.x) * BR;
  const uint f = min (f0 + pr, pairs - 1u);   // pairs past the end repeat the last one
  const uint r = f / G, h = kvh * G + f % G;
  const uvec2 own = visible (p.q_pos0 + r);
  // the tile's key range: lo and hi never decrease with the position
  const uint lo = visible (p.q_pos0 + f0 / G).x;
  const uint hi = visible (p.q_pos0 + (min (f0 + BR, pairs) - 1u) / G).y;

  vec4 qv[HV], acc[HV];
  const uint qo = p.q_off + r * p.q_stride + h * p.hd;
  [[unroll]] for (uint k = 0u; k < HV; k++) {
    const uint i = 4u * (lane + 4u * k);
    qv[k] = lane + 4u * k < hd4
        ? vec4 (q[qo + i], q[qo + i + 1u], q[qo + i + 2u], q[qo + i + 3u]) * p.scale
        : vec4 (0.0);
    acc[k] = vec4 (0.0);
  }
  // The running max starts at a finite floor, and hidden keys score −∞: a pair that has
  // seen no key yet keeps corr = 1 and adds exp(−∞) = 0.
  float m_run = -1e30, l_run = 0.0;
  const float NEG_INF = -1.0 / 0.0;

  fetch (false, lo, hi, kvh);
  for (uint j0 = lo; j0 < hi; j0 += BC) {
    barrier ();   // the last tile's readers are done with kv_sh and p_sh
    store ();     // K
    barrier ();
    fetch (true, j0, hi, kvh);   // V loads while the scores are computed

    // Partial dots of every key of the tile over this lane's dims ...
    float s[BC];
    [[unroll]] for (uint c = 0u; c < BC; c++) {
      float d = 0.0;
      [[unroll]] for (uint k = 0u; k < HV; k++)
        if (lane + 4u * k < hd4)
          d += dot (qv[k], kv_sh[c * hd4 + lane + 4u * k]);
      s[c] = d;
    }
    // ... summed over the four lanes, each lane keeping a quarter: lanes 0, 1 add their
    // partner's (lane ^ 2) keys 0 … 15, lanes 2, 3 keys 16 … 31; then the same with lane ^ 1
    // on eight. Lane l ends with the full scores of keys 8l … 8l + 7 in s[0 … 7].
    const bool up2 = (lane & 2u) != 0u, up1 = (lane & 1u) != 0u;
    [[unroll]] for (uint c = 0u; c < BC / 2u; c++) {
      const float give = up2 ? s[c] : s[c + BC / 2u];
      s[c] = (up2 ? s[c + BC / 2u] : s[c]) + subgroupShuffleXor (give, 2u);
    }
    [[unroll]] for (uint c = 0u; c < BC / 4u; c++) {
      const float give = up1 ? s[c] : s[c + BC / 4u];
      s[c] = (up1 ? s[c + BC / 4u] : s[c]) + subgroupShuffleXor (give, 1u);
    }

    // Online softmax over the pair's visible keys of the tile.
    float mx = m_run;
    [[unroll]] for (uint c = 0u; c < BC / 4u; c++) {
      const uint j = j0 + 8u * lane + c;
      s[c] = j >= own.x && j < own.y ? s[c] : NEG_INF;
      mx = max (mx, s[c]);
    }
    mx = max (mx, subgroupShuffleXor (mx, 1u));
    mx = max (mx, subgroupShuffleXor (mx, 2u));
    const float corr = exp (m_run - mx);
    float sum = 0.0;
    [[unroll]] for (uint c = 0u; c < BC / 4u; c++) {
      const float pc = exp (s[c] - mx);
      p_sh[pr * (BC + 1u) + 8u * lane + c] = pc;
      sum += pc;
    }
    sum += subgroupShuffleXor (sum, 1u);
    sum += subgroupShuffleXor (sum, 2u);
    l_run = l_run * corr + sum;
    m_run = mx;

    barrier ();   // the scores are done with K
    store ();     // V
    barrier ();   // V and p_sh visible
    if (j0 + BC < hi)
      fetch (false, j0 + BC, hi, kvh);   // the next K loads during the products

    [[unroll]] for (uint k = 0u; k < HV; k++)
      acc[k] *= corr;
    [[unroll]] for (uint c = 0u; c < BC; c++) {
      const float w = p_sh[pr * (BC + 1u) + c];
      [[unroll]] for (uint k = 0u; k < HV; k++)
        if (lane + 4u * k < hd4)
          acc[k] += w * kv_sh[c * hd4 + lane + 4u * k];
    }
  }

  if (f0 + pr >= pairs)
    return;
  const float inv = l_run > 0.0 ? 1.0 / l_run : 0.0;   // no visible key: zeros, as the CPU
  const uint oo = p.o_off + r * p.o_stride + h * p.hd;
  [[unroll]] for (uint k = 0u; k < HV; k++) {
    const uint i = 4u * (lane + 4u * k);
    if (lane + 4u * k < hd4) {
      const vec4 y = acc[k] * inv;
      o[oo + i] = y.x;
      o[oo + i + 1u] = y.y;
      o[oo + i + 2u] = y.z;
      o[oo + i + 3u] = y.w;
    }
  }
}
