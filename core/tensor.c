/* qomni — dtype table and scalar conversions. */
#include "tensor.h"
#include "quant.h"

#include <math.h>
#include <string.h>

static const QomniDTypeInfo dtype_table[] = {
  [QOMNI_DTYPE_F32]  = { "f32",  "F32",  1, 4 },
  [QOMNI_DTYPE_F16]  = { "f16",  "F16",  1, 2 },
  [QOMNI_DTYPE_BF16] = { "bf16", "BF16", 1, 2 },
  [QOMNI_DTYPE_I64]  = { "i64",  "I64",  1, 8 },
  [QOMNI_DTYPE_I32]  = { "i32",  "I32",  1, 4 },
  [QOMNI_DTYPE_U8]   = { "u8",   "U8",   1, 1 },
  [QOMNI_DTYPE_Q8_0] = { "q8_0", NULL,  QOMNI_QK8_0, sizeof (QomniBlockQ8_0) },
  [QOMNI_DTYPE_Q4_0] = { "q4_0", NULL,  QOMNI_QK4_0, sizeof (QomniBlockQ4_0) },
};
_Static_assert (G_N_ELEMENTS (dtype_table) == QOMNI_DTYPE_COUNT, "one row per dtype");

const QomniDTypeInfo *
qomni_dtype_info (QomniDType dtype)
{
  g_return_val_if_fail (dtype >= 0 && dtype < QOMNI_DTYPE_COUNT, NULL);
  return &dtype_table[dtype];
}

gboolean
qomni_dtype_from_safetensors (const char *name, QomniDType *out)
{
  for (int i = 0; i < QOMNI_DTYPE_COUNT; i++) {
    if (dtype_table[i].safetensors && strcmp (dtype_table[i].safetensors, name) == 0) {
      *out = (QomniDType) i;
      return TRUE;
    }
  }
  return FALSE;
}

size_t
qomni_dtype_nbytes (QomniDType dtype, int64_t n)
{
  const QomniDTypeInfo *info = qomni_dtype_info (dtype);
  return (size_t) (n / info->block_elems) * (size_t) info->block_bytes;
}

int64_t
qomni_tensor_nelements (const QomniTensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

char *
qomni_shape_string (int ndim, const int64_t *shape, char *buf, size_t len)
{
  size_t at = 0;
  at += (size_t) g_snprintf (buf, len, "[");
  for (int i = 0; i < ndim && at < len; i++)
    at += (size_t) g_snprintf (buf + at, len - at, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  if (at < len)
    g_snprintf (buf + at, len - at, "]");
  return buf;
}

float
qomni_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  union { uint32_t u; float f; } v;
  if (exp == 0) {
    /* zero or subnormal: value = man * 2^-24 */
    float f = ldexpf ((float) man, -24);
    return sign ? -f : f;
  } else if (exp == 31) {
    v.u = sign | 0x7f800000u | (man << 13);
  } else {
    v.u = sign | ((exp + 112) << 23) | (man << 13);
  }
  return v.f;
}

uint16_t
qomni_f32_to_f16 (float f)
{
  union { uint32_t u; float f; } v = { .f = f };
  uint32_t sign = (v.u >> 16) & 0x8000;
  float a = fabsf (f);
  if (isnan (f))
    return (uint16_t) (sign | 0x7e00);
  if (a >= 65520.0f)
    return (uint16_t) (sign | 0x7c00);
  if (a < 6.103515625e-05f) {
    /* subnormal half: round a / 2^-24 to nearest even */
    float m = nearbyintf (a * 16777216.0f);
    return (uint16_t) (sign | (uint32_t) m);
  }
  uint32_t u = v.u & 0x7fffffffu;
  uint32_t exp = (u >> 23) - 112;
  uint32_t man = u & 0x7fffff;
  uint32_t h = (exp << 10) | (man >> 13);
  uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    h++;
  return (uint16_t) (sign | h);
}

void
qomni_to_f32 (QomniDType dtype, const void *src, float *dst, int64_t n)
{
  switch (dtype) {
    case QOMNI_DTYPE_F32:
      memcpy (dst, src, (size_t) n * sizeof (float));
      break;
    case QOMNI_DTYPE_BF16: {
      const uint16_t *s = src;
      for (int64_t i = 0; i < n; i++)
        dst[i] = qomni_bf16_to_f32 (s[i]);
      break;
    }
    case QOMNI_DTYPE_F16: {
      const uint16_t *s = src;
      for (int64_t i = 0; i < n; i++)
        dst[i] = qomni_f16_to_f32 (s[i]);
      break;
    }
    case QOMNI_DTYPE_Q8_0:
      qomni_dequantize_row_q8_0 (src, dst, n);
      break;
    case QOMNI_DTYPE_Q4_0:
      qomni_dequantize_row_q4_0 (src, dst, n);
      break;
    default:
      g_assert_not_reached ();
  }
}
