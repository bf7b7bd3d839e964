/* qomni — tensors: a dtype table and a view over memory that somebody else owns.
 *
 * A QomniTensor never owns its bytes: weights point into a memory-mapped file,
 * activations into buffers the model planned at load time. Views are free.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stddef.h>

G_BEGIN_DECLS

#define QOMNI_MAX_DIMS 5

typedef enum {
  QOMNI_DTYPE_F32,
  QOMNI_DTYPE_F16,
  QOMNI_DTYPE_BF16,
  QOMNI_DTYPE_I64,
  QOMNI_DTYPE_I32,
  QOMNI_DTYPE_U8,
  QOMNI_DTYPE_Q8_0,
  QOMNI_DTYPE_Q4_0,
  QOMNI_DTYPE_COUNT
} QomniDType;

/* One row per dtype. Block formats store block_elems elements in block_bytes. */
typedef struct {
  const char *name;        /* our name, e.g. "bf16" */
  const char *safetensors; /* the safetensors header name, NULL if not stored there */
  int block_elems;
  int block_bytes;
} QomniDTypeInfo;

const QomniDTypeInfo *qomni_dtype_info (QomniDType dtype);
/* Looks a dtype up by its safetensors header name ("BF16"); returns FALSE if unknown. */
gboolean qomni_dtype_from_safetensors (const char *name, QomniDType *out);
/* Bytes taken by n elements; n must be a multiple of the block size. */
size_t qomni_dtype_nbytes (QomniDType dtype, int64_t n);

typedef struct {
  const char *name;            /* borrowed; lives as long as the weight store */
  QomniDType dtype;
  int ndim;
  int64_t shape[QOMNI_MAX_DIMS]; /* outermost first, as safetensors and PyTorch write it */
  const void *data;            /* borrowed */
  size_t nbytes;
  const char *file;            /* the file the bytes come from, for error messages */
} QomniTensor;

int64_t qomni_tensor_nelements (const QomniTensor *t);
/* "[152064, 2048]" into buf; returns buf. */
char *qomni_shape_string (int ndim, const int64_t *shape, char *buf, size_t len);

/* Scalar conversions. bf16 is the top half of an f32; f16 is IEEE half. */
static inline float
qomni_bf16_to_f32 (uint16_t h)
{
  union { uint32_t u; float f; } v = { .u = (uint32_t) h << 16 };
  return v.f;
}

/* Round to nearest even, as PyTorch does; NaN stays NaN. */
static inline uint16_t
qomni_f32_to_bf16 (float f)
{
  union { uint32_t u; float f; } v = { .f = f };
  if ((v.u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((v.u >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
  return (uint16_t) ((v.u + rounding) >> 16);
}

float qomni_f16_to_f32 (uint16_t h);
uint16_t qomni_f32_to_f16 (float f);

/* Converts n elements of a float dtype (f32, f16, bf16, q8_0, q4_0) to f32. */
void qomni_to_f32 (QomniDType dtype, const void *src, float *dst, int64_t n);

G_END_DECLS
