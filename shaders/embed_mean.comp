#version 450
// qomni — Code2Wav's code embedding: the mean over Q codebooks of stacked table rows,
// y[f, :] = (Σ_q W[q·cb + codes[codes_off + q·codes_stride + f], :]) / Q, summed in q order
// as the CPU does. One workgroup per frame (grid y).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push { uint cols, n, Q, cb, codes_off, codes_stride, y_off; } p;
layout (std430, binding = 1) readonly buffer CodesBuf { uint codes[]; };
layout (std430, binding = 2) writeonly buffer YBuf { float y[]; };

void
main ()
{
  const uint f = gl_WorkGroupID.y;
  for (uint c = gl_LocalInvocationID.x; c < p.cols; c += WG) {
    float s = 0.0;
    for (uint q = 0; q < p.Q; q++) {
      const uint row = q * p.cb + codes[p.codes_off + q * p.codes_stride + f];
      s += w_elem (row * p.cols + c);
    }
    y[p.y_off + f * p.cols + c] = s / float (p.Q);
  }
}
