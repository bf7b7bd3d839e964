#version 450
// qomni — depthwise causal 1-D convolution (groups = channels, the ConvNeXt dwconv):
// y[t, c] = b[c] + Σ_j w[c, j] · x[t − (k−1)·d + j·d, c], rows before 0 read as zero.
// Time-major [L, C]; weight [C, k] and bias [C] in f32. Grid-stride over L·C.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint L, C, k, dil, x_off, y_off, w_off, b_off; } p;

layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer WBuf { float w[]; };

void
main ()
{
  const uint n = p.L * p.C, step = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += step) {
    const uint t = i / p.C, c = i % p.C;
    float acc = w[p.b_off + c];
    for (uint j = 0; j < p.k; j++) {
      const int s = int (t) - int ((p.k - 1u - j) * p.dil);
      if (s >= 0)
        acc += w[p.w_off + c * p.k + j] * x[p.x_off + uint (s) * p.C + c];
    }
    y[p.y_off + i] = acc;
  }
}
