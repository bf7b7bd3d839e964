#version 450
// qomni — tiled matrix product for prefill: y[t, r] (+)= W[r, :] · x[t, :].
//
// A workgroup of 256 threads computes a 64 (weight rows) × 64 (tokens) tile; each thread
// a 4 × 4 block. K advances in steps of 16 through shared memory, weights dequantized
// on the way in, so every weight element is read once per 64 tokens.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push {
  uint rows, cols, n, w_off, x_off, x_stride, y_off, y_stride, flags;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };

#define BM 64
#define BN 64
#define BK 16

shared float ws[BK][BM + 1];
shared float xs[BK][BN + 1];

void
main ()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint t0 = gl_WorkGroupID.y * BN;
  const uint tr = (tid % 16u) * 4u;   // this thread's rows within the tile
  const uint tc = (tid / 16u) * 4u;   // and tokens
  float acc[4][4];
  for (uint i = 0; i < 4; i++)
    for (uint j = 0; j < 4; j++)
      acc[i][j] = 0.0;

  for (uint k0 = 0; k0 < p.cols; k0 += BK) {
    for (uint l = tid; l < BM * BK; l += WG) {
      const uint row = l / BK, k = l % BK;
      const uint gr = r0 + row, gk = k0 + k;
      ws[k][row] = (gr < p.rows && gk < p.cols) ? w_elem (p.w_off + gr * p.cols + gk) : 0.0;
      const uint gt = t0 + row;
      xs[k][row] = (gt < p.n && gk < p.cols) ? x[p.x_off + gt * p.x_stride + gk] : 0.0;
    }
    barrier ();
    for (uint k = 0; k < BK; k++) {
      vec4 a = vec4 (ws[k][tr], ws[k][tr + 1u], ws[k][tr + 2u], ws[k][tr + 3u]);
      vec4 b = vec4 (xs[k][tc], xs[k][tc + 1u], xs[k][tc + 2u], xs[k][tc + 3u]);
      for (uint j = 0; j < 4; j++)
        for (uint i = 0; i < 4; i++)
          acc[j][i] += a[i] * b[j];
    }
    barrier ();
  }
  for (uint j = 0; j < 4; j++) {
    const uint t = t0 + tc + j;
    if (t >= p.n)
      break;
    for (uint i = 0; i < 4; i++) {
      const uint r = r0 + tr + i;
      if (r >= p.rows)
        break;
      const uint o = p.y_off + t * p.y_stride + r;
      y[o] = (p.flags & 1u) != 0u ? y[o] + acc[j][i] : acc[j][i];
    }
  }
}
