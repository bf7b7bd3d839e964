/* bench-quant — matrix-vector speed of the CPU Q8_0 / Q4_0 dot kernels, one thread.
 *
 *   bench-quant [ROWS [COLS [SECONDS]]]      (default 4096 x 4096, 1 s per kernel)
 *
 * Prints GB/s of weight bytes read for every kernel level this CPU runs (ref, generic,
 * avx2). The matrix is larger than the caches at the default size, as a decode step's
 * weights are. */
#include "quant.h"
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const char *name;
  gboolean q4;         /* weights Q4_0 (else Q8_0) */
  gboolean xq;         /* activation quantized to Q8_0 (else f32) */
} Case;

static const Case cases[] = {
  { "q8_0 x f32",  FALSE, FALSE },
  { "q8_0 x q8_0", FALSE, TRUE },
  { "q4_0 x f32",  TRUE,  FALSE },
  { "q4_0 x q8_0", TRUE,  TRUE },
};

static volatile float sink;

int
main (int argc, char **argv)
{
  int64_t rows = argc > 1 ? atoll (argv[1]) : 4096;
  int64_t cols = argc > 2 ? atoll (argv[2]) : 4096;
  double seconds = argc > 3 ? atof (argv[3]) : 1.0;
  if (rows <= 0 || cols <= 0 || cols % 32 != 0 || seconds <= 0) {
    fprintf (stderr, "usage: bench-quant [ROWS [COLS (multiple of 32) [SECONDS]]]\n");
    return 2;
  }
  GRand *rand = g_rand_new_with_seed (1);
  float *w = g_new (float, (size_t) (rows * cols));
  float *x = g_new (float, (size_t) cols);
  for (int64_t i = 0; i < rows * cols; i++)
    w[i] = (float) g_rand_double_range (rand, -1, 1);
  for (int64_t i = 0; i < cols; i++)
    x[i] = (float) g_rand_double_range (rand, -1, 1);
  size_t row8 = qomni_dtype_nbytes (QOMNI_DTYPE_Q8_0, cols);
  size_t row4 = qomni_dtype_nbytes (QOMNI_DTYPE_Q4_0, cols);
  guint8 *w8 = g_malloc (row8 * (size_t) rows), *w4 = g_malloc (row4 * (size_t) rows);
  for (int64_t r = 0; r < rows; r++) {
    qomni_quantize_row_q8_0_ref (w + r * cols, (QomniBlockQ8_0 *) (w8 + r * row8), cols);
    qomni_quantize_row_q4_0_ref (w + r * cols, (QomniBlockQ4_0 *) (w4 + r * row4), cols);
  }
  guint8 *xq = g_malloc (row8);
  qomni_quantize_row_q8_0 (x, xq, cols);
  float *y = g_new (float, (size_t) rows);

  printf ("matrix %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT ", one thread; best level: %s\n",
          rows, cols, qomni_quant_kernels (qomni_quant_best_level ())->name);
  printf ("%-12s %-8s %10s %10s\n", "kernel", "level", "GB/s", "ms/matvec");
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    for (int level = 0; level < QOMNI_CPU_N_LEVELS; level++) {
      const QomniQuantKernels *k = qomni_quant_kernels ((QomniCpuLevel) level);
      if (!k)
        continue;
      const guint8 *wq = cases[c].q4 ? w4 : w8;
      size_t row = cases[c].q4 ? row4 : row8;
      int reps = 0;
      gint64 t0 = g_get_monotonic_time (), t1;
      do {
        for (int64_t r = 0; r < rows; r++) {
          const void *wr = wq + (size_t) r * row;
          if (cases[c].q4)
            y[r] = cases[c].xq ? k->dot_q4_0_q8_0 (wr, xq, cols) : k->dot_q4_0_f32 (wr, x, cols);
          else
            y[r] = cases[c].xq ? k->dot_q8_0_q8_0 (wr, xq, cols) : k->dot_q8_0_f32 (wr, x, cols);
        }
        sink = y[rows - 1];
        reps++;
        t1 = g_get_monotonic_time ();
      } while ((double) (t1 - t0) < seconds * G_USEC_PER_SEC);
      double secs = (double) (t1 - t0) / G_USEC_PER_SEC;
      printf ("%-12s %-8s %10.2f %10.3f\n", cases[c].name, k->name,
              (double) row * (double) rows * reps / secs / 1e9, secs * 1e3 / reps);
    }
  }
  g_free (w);
  g_free (x);
  g_free (w8);
  g_free (w4);
  g_free (xq);
  g_free (y);
  g_rand_free (rand);
  return 0;
}
