#version 450
// qomni — the bias and activation after a biased linear layer, in place over n rows of dim:
// x[r, c] = act(x[r, c] + b[c]), act none, GELU (erf) or GELU (tanh). The tiled matmul
// has no bias; the encoders' projections all do, and their GELU follows the bias.
// Grid-stride over n·dim, so any size fits the grid.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, dim, x_off, x_stride, b_off, act;   // act: 0 none, 1 GELU erf, 2 GELU tanh
} p;

layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer BBuf { float b[]; };

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as eltwise.comp; GLSL has none.
float
erf_as (float v)
{
  const float t = 1.0 / (1.0 + 0.3275911 * abs (v));
  const float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                     + t * (-1.453152027 + t * 1.061405429))));
  return sign (v) * (1.0 - poly * exp (-v * v));
}

void
main ()
{
  const uint total = p.n * p.dim, stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
    const uint r = i / p.dim, c = i - r * p.dim;
    const uint a = p.x_off + r * p.x_stride + c;
    float v = x[a] + b[p.b_off + c];
    if (p.act == 1u) {
      v = 0.5 * v * (1.0 + erf_as (v * 0.70710678118654752));
    } else if (p.act == 2u) {
      const float u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
      const float e = exp (-2.0 * abs (u));   // tanh through exp, without overflow
      v = 0.5 * v * (1.0 + sign (u) * (1.0 - e) / (1.0 + e));
    }
    x[a] = v;
  }
}
