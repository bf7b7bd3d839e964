#version 450
// qomni — x[r, :] += Σ_j w[r·K + j] · y[r·K + j, :]: the chosen experts' outputs weighted
// by the router, added to the residual stream in the same pass.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, H, K, x_off, y_off, w_off; } p;
layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer WBuf { float wt[]; };

void
main ()
{
  const uint h = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
  if (h >= p.H)
    return;
  float s = 0.0;
  for (uint j = 0; j < p.K; j++)
    s += wt[p.w_off + r * p.K + j] * y[p.y_off + (r * p.K + j) * p.H + h];
  x[p.x_off + r * p.H + h] += s;
}
