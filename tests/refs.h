/* qomni tests — reading the transformers reference fixtures and comparing numbers.
 *
 * The fixtures live in ../shared/fixtures (QOMNI_SHARED_DIR, set by meson). Comparisons
 * report the normwise relative error max|a − b| / max|b|, the figure tolerances are
 * stated in. */
#pragma once

#include "config.h"
#include "weights.h"
#include "ops-cpu.h"

#include <glib.h>
#include <math.h>

/* (transfer full) Path under the shared fixtures folder. */
static inline char *
refs_path (const char *rel)
{
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  if (!shared)
    shared = "../shared";
  return g_build_filename (shared, "fixtures", rel, NULL);
}

static inline QomniWeights *
refs_open (const char *rel)
{
  g_autofree char *p = refs_path (rel);
  GError *error = NULL;
  QomniWeights *w = qomni_weights_open (p, &error);
  g_assert_no_error (error);
  return w;
}

/* A float32 reference tensor, checked for its element count. (transfer none) */
static inline const float *
refs_f32 (QomniWeights *refs, const char *name, int64_t expect_n)
{
  const QomniTensor *t = qomni_weights_find (refs, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  g_assert_cmpint (t->dtype, ==, QOMNI_DTYPE_F32);
  if (expect_n >= 0)
    g_assert_cmpint (qomni_tensor_nelements (t), ==, expect_n);
  return t->data;
}

/* (transfer full) An int64 reference tensor as ints. */
static inline int *
refs_ints (QomniWeights *refs, const char *name, int *n)
{
  const QomniTensor *t = qomni_weights_find (refs, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  g_assert_cmpint (t->dtype, ==, QOMNI_DTYPE_I64);
  int64_t count = qomni_tensor_nelements (t);
  int *out = g_new (int, MAX (count, 1));
  for (int64_t i = 0; i < count; i++)
    out[i] = (int) ((const gint64 *) t->data)[i];
  *n = (int) count;
  return out;
}

/* The tiny-omni fixture: its checkpoint, its config and what transformers computed. */
typedef struct {
  QomniWeights *w, *refs;
  QomniConfig *cfg;
} RefsTiny;

static inline void
refs_tiny_load (RefsTiny *t)
{
  GError *error = NULL;
  t->w = refs_open ("tiny-omni");
  t->refs = refs_open ("tiny-omni/refs.safetensors");
  g_autofree char *cfg_path = refs_path ("tiny-omni/config.json");
  t->cfg = qomni_config_load (cfg_path, &error);
  g_assert_no_error (error);
}

static inline void
refs_tiny_clear (RefsTiny *t)
{
  qomni_config_free (t->cfg);
  qomni_weights_free (t->refs);
  qomni_weights_free (t->w);
}

static inline double
rel_error (const float *a, const float *ref, int64_t n)
{
  double maxdiff = 0.0, maxref = 0.0;
  for (int64_t i = 0; i < n; i++) {
    maxdiff = fmax (maxdiff, fabs ((double) a[i] - ref[i]));
    maxref = fmax (maxref, fabs ((double) ref[i]));
  }
  return maxref > 0 ? maxdiff / maxref : maxdiff;
}

/* Normalized mean squared error Σ(a−b)² / Σb². */
static inline double
nmse (const float *a, const float *ref, int64_t n)
{
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < n; i++) {
    num += ((double) a[i] - ref[i]) * ((double) a[i] - ref[i]);
    den += (double) ref[i] * ref[i];
  }
  return den > 0 ? num / den : num;
}

#define assert_close(what, a, ref, n, tol)                                                  \
  G_STMT_START {                                                                           \
    double e_ = rel_error ((a), (ref), (n));                                               \
    if (g_test_verbose () || e_ > (tol))                                                   \
      g_printerr ("# %s: relative error %.3g (tolerance %.1g)\n", (what), e_, (double) (tol)); \
    g_assert_cmpfloat (e_, <=, (tol));                                                     \
  } G_STMT_END
