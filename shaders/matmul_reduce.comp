#version 450
// qomni — the second pass of a split-K matmul: y[t, r] (+)= Σ_z part[z, t, r], z < splits in
// order (so the sum does not depend on timing), then + bias[b_off + r] and act (flags as
// matmul.comp: ACCUMULATE bit 0, BIAS bit 7). part[z, t, r] at part_off + z·part_stride +
// t·rows + r. Grid-stride over n·rows.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "act.glsl"

layout (push_constant) uniform Push {
  uint rows, n, splits, part_off, part_stride, y_off, y_stride, flags, b_off, act;
} p;

layout (std430, binding = 0) readonly buffer PartBuf { float part[]; };
layout (std430, binding = 1) buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer BBuf { float bias[]; };

void
main ()
{
  const uint total = p.n * p.rows, stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
    const uint t = i / p.rows, r = i - t * p.rows;
    float v = 0.0;
    for (uint z = 0; z < p.splits; z++)
      v += part[p.part_off + z * p.part_stride + i];
    const uint o = p.y_off + t * p.y_stride + r;
    if ((p.flags & 1u) != 0u)
      v += y[o];
    if ((p.flags & 128u) != 0u)
      v = apply_act (v + bias[p.b_off + r], p.act);
    y[o] = v;
  }
}
