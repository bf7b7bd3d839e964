/* qomni — random weights. */
#include "random-weights.h"

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
