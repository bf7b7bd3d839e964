#version 450
// qomni — SnakeBeta over time-major [n, C]: y = x + inv_beta[c] · sin²(x · alpha[c]), with
// alpha = exp(α) and inv_beta = 1/(exp(β) + 1e-9) taken from the checkpoint's log-space
// parameters on the CPU once (binding 2: alpha at a_off, inv_beta at b_off). y may be x.
// The argument is reduced by 2π in two parts first: the vocoder's signal reaches tens
// before the clamp, where a GPU's fast sin loses digits.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, C, x_off, y_off, a_off, b_off; } p;

layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer PBuf { float par[]; };

void
main ()
{
  const uint total = p.n * p.C, step = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += step) {
    const uint c = i % p.C;
    const float v = x[p.x_off + i];
    const float u = v * par[p.a_off + c];
    const float turns = round (u * 0.15915494309189535);
    const float r = (u - turns * 6.28125) - turns * 1.9353071795864769e-3;
    const float sn = sin (r);
    y[p.y_off + i] = v + par[p.b_off + c] * sn * sn;
  }
}
