#version 450
// qomni — random Q8_0 / Q4_0 weights made on the GPU (the quantized full-size benchmarks):
// the uniform values fill_random.comp makes for element i, quantized as the CPU reference
// quantizers do (core/quant.c), written as ggml blocks. One invocation writes a pair of
// blocks, so it writes whole 32-bit words (2 × 34 = 17 words for Q8_0, 2 × 18 = 9 for
// Q4_0); a last, odd block is written alone and zero-pads its final half word, which the
// buffer's 16-byte rounding always holds.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint n_blocks, off_words, seed, q4; float scale; } p;
layout (std430, binding = 0) writeonly buffer OBuf { uint o[]; };

uint
hash (uint v)
{
  // PCG-style permutation (the one fill_random.comp uses)
  uint s = v * 747796405u + 2891336453u;
  uint w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

float
uni (uint i)
{
  return p.scale * (float (hash (i ^ hash (p.seed)) >> 8) * (2.0 / 16777216.0) - 1.0);
}

uint words[17];

void
put_byte (uint k, uint v)
{
  words[k >> 2] |= (v & 0xffu) << ((k & 3u) * 8u);
}

// Block b's bytes at byte k0 of words[]; returns its size in bytes.
uint
make_block (uint b, uint k0)
{
  float v[32];
  float amax = 0.0, vmax = 0.0;
  for (uint i = 0u; i < 32u; i++) {
    v[i] = uni (b * 32u + i);
    if (abs (v[i]) > amax) {
      amax = abs (v[i]);
      vmax = v[i];
    }
  }
  if (p.q4 == 0u) {
    // Q8_0: d = amax / 127, q = round half away from zero (x / d)
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    const uint dh = packHalf2x16 (vec2 (d, 0.0));
    put_byte (k0, dh);
    put_byte (k0 + 1u, dh >> 8);
    for (uint i = 0u; i < 32u; i++) {
      const float s = v[i] * id;
      put_byte (k0 + 2u + i, uint (int (sign (s) * floor (abs (s) + 0.5))));
    }
    return 34u;
  }
  // Q4_0: the value of largest magnitude maps to −8; q = min (15, trunc (x / d + 8.5))
  const float d = vmax / -8.0;
  const float id = d != 0.0 ? 1.0 / d : 0.0;
  const uint dh = packHalf2x16 (vec2 (d, 0.0));
  put_byte (k0, dh);
  put_byte (k0 + 1u, dh >> 8);
  for (uint i = 0u; i < 16u; i++) {
    const uint q0 = min (15u, uint (max (v[i] * id + 8.5, 0.0)));
    const uint q1 = min (15u, uint (max (v[i + 16u] * id + 8.5, 0.0)));
    put_byte (k0 + 2u + i, q0 | (q1 << 4));
  }
  return 18u;
}

void
main ()
{
  const uint stride = gl_NumWorkGroups.x * WG;
  const uint n_pairs = (p.n_blocks + 1u) / 2u;
  const uint pair_words = p.q4 == 0u ? 17u : 9u;
  for (uint pr = gl_GlobalInvocationID.x; pr < n_pairs; pr += stride) {
    for (uint i = 0u; i < 17u; i++)
      words[i] = 0u;
    uint bytes = make_block (2u * pr, 0u);
    if (2u * pr + 1u < p.n_blocks)
      bytes += make_block (2u * pr + 1u, bytes);
    const uint n_words = (bytes + 3u) / 4u;
    const uint base = p.off_words + pr * pair_words;
    for (uint i = 0u; i < n_words; i++)
      o[base + i] = words[i];
  }
}
