// qomni shaders — reading one weight dtype from binding 0 through 32-bit words, so no
// 8- or 16-bit storage feature is needed. Exactly one of WTYPE_F32, WTYPE_F16,
// WTYPE_BF16, WTYPE_Q8_0, WTYPE_Q4_0 is defined (glslc -D).
//
//   float w_elem (uint e)                  element e, any alignment
//   void w_unit8 (uint e, out vec4 lo, out vec4 hi)
//                                          elements e .. e+7, e a multiple of 8
// Block formats are ggml's: Q8_0 = f16 d + 32 int8 (34 bytes), Q4_0 = f16 d + 16 bytes of
// nibbles, element i < 16 in the low nibble of byte i, element i ≥ 16 in the high nibble of
// byte i − 16 (18 bytes). Blocks are 2-byte aligned, so words are stitched from halves.

layout (std430, binding = 0) readonly buffer WBuf { uint w[]; };
layout (std430, binding = 0) readonly buffer WBuf4 { uvec4 w4[]; };

vec2
bf16x2 (uint u)
{
  return vec2 (uintBitsToFloat (u << 16), uintBitsToFloat (u & 0xffff0000u));
}

// 32 bits starting at byte offset `off`, which is a multiple of 2.
uint
w_read32_a2 (uint off)
{
  uint i = off >> 2;
  if ((off & 2u) == 0u)
    return w[i];
  return (w[i] >> 16) | (w[i + 1u] << 16);
}

uint
w_read16 (uint off)
{
  return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xffffu;
}

uint
w_read8 (uint off)
{
  return (w[off >> 2] >> ((off & 3u) * 8u)) & 0xffu;
}

float
f16_to_f32 (uint h)
{
  return unpackHalf2x16 (h).x;
}

#if defined(WTYPE_F32)
float w_elem (uint e) { return uintBitsToFloat (w[e]); }
void
w_unit8 (uint e, out vec4 lo, out vec4 hi)
{
  lo = uintBitsToFloat (w4[e >> 2]);
  hi = uintBitsToFloat (w4[(e >> 2) + 1u]);
}
#elif defined(WTYPE_F16)
float w_elem (uint e) { return unpackHalf2x16 (w[e >> 1])[e & 1u]; }
void
w_unit8 (uint e, out vec4 lo, out vec4 hi)
{
  uvec4 u = w4[e >> 3];
  lo = vec4 (unpackHalf2x16 (u.x), unpackHalf2x16 (u.y));
  hi = vec4 (unpackHalf2x16 (u.z), unpackHalf2x16 (u.w));
}
#elif defined(WTYPE_BF16)
float w_elem (uint e) { return bf16x2 (w[e >> 1])[e & 1u]; }
void
w_unit8 (uint e, out vec4 lo, out vec4 hi)
{
  uvec4 u = w4[e >> 3];
  lo = vec4 (bf16x2 (u.x), bf16x2 (u.y));
  hi = vec4 (bf16x2 (u.z), bf16x2 (u.w));
}
#elif defined(WTYPE_Q8_0)
float
w_elem (uint e)
{
  uint base = (e >> 5) * 34u;
  int q = bitfieldExtract (int (w_read8 (base + 2u + (e & 31u))), 0, 8);
  return f16_to_f32 (w_read16 (base)) * float (q);
}
vec4
i8x4 (uint u)
{
  ivec4 v = ivec4 (bitfieldExtract (int (u), 0, 8), bitfieldExtract (int (u), 8, 8),
                   bitfieldExtract (int (u), 16, 8), bitfieldExtract (int (u), 24, 8));
  return vec4 (v);
}
void
w_unit8 (uint e, out vec4 lo, out vec4 hi)
{
  uint base = (e >> 5) * 34u;
  float d = f16_to_f32 (w_read16 (base));
  uint off = base + 2u + (e & 31u);
  lo = d * i8x4 (w_read32_a2 (off));
  hi = d * i8x4 (w_read32_a2 (off + 4u));
}
#elif defined(WTYPE_Q4_0)
float
w_elem (uint e)
{
  uint base = (e >> 5) * 18u;
  uint j = e & 31u;
  uint b = w_read8 (base + 2u + (j & 15u));
  uint q = j < 16u ? (b & 15u) : (b >> 4);
  return f16_to_f32 (w_read16 (base)) * (float (q) - 8.0);
}
vec4
nib4 (uint u, uint shift)
{
  uvec4 v = (uvec4 (u, u >> 8, u >> 16, u >> 24) >> shift) & 15u;
  return vec4 (v) - 8.0;
}
void
w_unit8 (uint e, out vec4 lo, out vec4 hi)
{
  uint base = (e >> 5) * 18u;
  float d = f16_to_f32 (w_read16 (base));
  uint j = e & 31u;
  uint off = base + 2u + (j & 15u);
  uint shift = j < 16u ? 0u : 4u;
  lo = d * nib4 (w_read32_a2 (off), shift);
  hi = d * nib4 (w_read32_a2 (off + 4u), shift);
}
#else
#error "define one WTYPE_*"
#endif
