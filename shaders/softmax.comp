#version 450
// qomni — softmax over each of n rows of dim, in place, one workgroup per row.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, dim, off; } p;
layout (std430, binding = 0) buffer XBuf { float x[]; };

void
main ()
{
  const uint base = p.off + gl_WorkGroupID.x * p.dim;
  const uint tid = gl_LocalInvocationID.x;
  float m = -1.0 / 0.0;
  for (uint i = tid; i < p.dim; i += WG)
    m = max (m, x[base + i]);
  m = wg_max (m);
  float s = 0.0;
  for (uint i = tid; i < p.dim; i += WG) {
    const float e = exp (x[base + i] - m);
    x[base + i] = e;
    s += e;
  }
  const float inv = 1.0 / wg_sum (s);
  for (uint i = tid; i < p.dim; i += WG)
    x[base + i] *= inv;
}
