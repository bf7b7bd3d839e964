/* qomni — random weights. */
#include "random-weights.h"

#include "error.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* splitmix64: a fast, well-mixed counter-based generator */
static inline guint64
mix64 (guint64 x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The distribution of one tensor: value i is center + (2u − 1)·halfwidth, u from a hash of
 * (base + i). */
typedef struct {
  guint64 base;
  float center, halfwidth;
} Dist;

static Dist
dist_for (const QomniTensorSpec *s, guint64 seed)
{
  Dist d = { .base = mix64 (seed ^ g_str_hash (s->name) * 0x100000001b3ull) };
  if (s->ndim == 1) {
    gboolean gain = g_str_has_suffix (s->name, "norm.weight") ||
                    g_str_has_suffix (s->name, "layernorm.weight") ||
                    strstr (s->name, ".ln_") != NULL || strstr (s->name, ".norm") != NULL;
    if (gain && !g_str_has_suffix (s->name, ".bias")) {
      d.center = 1.0f;
      d.halfwidth = 0.2f;
    } else if (g_str_has_suffix (s->name, ".scale") || g_str_has_suffix (s->name, ".gamma")) {
      d.center = 0.1f;
      d.halfwidth = 0.05f;
    } else {
      d.halfwidth = 0.1f;   /* biases, Snake alpha/beta (log scale) */
    }
  } else {
    int64_t fan_in = 1;
    for (int k = 1; k < s->ndim; k++)
      fan_in *= s->shape[k];
    if (g_str_has_suffix (s->name, "embed_tokens.weight") || strstr (s->name, "embedding"))
      fan_in = 1;   /* embedding rows are inputs, not products: unit scale */
    d.halfwidth = sqrtf (3.0f / (float) MAX (fan_in, 1));
  }
  return d;
}

static inline float
dist_value (const Dist *d, int64_t i)
{
  const guint64 r = mix64 (d->base + (guint64) i);
  const float u = (float) (r >> 40) * (1.0f / 16777216.0f);   /* [0, 1) */
  return d->center + (2.0f * u - 1.0f) * d->halfwidth;
}

void
qomni_random_fill (const QomniTensorSpec *s, QomniDType dtype, guint64 seed, void *dst,
                   gsize nbytes)
{
  const int64_t n = (int64_t) (nbytes / (gsize) qomni_dtype_info (dtype)->block_bytes);
  const Dist d = dist_for (s, seed);
#pragma omp parallel for schedule(static) if (n > 1 << 16)
  for (int64_t i = 0; i < n; i++) {
    const float v = dist_value (&d, i);
    switch (dtype) {
      case QOMNI_DTYPE_F32: ((float *) dst)[i] = v; break;
      case QOMNI_DTYPE_BF16: ((guint16 *) dst)[i] = qomni_f32_to_bf16 (v); break;
      case QOMNI_DTYPE_F16: ((guint16 *) dst)[i] = qomni_f32_to_f16 (v); break;
      default: g_assert_not_reached ();
    }
  }
}

/* Block formats: each row made in f32 and quantized by the thread that writes it, rows split
 * over the threads as the products split them (schedule(static) over rows), so on a
 * multi-socket host each row's pages land on the node of the thread that later reads them.
 * The values are those qomni_random_fill gives in f32. */
static void
random_fill_blocks (const QomniTensorSpec *s, QomniDType dtype, guint64 seed, void *data,
                    int64_t rows, int64_t cols)
{
  const Dist d = dist_for (s, seed);
  const size_t row_bytes = qomni_dtype_nbytes (dtype, cols);
#pragma omp parallel
  {
    float *tmp = g_new (float, cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t c = 0; c < cols; c++)
        tmp[c] = dist_value (&d, r * cols + c);
      guint8 *dst = (guint8 *) data + (size_t) r * row_bytes;
      if (dtype == QOMNI_DTYPE_Q8_0)
        qomni_quantize_row_q8_0 (tmp, dst, cols);   /* = the reference, faster */
      else
        qomni_quantize_row_q4_0_ref (tmp, (QomniBlockQ4_0 *) dst, cols);
    }
    g_free (tmp);
  }
}

QomniWeights *
qomni_random_weights (GPtrArray *specs, QomniDType matrix_dtype, guint64 seed,
                      QomniRandomWeightsFlags flags, GError **error)
{
  const QomniDTypeInfo *qi = qomni_dtype_info (matrix_dtype);
  g_autofree QomniDType *dtypes = g_new (QomniDType, MAX (specs->len, 1));
  g_autofree gsize *offsets = g_new (gsize, specs->len + 1);
  /* One allocation, each tensor at a 64-byte boundary: huge pages can back it whole (a
   * 1.7 MB expert on its own would never fill one) and no temporary is freed in between,
   * so every page is first touched by the thread that fills it. */
  offsets[0] = 0;
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    const int64_t cols = s->shape[s->ndim - 1];
    dtypes[i] = (s->ndim == 2 && cols % qi->block_elems == 0) ? matrix_dtype : QOMNI_DTYPE_F32;
    offsets[i + 1] = offsets[i] + ((qomni_dtype_nbytes (dtypes[i], n) + 63) & ~(gsize) 63);
  }
  const gsize huge = 2u << 20;
  const gsize total = (MAX (offsets[specs->len], 1) + huge - 1) & ~(huge - 1);
  void *arena = NULL;
  if (posix_memalign (&arena, huge, total) != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory making %u random tensors (%zu bytes)", specs->len, total);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  if (flags & QOMNI_RANDOM_WEIGHTS_HUGE_PAGES)
    madvise (arena, total, MADV_HUGEPAGE);   /* advice only: ignored where THP is off */
#endif
  QomniWeights *w = qomni_weights_new_empty ("(random weights in memory)");
  qomni_weights_take_buffer (w, arena);
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    const QomniDType dtype = dtypes[i];
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    const int64_t cols = s->shape[s->ndim - 1];
    const gsize nbytes = qomni_dtype_nbytes (dtype, n);
    void *data = (guint8 *) arena + offsets[i];
    if (qi->block_elems == 1 || dtype == QOMNI_DTYPE_F32)
      qomni_random_fill (s, dtype, seed, data, nbytes);
    else
      random_fill_blocks (s, dtype, seed, data, n / cols, cols);
    QomniTensor t = { .name = s->name, .dtype = dtype, .ndim = s->ndim, .data = data,
                      .nbytes = nbytes, .file = "(memory)" };
    memcpy (t.shape, s->shape, sizeof t.shape);
    qomni_weights_add_tensor (w, &t);
  }
  return w;
}
