#version 450
// qomni — tiled matrix product for prompts and encoders: y[t, r] (+)= W[r, :] · x[t, :].
//
// 256 threads as 16 (weight rows) × 16 (tokens); each thread a TM × TN block, so a
// workgroup computes a BM = 16·TM by BN = 16·TN tile. Variants (glslc -D):
//   TM 4, TN 4   64 × 64     the general tile
//   TM 8, TN 8   128 × 128   large products: 64 outputs per thread for 4 shared loads of
//                            16 bytes per k, where 4 × 4 gets 16 for 2
//   TM 4, TN 1   64 × 16     few token rows (≤ 16): no FMAs on 48 empty token columns
// K advances in steps of 16 through shared memory held as vec4 (a thread's 4 rows or 4
// tokens in one load, conflict-free); weights are read 8 at a time through weights.glsl
// (one 16-byte load for f16/bf16) and dequantized on the way in. Double buffered: the next
// step's global loads are issued into registers before this step's FMAs (their latency
// hides behind the arithmetic) and stored into the other shared buffer after them, so a
// step needs one barrier.
//
// Split-K: workgroup z takes k in [z·k_chunk, min((z+1)·k_chunk, cols)). With more than one
// split, binding 2 is the partial buffer: split z writes its partial product to
// y[y_off + z·part_stride + t·y_stride + r] and matmul_reduce.comp sums the splits (then
// accumulates, adds the bias). Products with few tokens thus fill the GPU: 104 rows × 1280
// are 40 tiles of 64 × 64 for 132 SMs without it.
// One split: y (+)= (ACCUMULATE, flags bit 0) W·x, then + bias[b_off + r] (BIAS, bit 7;
// binding 3) and act (act.glsl) — so the bias after an accumulation, as bias_act did.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"
#include "act.glsl"

layout (push_constant) uniform Push {
  uint rows, cols, n, w_off, x_off, x_stride, y_off, y_stride, flags, k_chunk, part_stride,
      b_off, act;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };
layout (std430, binding = 3) readonly buffer BBuf { float bias[]; };

#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif
#define NT 256   // threads: the pipeline table's spec constant 0
#define BM (16 * TM)
#define BN (16 * TN)
#define BK 16
// per thread and k step: units of 8 weights, units of 4 activations
#define WU ((BM * BK / 8 + NT - 1) / NT)
#define XU ((BN * BK / 4 + NT - 1) / NT)

// One vec4 of padding per k row spreads the transposing writes over the banks; the
// 128 × 128 tile goes without, so its two buffers fit in 32 KiB (lavapipe's limit).
#if BM >= 128
#define PAD 0
#else
#define PAD 1
#endif
shared vec4 ws[2][BK][BM / 4 + PAD];
#if TN >= 4
shared vec4 xs[2][BK][BN / 4 + PAD];
#else
shared float xs1[2][BK][BN];
#endif

vec4 wlo[WU], whi[WU];   // the next step's weights and activations, in flight
vec4 xr[XU];

void
load_step (uint k0, uint kend, uint r0, uint t0, bool w_units, bool x_units)
{
  const uint tid = gl_LocalInvocationID.x;
  for (uint u = 0; u < WU; u++) {
    const uint l = tid + u * NT;
    const uint h = l % (BK / 8), row = l / (BK / 8);
    const uint gr = r0 + row, gk = k0 + 8u * h;
    vec4 lo = vec4 (0.0), hi = vec4 (0.0);
    if (l < BM * (BK / 8) && gr < p.rows) {
      const uint e = p.w_off + gr * p.cols + gk;
      if (w_units && gk + 8u <= kend) {
        w_unit8 (e, lo, hi);
      } else {
        for (uint i = 0; i < 4; i++) {
          lo[i] = gk + i < kend ? w_elem (e + i) : 0.0;
          hi[i] = gk + 4u + i < kend ? w_elem (e + 4u + i) : 0.0;
        }
      }
    }
    wlo[u] = lo;
    whi[u] = hi;
  }
  for (uint u = 0; u < XU; u++) {
    const uint l = tid + u * NT;
    const uint q = l % (BK / 4), tok = l / (BK / 4);
    const uint gt = t0 + tok, gk = k0 + 4u * q;
    vec4 v = vec4 (0.0);
    if (l < BN * (BK / 4) && gt < p.n) {
      const uint a = p.x_off + gt * p.x_stride + gk;
      if (x_units && gk + 4u <= kend) {
        v = x4[a >> 2];
      } else {
        for (uint i = 0; i < 4; i++)
          v[i] = gk + i < kend ? x[a + i] : 0.0;
      }
    }
    xr[u] = v;
  }
}

void
store_step (uint buf)
{
  const uint tid = gl_LocalInvocationID.x;
  for (uint u = 0; u < WU; u++) {
    const uint l = tid + u * NT;
    if (l < BM * (BK / 8)) {
      const uint h = l % (BK / 8), row = l / (BK / 8);
      for (uint i = 0; i < 4; i++) {
        ws[buf][8u * h + i][row >> 2][row & 3u] = wlo[u][i];
        ws[buf][8u * h + 4u + i][row >> 2][row & 3u] = whi[u][i];
      }
    }
  }
  for (uint u = 0; u < XU; u++) {
    const uint l = tid + u * NT;
    if (l < BN * (BK / 4)) {
      const uint q = l % (BK / 4), tok = l / (BK / 4);
      for (uint i = 0; i < 4; i++)
#if TN >= 4
        xs[buf][4u * q + i][tok >> 2][tok & 3u] = xr[u][i];
#else
        xs1[buf][4u * q + i][tok] = xr[u][i];
#endif
    }
  }
}

void
main ()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % 16u, ty = tid / 16u;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint t0 = gl_WorkGroupID.y * BN;
  const uint kbeg = gl_WorkGroupID.z * p.k_chunk;
  const uint kend = min (kbeg + p.k_chunk, p.cols);
  // 8 weights (4 activations) per load when every unit starts on a multiple of 8 (4)
  const bool w_units = p.cols % 8u == 0u && p.w_off % 8u == 0u;
  const bool x_units = p.x_stride % 4u == 0u && p.x_off % 4u == 0u;

  float acc[TN][TM];
  for (uint j = 0; j < TN; j++)
    for (uint i = 0; i < TM; i++)
      acc[j][i] = 0.0;

  if (kbeg < kend) {
    load_step (kbeg, kend, r0, t0, w_units, x_units);
    store_step (0u);
  }
  barrier ();
  uint cur = 0u;
  for (uint k0 = kbeg; k0 < kend; k0 += BK) {
    const bool more = k0 + BK < kend;
    if (more)
      load_step (k0 + BK, kend, r0, t0, w_units, x_units);
    for (uint k = 0; k < BK; k++) {
      vec4 a[TM / 4];
      for (uint g = 0; g < TM / 4; g++)
        a[g] = ws[cur][k][g * 16u + tx];
#if TN >= 4
      vec4 b[TN / 4];
      for (uint g = 0; g < TN / 4; g++)
        b[g] = xs[cur][k][g * 16u + ty];
      for (uint j = 0; j < TN; j++)
        for (uint i = 0; i < TM; i++)
          acc[j][i] += a[i / 4u][i % 4u] * b[j / 4u][j % 4u];
#else
      const float b = xs1[cur][k][ty];
      for (uint i = 0; i < TM; i++)
        acc[0][i] += a[i / 4u][i % 4u] * b;
#endif
    }
    // the other buffer was last read a step ago, before the barrier that ended it
    if (more)
      store_step (cur ^ 1u);
    barrier ();
    cur ^= 1u;
  }

  const bool split = gl_NumWorkGroups.z > 1u;
  for (uint j = 0; j < TN; j++) {
#if TN >= 4
    const uint t = t0 + (j / 4u) * 64u + ty * 4u + j % 4u;
#else
    const uint t = t0 + ty;
#endif
    if (t >= p.n)
      continue;
    for (uint i = 0; i < TM; i++) {
      const uint r = r0 + (i / 4u) * 64u + tx * 4u + i % 4u;
      if (r >= p.rows)
        continue;
      float v = acc[j][i];
      if (split) {
        y[p.y_off + gl_WorkGroupID.z * p.part_stride + t * p.y_stride + r] = v;
      } else {
        const uint o = p.y_off + t * p.y_stride + r;
        if ((p.flags & 1u) != 0u)
          v += y[o];
        if ((p.flags & 128u) != 0u)
          v = apply_act (v + bias[p.b_off + r], p.act);
        y[o] = v;
      }
    }
  }
}
