#version 450
// qomni — elementwise ops, one per define: SILU_MUL (x = silu(x)·y), GELU (erf), GELU_TANH,
// ADD (y += x), SCALE (x *= s). Grid-stride, so any n fits the grid.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, x_off, y_off; float s; } p;
layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) buffer YBuf { float y[]; };

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); GLSL has none.
float
erf_approx (float v)
{
  const float t = 1.0 / (1.0 + 0.3275911 * abs (v));
  const float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                     + t * (-1.453152027 + t * 1.061405429))));
  return sign (v) * (1.0 - poly * exp (-v * v));
}

void
main ()
{
  const uint stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
    const uint a = p.x_off + i;
#if defined(SILU_MUL)
    const float g = x[a];
    x[a] = g / (1.0 + exp (-g)) * y[p.y_off + i];
#elif defined(GELU)
    const float v = x[a];
    x[a] = 0.5 * v * (1.0 + erf_approx (v * 0.70710678118654752));
#elif defined(GELU_TANH)
    const float v = x[a];
    const float u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    // tanh through exp, clamped so exp does not overflow
    const float e = exp (-2.0 * abs (u));
    x[a] = 0.5 * v * (1.0 + sign (u) * (1.0 - e) / (1.0 + e));
#elif defined(ADD)
    y[p.y_off + i] += x[a];
#elif defined(SCALE)
    x[a] *= p.s;
#endif
  }
}
