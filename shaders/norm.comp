#version 450
// qomni — RMSNorm (default) or LayerNorm (-DLAYERNORM, biased variance) over rows,
// one workgroup per row; y may alias x.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, dim, x_off, x_stride, y_off, y_stride, w_off, b_off, flags;
  float eps;
} p;

layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer WBuf { float g[]; };
#ifdef LAYERNORM
layout (std430, binding = 3) readonly buffer BBuf { float b[]; };
#endif

void
main ()
{
  const uint r = gl_WorkGroupID.y * 65535u + gl_WorkGroupID.x;
  if (r >= p.n)
    return;
  const uint xo = p.x_off + r * p.x_stride, yo = p.y_off + r * p.y_stride;
  const uint tid = gl_LocalInvocationID.x;
#ifdef LAYERNORM
  float s = 0.0;
  for (uint i = tid; i < p.dim; i += WG)
    s += x[xo + i];
  const float mean = wg_sum (s) / float (p.dim);
  float v = 0.0;
  for (uint i = tid; i < p.dim; i += WG) {
    const float d = x[xo + i] - mean;
    v += d * d;
  }
  const float inv = 1.0 / sqrt (wg_sum (v) / float (p.dim) + p.eps);
  for (uint i = tid; i < p.dim; i += WG) {
    float o = (x[xo + i] - mean) * inv;
    if ((p.flags & 1u) != 0u)
      o *= g[p.w_off + i];
    if ((p.flags & 2u) != 0u)
      o += b[p.b_off + i];
    y[yo + i] = o;
  }
#else
  float s = 0.0;
  for (uint i = tid; i < p.dim; i += WG) {
    const float v = x[xo + i];
    s += v * v;
  }
  const float inv = 1.0 / sqrt (wg_sum (s) / float (p.dim) + p.eps);
  for (uint i = tid; i < p.dim; i += WG)
    y[yo + i] = x[xo + i] * inv * ((p.flags & 1u) != 0u ? g[p.w_off + i] : 1.0);
#endif
}
