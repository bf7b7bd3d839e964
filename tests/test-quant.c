/* Q8_0 / Q4_0: quantize/dequantize round trips within each format's bound, and every CPU
 * dot kernel level against the scalar oracle. */
#include "quant.h"
#include "tensor.h"

#include <math.h>
#include <string.h>

static const int64_t sizes[] = { 32, 96, 4096 + 32 };

/* Dot results may differ from the oracle only by summation order: relative to the sum of
 * the absolute products, a few float roundings per block. */
#define DOT_RTOL 1e-5

static void
fill_random (GRand *r, float *x, int64_t n, double scale)
{
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) (g_rand_double_range (r, -1, 1) * scale);
}

/* Q8_0: d = amax / 127 is stored as f16 dh, x' = dh * round (x / d). Per element
 * |x - x'| <= d/2 (rounding) + 127 |d - dh| (the scale's own rounding) + float slack. */
static void
check_q8_0 (const float *x, int64_t n)
{
  g_autofree QomniBlockQ8_0 *q = g_new (QomniBlockQ8_0, n / 32);
  g_autofree float *y = g_new (float, n);
  qomni_quantize_row_q8_0_ref (x, q, n);
  qomni_dequantize_row_q8_0 (q, y, n);
  for (int64_t b = 0; b < n / 32; b++) {
    float amax = 0;
    for (int i = 0; i < 32; i++)
      amax = fmaxf (amax, fabsf (x[b * 32 + i]));
    double d = amax / 127.0, dh = qomni_f16_to_f32 (q[b].d);
    double bound = d / 2 + 127 * fabs (d - dh) + 1e-6 * amax;
    for (int i = 0; i < 32; i++) {
      g_assert_cmpint (q[b].qs[i], >=, -127);   /* the AVX2 int8 path relies on it */
      g_assert_cmpfloat (fabs ((double) x[b * 32 + i] - y[b * 32 + i]), <=, bound);
    }
  }
}

/* Q4_0: d = max / -8 (max = the element of largest magnitude, sign kept), stored as f16,
 * x' = dh * (q - 8) with q = min (15, trunc (x/d + 8.5)). Per element |x - x'| <= |d|/2,
 * except an element near -max, which x/d puts at +8 and the clamp at 7: up to |d|; plus
 * 8 |d - dh| for the scale's rounding. */
static void
check_q4_0 (const float *x, int64_t n)
{
  g_autofree QomniBlockQ4_0 *q = g_new (QomniBlockQ4_0, n / 32);
  g_autofree float *y = g_new (float, n);
  qomni_quantize_row_q4_0_ref (x, q, n);
  qomni_dequantize_row_q4_0 (q, y, n);
  for (int64_t b = 0; b < n / 32; b++) {
    float amax = 0, max = 0;
    for (int i = 0; i < 32; i++) {
      if (fabsf (x[b * 32 + i]) > amax) {
        amax = fabsf (x[b * 32 + i]);
        max = x[b * 32 + i];
      }
    }
    double d = max / -8.0, dh = qomni_f16_to_f32 (q[b].d);
    for (int i = 0; i < 32; i++) {
      double v = d != 0 ? x[b * 32 + i] / d : 0;
      double step = v > 7.5 ? fabs (d) : fabs (d) / 2;
      double bound = step + 8 * fabs (d - dh) + 1e-6 * amax;
      g_assert_cmpfloat (fabs ((double) x[b * 32 + i] - y[b * 32 + i]), <=, bound);
    }
  }
}

static void
test_roundtrip_random (void)
{
  GRand *r = g_rand_new_with_seed (42);
  static const double scales[] = { 1e-3, 1.0, 37.5, 1e4 };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    for (guint k = 0; k < G_N_ELEMENTS (scales); k++) {
      g_autofree float *x = g_new (float, sizes[s]);
      fill_random (r, x, sizes[s], scales[k]);
      check_q8_0 (x, sizes[s]);
      check_q4_0 (x, sizes[s]);
    }
  }
  g_rand_free (r);
}

static void
test_zero_block (void)
{
  float x[64] = { 0 };
  QomniBlockQ8_0 q8[2];
  QomniBlockQ4_0 q4[2];
  float y[64];
  qomni_quantize_row_q8_0_ref (x, q8, 64);
  qomni_dequantize_row_q8_0 (q8, y, 64);
  for (int i = 0; i < 64; i++)
    g_assert_cmpfloat (y[i], ==, 0.0f);
  qomni_quantize_row_q4_0_ref (x, q4, 64);
  qomni_dequantize_row_q4_0 (q4, y, 64);
  for (int i = 0; i < 64; i++)
    g_assert_cmpfloat (y[i], ==, 0.0f);
  for (int level = 0; level < QOMNI_CPU_N_LEVELS; level++) {
    const QomniQuantKernels *k = qomni_quant_kernels ((QomniCpuLevel) level);
    if (!k)
      continue;
    float ones[64];
    for (int i = 0; i < 64; i++)
      ones[i] = 1.0f;
    g_assert_cmpfloat (k->dot_q8_0_f32 (q8, ones, 64), ==, 0.0f);
    g_assert_cmpfloat (k->dot_q4_0_f32 (q4, ones, 64), ==, 0.0f);
    g_assert_cmpfloat (k->dot_q8_0_q8_0 (q8, q8, 64), ==, 0.0f);
    g_assert_cmpfloat (k->dot_q4_0_q8_0 (q4, q8, 64), ==, 0.0f);
  }
}

/* The activation quantizer the products use (SIMD where the CPU has it) writes exactly
 * what the reference writes: random rows of odd block counts, values that land on .5 after
 * scaling (ties round away from zero), zeros, and blocks of a single sign. */
static void
test_act_quantizer_exact (void)
{
  GRand *r = g_rand_new_with_seed (11);
  const int64_t n = 32 * 37;
  g_autofree float *x = g_new (float, n);
  g_autofree QomniBlockQ8_0 *want = g_new (QomniBlockQ8_0, n / 32);
  g_autofree QomniBlockQ8_0 *got = g_new (QomniBlockQ8_0, n / 32);
  for (int rep = 0; rep < 50; rep++) {
    for (int64_t i = 0; i < n; i++) {
      const int kind = (int) ((i / 32 + rep) % 5);
      if (kind == 0)
        x[i] = (float) g_rand_double_range (r, -4, 4);
      else if (kind == 1)   /* amax 127: every k + 0.5 is an exact tie after scaling */
        x[i] = (i % 32 == 0) ? 127.0f : (float) (g_rand_int_range (r, -126, 126) + 0.5);
      else if (kind == 2)
        x[i] = 0.0f;
      else if (kind == 3)
        x[i] = (float) g_rand_double_range (r, 0, 1e-3);
      else
        x[i] = -(float) g_rand_double_range (r, 0, 300);
    }
    qomni_quantize_row_q8_0_ref (x, want, n);
    qomni_quantize_row_q8_0 (x, got, n);
    g_assert_cmpmem (got, sizeof (QomniBlockQ8_0) * (n / 32), want,
                     sizeof (QomniBlockQ8_0) * (n / 32));
  }
  g_rand_free (r);
}

/* Large and tiny magnitudes: a block whose Q4_0 scale is near f16's largest normal, a block of
 * subnormal-scale values, one huge value among small ones, and exact ±max pairs (the Q4_0
 * clamp). */
static void
test_roundtrip_extremes (void)
{
  float x[5 * 32];
  for (int i = 0; i < 32; i++) {
    x[i] = (i % 2 ? -1.0f : 1.0f) * 5.0e5f * (float) (i + 1) / 32.0f;   /* Q4_0 d ~ 62500 */
    x[32 + i] = (float) (i - 16) * 1e-9f;                                /* d subnormal */
    x[64 + i] = i == 7 ? 3.0e4f : (float) (i % 5) * 1e-3f;              /* one spike */
    x[96 + i] = i % 2 ? 5.0f : -5.0f;                                    /* ±max ties */
    x[128 + i] = i == 31 ? -1.0f : 0.0f;                                 /* one negative */
  }
  check_q8_0 (x, G_N_ELEMENTS (x));
  check_q4_0 (x, G_N_ELEMENTS (x));
}

static double
abs_dot (const float *a, const float *b, int64_t n)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += fabs ((double) a[i] * b[i]);
  return s;
}

static void
test_dot_kernels (void)
{
  GRand *r = g_rand_new_with_seed (7);
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    int64_t n = sizes[s];
    g_autofree float *w = g_new (float, n);
    g_autofree float *x = g_new (float, n);
    g_autofree float *wd8 = g_new (float, n);
    g_autofree float *wd4 = g_new (float, n);
    g_autofree float *xd = g_new (float, n);
    g_autofree QomniBlockQ8_0 *w8 = g_new (QomniBlockQ8_0, n / 32);
    g_autofree QomniBlockQ4_0 *w4 = g_new (QomniBlockQ4_0, n / 32);
    g_autofree QomniBlockQ8_0 *xq = g_new (QomniBlockQ8_0, n / 32);
    fill_random (r, w, n, 0.05);
    fill_random (r, x, n, 3.0);
    qomni_quantize_row_q8_0_ref (w, w8, n);
    qomni_quantize_row_q4_0_ref (w, w4, n);
    qomni_quantize_row_q8_0 (x, xq, n);
    qomni_dequantize_row_q8_0 (w8, wd8, n);
    qomni_dequantize_row_q4_0 (w4, wd4, n);
    qomni_dequantize_row_q8_0 (xq, xd, n);

    const QomniQuantKernels *ref = qomni_quant_kernels (QOMNI_CPU_REF);
    float want[4] = {
      ref->dot_q8_0_f32 (w8, x, n), ref->dot_q4_0_f32 (w4, x, n),
      ref->dot_q8_0_q8_0 (w8, xq, n), ref->dot_q4_0_q8_0 (w4, xq, n),
    };
    double scale[4] = {
      abs_dot (wd8, x, n), abs_dot (wd4, x, n), abs_dot (wd8, xd, n), abs_dot (wd4, xd, n),
    };
    for (int level = 0; level <= QOMNI_CPU_N_LEVELS; level++) {
      float got[4];
      if (level == QOMNI_CPU_N_LEVELS) {
        /* the public, dispatched entry points */
        got[0] = qomni_vec_dot_q8_0_f32 (w8, x, n);
        got[1] = qomni_vec_dot_q4_0_f32 (w4, x, n);
        got[2] = qomni_vec_dot_q8_0_q8_0 (w8, xq, n);
        got[3] = qomni_vec_dot_q4_0_q8_0 (w4, xq, n);
      } else {
        const QomniQuantKernels *k = qomni_quant_kernels ((QomniCpuLevel) level);
        if (!k) {
          g_test_message ("CPU level %d not available here", level);
          continue;
        }
        got[0] = k->dot_q8_0_f32 (w8, x, n);
        got[1] = k->dot_q4_0_f32 (w4, x, n);
        got[2] = k->dot_q8_0_q8_0 (w8, xq, n);
        got[3] = k->dot_q4_0_q8_0 (w4, xq, n);
      }
      for (int f = 0; f < 4; f++)
        g_assert_cmpfloat (fabs ((double) got[f] - want[f]), <=, DOT_RTOL * scale[f] + 1e-30);
    }
    /* The quantized-activation path against the exact f32 activation: x's own rounding,
     * at most d_x/2 (+ its f16 rounding) per element, weighted by |w|. */
    double bound = 0;
    for (int64_t b = 0; b < n / 32; b++) {
      float amax = 0;
      for (int i = 0; i < 32; i++)
        amax = fmaxf (amax, fabsf (x[b * 32 + i]));
      double d = amax / 127.0, dh = qomni_f16_to_f32 (xq[b].d);
      for (int i = 0; i < 32; i++)
        bound += fabs (wd8[b * 32 + i]) * (d / 2 + 127 * fabs (d - dh));
    }
    g_assert_cmpfloat (fabs ((double) qomni_vec_dot_q8_0_q8_0 (w8, xq, n) -
                             qomni_vec_dot_q8_0_f32 (w8, x, n)),
                       <=, bound + 2 * DOT_RTOL * scale[0]);
  }
  g_rand_free (r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/quant/roundtrip-random", test_roundtrip_random);
  g_test_add_func ("/quant/zero-block", test_zero_block);
  g_test_add_func ("/quant/roundtrip-extremes", test_roundtrip_extremes);
  g_test_add_func ("/quant/dot-kernels", test_dot_kernels);
  g_test_add_func ("/quant/act-quantizer-exact", test_act_quantizer_exact);
  return g_test_run ();
}
