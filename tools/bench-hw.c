/* qomni bench — the hardware figures the floors divide by, measured here with the
 * simplest loops that reach them, and the weight bytes and multiply-adds of one token. */
#include "bench.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define BENCH_SIMD_CLONES __attribute__ ((target_clones ("arch=x86-64-v3", "default")))
#else
#define BENCH_SIMD_CLONES
#endif

/* Sums a buffer with every thread; 4 independent sums per thread keep the loads in
 * flight. Returns the sum so the reads cannot be optimised away. */
BENCH_SIMD_CLONES static double
read_pass (const float *x, size_t n)
{
  double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (size_t i = 0; i < n; i += 64) {
    float s = 0;
    for (int j = 0; j < 64; j++)
      s += x[i + j];
    total += s;
  }
  return total;
}

double
bench_measure_cpu_bandwidth (void)
{
  /* 1 GiB, or a quarter of the free memory on a small machine: far beyond any cache */
  size_t bytes = (size_t) 1 << 30;
  const guint64 avail = bench_available_memory ();
  if (avail && avail / 4 < bytes)
    bytes = MAX ((size_t) 64 << 20, (size_t) (avail / 4));
  const size_t n = bytes / sizeof (float) / 64 * 64;
  float *x = g_try_new (float, n);
  if (!x)
    return 0;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++)   /* first touch by the threads that read it later */
    x[i] = (float) (i & 7);
  double best = 0, sink = 0;
  for (int rep = 0; rep < 4; rep++) {
    const double t0 = bench_now ();
    sink += read_pass (x, n);
    const double dt = bench_now () - t0;
    best = MAX (best, (double) n * sizeof (float) / dt / 1e9);
  }
  g_free (x);
  return sink == -1 ? 0 : best;
}

/* 8 independent chains of 8-wide FMAs per thread: enough to fill two FMA ports with a
 * four-cycle latency. */
BENCH_SIMD_CLONES static float
fma_loop (long iters, float seed)
{
  float acc[64];
  for (int j = 0; j < 64; j++)
    acc[j] = seed + (float) j * 1e-3f;
  const float m = 0.999999f, a = 1e-7f;
  for (long i = 0; i < iters; i++)
#pragma omp simd
    for (int j = 0; j < 64; j++)
      acc[j] = acc[j] * m + a;
  float s = 0;
  for (int j = 0; j < 64; j++)
    s += acc[j];
  return s;
}

double
bench_measure_cpu_peak_gflops (void)
{
  const long iters = 4 << 20;
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    float sink = 0;
    const double t0 = bench_now ();
    int threads = 1;
#pragma omp parallel reduction(+ : sink)
    {
#pragma omp single
      threads = omp_get_num_threads ();
      sink += fma_loop (iters, (float) omp_get_thread_num ());
    }
    const double dt = bench_now () - t0;
    if (sink != -1)
      best = MAX (best, 2.0 * 64 * iters * threads / dt / 1e9);
  }
  return best;
}

typedef struct {
  const char *prefix, *except;
  int k, e;
  double bytes, macs;
} Count;

static void
count_tensor (const QomniTensor *t, gpointer user)
{
  Count *c = user;
  if ((c->prefix && !g_str_has_prefix (t->name, c->prefix)) ||
      (c->except && strstr (t->name, c->except)))
    return;
  double share = 1;
  if (strstr (t->name, ".experts.") && c->e > 0)
    share = (double) c->k / c->e;                       /* k of E routed experts */
  else if (strstr (t->name, "embed") && t->ndim == 2)
    share = 1.0 / (double) t->shape[0];                 /* one row of a table */
  c->bytes += share * (double) t->nbytes;
  if (t->ndim == 2 && !strstr (t->name, "embed"))
    c->macs += share * (double) qomni_tensor_nelements (t);
}

static Count
count (const QomniWeights *w, const char *prefix, const char *except, int k, int e)
{
  Count c = { prefix, except, k, e, 0, 0 };
  qomni_weights_foreach (w, count_tensor, &c);
  return c;
}

double
bench_weight_bytes (const QomniWeights *w, const char *prefix, const char *except,
                    int experts_per_tok, int num_experts)
{
  return count (w, prefix, except, experts_per_tok, num_experts).bytes;
}

double
bench_weight_macs (const QomniWeights *w, const char *prefix, const char *except,
                   int experts_per_tok, int num_experts)
{
  return count (w, prefix, except, experts_per_tok, num_experts).macs;
}

guint64
bench_available_memory (void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    return 0;
  const char *p = strstr (text, "MemAvailable:");
  return p ? g_ascii_strtoull (p + strlen ("MemAvailable:"), NULL, 10) * 1024 : 0;
}
