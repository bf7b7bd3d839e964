#version 450
// qomni — the bias and activation after a biased linear layer, in place over n rows of dim:
// x[r, c] = act(x[r, c] + b[c]), act none, GELU (erf) or GELU (tanh). The tiled matmul
// has no bias; the encoders' projections all do, and their GELU follows the bias.
// Grid-stride over n·dim, so any size fits the grid.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "act.glsl"

layout (push_constant) uniform Push {
  uint n, dim, x_off, x_stride, b_off, act;   // act: 0 none, 1 GELU erf, 2 GELU tanh
} p;

layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer BBuf { float b[]; };

void
main ()
{
  const uint total = p.n * p.dim, stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
    const uint r = i / p.dim, c = i - r * p.dim;
    const uint a = p.x_off + r * p.x_stride + c;
    const float v = apply_act (x[a] + b[p.b_off + c], p.act);
    x[a] = v;
  }
}
