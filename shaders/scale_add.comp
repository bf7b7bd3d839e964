#version 450
// qomni — residual add with a per-channel scale (LayerScale, ConvNeXt's gamma):
// x[t, c] += g[c] · y[t, c] over [n, C]. Grid-stride over n·C.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, C, x_off, y_off, g_off; } p;

layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer GBuf { float g[]; };

void
main ()
{
  const uint total = p.n * p.C, step = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += step)
    x[p.x_off + i] += y[p.y_off + i] * g[p.g_off + i % p.C];
}
