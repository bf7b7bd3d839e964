/* qomni — random weights. */
#include "random-weights.h"

#include "error.h"
#include "quant.h"

#include <math.h>
#include <string.h>

/* splitmix64: a fast, well-mixed counter-based generator */
static inline guint64
mix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void
qomni_random_fill (const QomniTensorSpec *s, QomniDType dtype, guint64 seed, void *dst,
                   gsize nbytes)
{
  const int64_t n = (int64_t) (nbytes / (gsize) qomni_dtype_info (dtype)->block_bytes);
  const guint64 base = mix64 (seed ^ g_str_hash (s->name) * 0x100000001b3ull);
  float center = 0.0f, halfwidth;
  if (s->ndim == 1) {
    gboolean gain = g_str_has_suffix (s->name, "norm.weight") ||
                    g_str_has_suffix (s->name, "layernorm.weight") ||
                    strstr (s->name, ".ln_") != NULL || strstr (s->name, ".norm") != NULL;
    if (gain && !g_str_has_suffix (s->name, ".bias")) {
      center = 1.0f;
      halfwidth = 0.2f;
    } else if (g_str_has_suffix (s->name, ".scale") || g_str_has_suffix (s->name, ".gamma")) {
      center = 0.1f;
      halfwidth = 0.05f;
    } else {
      halfwidth = 0.1f;   /* biases, Snake alpha/beta (log scale) */
    }
  } else {
    int64_t fan_in = 1;
    for (int d = 1; d < s->ndim; d++)
      fan_in *= s->shape[d];
    if (g_str_has_suffix (s->name, "embed_tokens.weight") || strstr (s->name, "embedding"))
      fan_in = 1;   /* embedding rows are inputs, not products: unit scale */
    halfwidth = sqrtf (3.0f / (float) MAX (fan_in, 1));
  }
#pragma omp parallel for schedule(static) if (n > 1 << 20)
  for (int64_t i = 0; i < n; i++) {
    const guint64 r = mix64 (base + (guint64) i);
    const float u = (float) (r >> 40) * (1.0f / 16777216.0f);   /* [0, 1) */
    const float v = center + (2.0f * u - 1.0f) * halfwidth;
    switch (dtype) {
      case QOMNI_DTYPE_F32: ((float *) dst)[i] = v; break;
      case QOMNI_DTYPE_BF16: ((guint16 *) dst)[i] = qomni_f32_to_bf16 (v); break;
      case QOMNI_DTYPE_F16: ((guint16 *) dst)[i] = qomni_f32_to_f16 (v); break;
      default: g_assert_not_reached ();
    }
  }
}

QomniWeights *
qomni_random_weights (GPtrArray *specs, QomniDType matrix_dtype, guint64 seed, GError **error)
{
  QomniWeights *w = qomni_weights_new_empty ("(random weights in memory)");
  const QomniDTypeInfo *qi = qomni_dtype_info (matrix_dtype);
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    const int64_t cols = s->shape[s->ndim - 1];
    QomniDType dtype = (s->ndim == 2 && cols % qi->block_elems == 0) ? matrix_dtype
                                                                      : QOMNI_DTYPE_F32;
    const gsize nbytes = qomni_dtype_nbytes (dtype, n);
    void *data = g_try_malloc (MAX (nbytes, 1));
    if (!data) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                   "out of memory making %s (%zu bytes)", s->name, nbytes);
      qomni_weights_free (w);
      return NULL;
    }
    if (qi->block_elems == 1 || dtype == QOMNI_DTYPE_F32) {
      qomni_random_fill (s, dtype, seed, data, nbytes);
    } else {
      /* block formats: make f32 rows, quantize each with the reference quantizer */
      const int64_t rows = n / cols;
      const size_t row_bytes = qomni_dtype_nbytes (dtype, cols);
      QomniTensorSpec row_spec = *s;
      float *all = g_try_new (float, n);
      if (!all) {
        g_free (data);
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory making %s", s->name);
        qomni_weights_free (w);
        return NULL;
      }
      qomni_random_fill (&row_spec, QOMNI_DTYPE_F32, seed, all, (gsize) n * sizeof (float));
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; r++) {
        guint8 *dst = (guint8 *) data + (size_t) r * row_bytes;
        if (dtype == QOMNI_DTYPE_Q8_0)
          qomni_quantize_row_q8_0_ref (all + r * cols, (QomniBlockQ8_0 *) dst, cols);
        else
          qomni_quantize_row_q4_0_ref (all + r * cols, (QomniBlockQ4_0 *) dst, cols);
      }
      g_free (all);
    }
    qomni_weights_take_buffer (w, data);
    QomniTensor t = { .name = s->name, .dtype = dtype, .ndim = s->ndim, .data = data,
                      .nbytes = nbytes, .file = "(memory)" };
    memcpy (t.shape, s->shape, sizeof t.shape);
    qomni_weights_add_tensor (w, &t);
  }
  return w;
}
