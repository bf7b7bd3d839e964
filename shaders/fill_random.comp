#version 450
// qomni — random weights made on the GPU (benchmarks of the full-size model need ~60 GB
// that never exist as a file): a hash of (seed, index) gives uniform values in
// [bias − scale, bias + scale], two bf16 per word (mode 0) or one f32 (mode 1).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n_words, off_words, seed, mode; float scale, bias; } p;
layout (std430, binding = 0) writeonly buffer OBuf { uint o[]; };

uint
hash (uint v)
{
  // PCG-style permutation
  uint s = v * 747796405u + 2891336453u;
  uint w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

float
uni (uint i)
{
  return p.bias + p.scale * (float (hash (i ^ hash (p.seed)) >> 8) * (2.0 / 16777216.0) - 1.0);
}

void
main ()
{
  const uint stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < p.n_words; i += stride) {
    if (p.mode == 0u) {
      const uint a = floatBitsToUint (uni (2u * i)) >> 16;
      const uint b = floatBitsToUint (uni (2u * i + 1u)) & 0xffff0000u;
      o[p.off_words + i] = a | b;
    } else {
      o[p.off_words + i] = floatBitsToUint (uni (i));
    }
  }
}
