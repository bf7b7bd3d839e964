#version 450
// qomni — greedy sampling on the GPU: out[out_off] = argmax x[off .. off + n), ties to the
// lower index, so only one integer comes back per decoded token.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n, off, out_off; } p;
layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer OBuf { uint o[]; };

shared uint best_sh[32];

void
main ()
{
  const uint tid = gl_LocalInvocationID.x;
  float bv = -1.0 / 0.0;
  uint bi = 0xffffffffu;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x[p.off + i];
    if (bi == 0xffffffffu || v > bv) {
      bv = v;
      bi = i;
    }
  }
  const float gm = wg_max (bi == 0xffffffffu ? -1.0 / 0.0 : bv);
  const uint cand = subgroupMin ((bi != 0xffffffffu && bv == gm) ? bi : 0xffffffffu);
  if (gl_SubgroupInvocationID == 0)
    best_sh[gl_SubgroupID] = cand;
  barrier ();
  if (tid == 0) {
    uint b = 0xffffffffu;
    for (uint g = 0; g < gl_NumSubgroups; g++)
      b = min (b, best_sh[g]);
    o[p.out_off] = b;
  }
}
