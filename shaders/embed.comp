#version 450
// qomni — embedding lookup: y[t, :] = W[ids[ids_off + t], :] in f32, one workgroup per token.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push { uint cols, n, ids_off, y_off; } p;
layout (std430, binding = 1) readonly buffer IdsBuf { uint ids[]; };
layout (std430, binding = 2) writeonly buffer YBuf { float y[]; };

void
main ()
{
  const uint t = gl_WorkGroupID.y;
  const uint row = ids[p.ids_off + t];
  for (uint c = gl_LocalInvocationID.x; c < p.cols; c += WG)
    y[p.y_off + t * p.cols + c] = w_elem (row * p.cols + c);
}
