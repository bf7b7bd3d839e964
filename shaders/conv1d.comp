#version 450
// qomni — causal 1-D convolution over time-major activations x [L, cin] → y [M, R], as a
// tiled product whose input matrix is gathered on the fly (implicit im2col): output row m,
// column r sums W(r, a, ci) · x[src(m, a), ci] over taps a and input channels ci, plus the
// bias. The weight is read in its PyTorch layout, so nothing is permuted at load time.
//
// default (Conv1d, weight [cout, cin, k]): R = cout, taps = k, src = m − (k−1)·d + a·d,
//   rows before 0 read as zero (the causal left pad); M = L.
// TRANSPOSED (ConvTranspose1d, weight [cin, cout, k], k = q·s, trimmed by k − s on both
//   sides as the reference's CausalTransConv1d): output time m·s + p is column
//   r = p·cout + co of block m, which reads inputs m … m+q−1 through kernel tap
//   p + (q−1−a)·s; so R = s·cout, taps = q, src = m + a, M = L − q + 1. y [M, s·cout] is
//   the same memory as [M·s, cout].
//
// Tiles as matmul.comp: 64 columns × 64 output rows per workgroup of 256, K in steps of 16
// through shared memory; NARROW: 16 columns × 256 rows, for the last blocks' few channels
// (R ≤ 32), where a 64-wide tile would mostly compute padding. Each thread owns a 4 × 4
// block either way. flags bit 0: y += result (a residual); bit 1: add the bias.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push {
  uint L, M, cin, cout, k, dil, stride, w_off, x_off, y_off, b_off, flags;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };
layout (std430, binding = 3) readonly buffer BBuf { float bias[]; };

#ifdef NARROW
#define BM 16
#define BN 256
#else
#define BM 64
#define BN 64
#endif
#define BK 16

shared float ws[BK][BM + 1];
shared float xs[BK][BN + 1];

void
main ()
{
#ifdef TRANSPOSED
  const uint taps = p.k / p.stride, R = p.stride * p.cout;
#else
  const uint taps = p.k, R = p.cout;
#endif
  const uint K = taps * p.cin;
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint t0 = gl_WorkGroupID.y * BN;
  const uint tr = (tid % (BM / 4u)) * 4u;
  const uint tc = (tid / (BM / 4u)) * 4u;
  float acc[4][4];
  for (uint i = 0; i < 4; i++)
    for (uint j = 0; j < 4; j++)
      acc[i][j] = 0.0;

  for (uint k0 = 0; k0 < K; k0 += BK) {
    for (uint l = tid; l < BM * BK; l += WG) {
      const uint row = l / BK, kk = k0 + l % BK;
      const uint a = kk / p.cin, ci = kk % p.cin;
      const uint r = r0 + row;
      float wv = 0.0;
      if (r < R && kk < K) {
#ifdef TRANSPOSED
        const uint pp = r / p.cout, co = r % p.cout;
        wv = w_elem (p.w_off + (ci * p.cout + co) * p.k + pp + (taps - 1u - a) * p.stride);
#else
        wv = w_elem (p.w_off + (r * p.cin + ci) * p.k + a);
#endif
      }
      ws[l % BK][row] = wv;
    }
    for (uint l = tid; l < BN * BK; l += WG) {
      const uint col = l / BK, kk = k0 + l % BK;
      const uint a = kk / p.cin, ci = kk % p.cin;
      const uint m = t0 + col;
      float xv = 0.0;
      if (m < p.M && kk < K) {
#ifdef TRANSPOSED
        const int src = int (m + a);
#else
        const int src = int (m) - int ((p.k - 1u) * p.dil) + int (a * p.dil);
#endif
        if (src >= 0)
          xv = x[p.x_off + uint (src) * p.cin + ci];
      }
      xs[l % BK][col] = xv;
    }
    barrier ();
    for (uint kk = 0; kk < BK; kk++) {
      vec4 a = vec4 (ws[kk][tr], ws[kk][tr + 1u], ws[kk][tr + 2u], ws[kk][tr + 3u]);
      vec4 b = vec4 (xs[kk][tc], xs[kk][tc + 1u], xs[kk][tc + 2u], xs[kk][tc + 3u]);
      for (uint j = 0; j < 4; j++)
        for (uint i = 0; i < 4; i++)
          acc[j][i] += a[i] * b[j];
    }
    barrier ();
  }
  for (uint j = 0; j < 4; j++) {
    const uint m = t0 + tc + j;
    if (m >= p.M)
      break;
    for (uint i = 0; i < 4; i++) {
      const uint r = r0 + tr + i;
      if (r >= R)
        break;
      float v = acc[j][i];
      if ((p.flags & 2u) != 0u)
        v += bias[p.b_off + r % p.cout];
      const uint o = p.y_off + m * R + r;
      y[o] = (p.flags & 1u) != 0u ? y[o] + v : v;
    }
  }
}
