/* qomni — Q8_0 / Q4_0 dot products on the CPU: the scalar oracle, portable C shaped so GCC
 * vectorizes it for baseline x86-64 (SSE2), and AVX2 kernels compiled with a target
 * attribute and chosen at run time, so the default build still runs on any x86-64.
 */
#include "quant.h"
#include "tensor.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define QOMNI_HAVE_X86 1
#include <immintrin.h>
#endif

/* ---- the oracle: dequantize a block, then a plain f32 dot ---- */

static float
dot_f32_ref (const float *a, const float *b, int n)
{
  float s = 0.0f;
  for (int i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}

static float
ref_q8_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ8_0 *w = row;
  float tmp[QOMNI_QK8_0], s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    qomni_dequantize_row_q8_0 (&w[b], tmp, QOMNI_QK8_0);
    s += dot_f32_ref (tmp, x + b * QOMNI_QK8_0, QOMNI_QK8_0);
  }
  return s;
}

static float
ref_q4_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  float tmp[QOMNI_QK4_0], s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    qomni_dequantize_row_q4_0 (&w[b], tmp, QOMNI_QK4_0);
    s += dot_f32_ref (tmp, x + b * QOMNI_QK4_0, QOMNI_QK4_0);
  }
  return s;
}

static float
ref_q8_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ8_0 *w = row, *y = xq;
  float tw[QOMNI_QK8_0], ty[QOMNI_QK8_0], s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    qomni_dequantize_row_q8_0 (&w[b], tw, QOMNI_QK8_0);
    qomni_dequantize_row_q8_0 (&y[b], ty, QOMNI_QK8_0);
    s += dot_f32_ref (tw, ty, QOMNI_QK8_0);
  }
  return s;
}

static float
ref_q4_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  const QomniBlockQ8_0 *y = xq;
  float tw[QOMNI_QK4_0], ty[QOMNI_QK8_0], s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    qomni_dequantize_row_q4_0 (&w[b], tw, QOMNI_QK4_0);
    qomni_dequantize_row_q8_0 (&y[b], ty, QOMNI_QK8_0);
    s += dot_f32_ref (tw, ty, QOMNI_QK4_0);
  }
  return s;
}

/* ---- portable C ----
 * Float sums are kept in 8 independent lanes so the compiler may vectorize them without
 * reassociating (no -ffast-math); integer sums vectorize as they stand. */

#define LANES 8

static float
generic_q8_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ8_0 *w = row;
  float acc[LANES] = { 0 };
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    const float *xb = x + b * QOMNI_QK8_0;
    float part[LANES] = { 0 };
    for (int k = 0; k < QOMNI_QK8_0; k += LANES)
      for (int j = 0; j < LANES; j++)
        part[j] += (float) w[b].qs[k + j] * xb[k + j];
    float d = qomni_f16_to_f32 (w[b].d);
    for (int j = 0; j < LANES; j++)
      acc[j] += d * part[j];
  }
  float s = 0.0f;
  for (int j = 0; j < LANES; j++)
    s += acc[j];
  return s;
}

/* Q4_0 weights as int8 in element order, so the Q4_0 loops are the Q8_0 ones. */
static inline void
generic_unpack_q4_0 (const QomniBlockQ4_0 *b, int8_t q[QOMNI_QK4_0])
{
  for (int i = 0; i < QOMNI_QK4_0 / 2; i++) {
    q[i] = (int8_t) ((b->qs[i] & 0x0f) - 8);
    q[i + QOMNI_QK4_0 / 2] = (int8_t) ((b->qs[i] >> 4) - 8);
  }
}

static float
generic_q4_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  float acc[LANES] = { 0 };
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    const float *xb = x + b * QOMNI_QK4_0;
    int8_t q[QOMNI_QK4_0];
    generic_unpack_q4_0 (&w[b], q);
    float part[LANES] = { 0 };
    for (int k = 0; k < QOMNI_QK4_0; k += LANES)
      for (int j = 0; j < LANES; j++)
        part[j] += (float) q[k + j] * xb[k + j];
    float d = qomni_f16_to_f32 (w[b].d);
    for (int j = 0; j < LANES; j++)
      acc[j] += d * part[j];
  }
  float s = 0.0f;
  for (int j = 0; j < LANES; j++)
    s += acc[j];
  return s;
}

static float
generic_q8_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ8_0 *w = row, *y = xq;
  float s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    int32_t isum = 0;
    for (int i = 0; i < QOMNI_QK8_0; i++)
      isum += (int32_t) w[b].qs[i] * (int32_t) y[b].qs[i];
    s += qomni_f16_to_f32 (w[b].d) * qomni_f16_to_f32 (y[b].d) * (float) isum;
  }
  return s;
}

static float
generic_q4_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  const QomniBlockQ8_0 *y = xq;
  float s = 0.0f;
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    int8_t q[QOMNI_QK4_0];
    generic_unpack_q4_0 (&w[b], q);
    int32_t isum = 0;
    for (int i = 0; i < QOMNI_QK4_0; i++)
      isum += (int32_t) q[i] * (int32_t) y[b].qs[i];
    s += qomni_f16_to_f32 (w[b].d) * qomni_f16_to_f32 (y[b].d) * (float) isum;
  }
  return s;
}

/* ---- AVX2 + FMA + F16C ---- */

#ifdef QOMNI_HAVE_X86
#define AVX2 __attribute__ ((target ("avx2,fma,f16c")))
#define VNNI __attribute__ ((target ("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

/* Bytes ahead of the current block that the int8 kernels ask the cache for (0: none). A
 * decode step streams each weight row once; asking early keeps more misses in flight per
 * core than the out-of-order window and the hardware prefetchers reach on their own. On the
 * 16-core GPU host, full-size Q8_0 decode went from 22.4 to 28.9 tokens/s with 1024
 * (docs/benchmarks.md). */
#ifndef QOMNI_Q8_PREFETCH
#define QOMNI_Q8_PREFETCH 1024
#endif
#define PREFETCH_W(p)                                                                         \
  G_STMT_START {                                                                              \
    if (QOMNI_Q8_PREFETCH > 0)                                                                \
      _mm_prefetch ((const char *) (p) + QOMNI_Q8_PREFETCH, _MM_HINT_T0);                     \
  } G_STMT_END

AVX2 static inline float
hsum256 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* The 32 signed weights of a Q4_0 block in element order: low nibbles then high, minus 8. */
AVX2 static inline __m256i
unpack_q4_0 (const uint8_t *qs)
{
  __m128i packed = _mm_loadu_si128 ((const __m128i *) qs);
  __m256i both = _mm256_set_m128i (_mm_srli_epi16 (packed, 4), packed);
  both = _mm256_and_si256 (both, _mm256_set1_epi8 (0x0f));
  return _mm256_sub_epi8 (both, _mm256_set1_epi8 (8));
}

/* 32 int8 weights times 32 f32 activations, as 8 partial sums. */
AVX2 static inline __m256
dot_i8_f32 (__m256i q, const float *x)
{
  __m128i lo = _mm256_castsi256_si128 (q), hi = _mm256_extracti128_si256 (q, 1);
  __m256 s = _mm256_mul_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (lo)), _mm256_loadu_ps (x));
  s = _mm256_fmadd_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_srli_si128 (lo, 8))),
                       _mm256_loadu_ps (x + 8), s);
  s = _mm256_fmadd_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (hi)), _mm256_loadu_ps (x + 16), s);
  s = _mm256_fmadd_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_srli_si128 (hi, 8))),
                       _mm256_loadu_ps (x + 24), s);
  return s;
}

/* 32 int8 by 32 int8 as 8 int32 partial sums, converted to f32. maddubs multiplies unsigned
 * by signed bytes, so the sign of a moves onto b; |a| <= 127 keeps pair sums in int16. */
AVX2 static inline __m256
dot_i8_i8 (__m256i a, __m256i b)
{
  __m256i pairs = _mm256_maddubs_epi16 (_mm256_sign_epi8 (a, a), _mm256_sign_epi8 (b, a));
  return _mm256_cvtepi32_ps (_mm256_madd_epi16 (pairs, _mm256_set1_epi16 (1)));
}

AVX2 static float
avx2_q8_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ8_0 *w = row;
  __m256 acc = _mm256_setzero_ps ();
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    __m256i q = _mm256_loadu_si256 ((const __m256i *) w[b].qs);
    __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d));
    acc = _mm256_fmadd_ps (d, dot_i8_f32 (q, x + b * QOMNI_QK8_0), acc);
  }
  return hsum256 (acc);
}

AVX2 static float
avx2_q4_0_f32 (const void *row, const float *x, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  __m256 acc = _mm256_setzero_ps ();
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d));
    acc = _mm256_fmadd_ps (d, dot_i8_f32 (unpack_q4_0 (w[b].qs), x + b * QOMNI_QK4_0), acc);
  }
  return hsum256 (acc);
}

/* Two blocks per step into two accumulators: the FMA latency chain would otherwise bound a
 * row at one block per 4 cycles, below what memory delivers on a many-core decode. */
AVX2 static float
avx2_q8_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ8_0 *w = row, *y = xq;
  const int64_t nb = n / QOMNI_QK8_0;
  __m256 acc0 = _mm256_setzero_ps (), acc1 = _mm256_setzero_ps ();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    PREFETCH_W (&w[b]);
    const __m256i qw0 = _mm256_loadu_si256 ((const __m256i *) w[b].qs);
    const __m256i qy0 = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    const __m256i qw1 = _mm256_loadu_si256 ((const __m256i *) w[b + 1].qs);
    const __m256i qy1 = _mm256_loadu_si256 ((const __m256i *) y[b + 1].qs);
    const __m256 d0 = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    const __m256 d1 = _mm256_set1_ps (_cvtsh_ss (w[b + 1].d) * _cvtsh_ss (y[b + 1].d));
    acc0 = _mm256_fmadd_ps (d0, dot_i8_i8 (qw0, qy0), acc0);
    acc1 = _mm256_fmadd_ps (d1, dot_i8_i8 (qw1, qy1), acc1);
  }
  for (; b < nb; b++) {
    const __m256i qw = _mm256_loadu_si256 ((const __m256i *) w[b].qs);
    const __m256i qy = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    const __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    acc0 = _mm256_fmadd_ps (d, dot_i8_i8 (qw, qy), acc0);
  }
  return hsum256 (_mm256_add_ps (acc0, acc1));
}

AVX2 static float
avx2_q4_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  const QomniBlockQ8_0 *y = xq;
  __m256 acc = _mm256_setzero_ps ();
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    if ((b & 3) == 0)   /* 4 blocks = 72 bytes, about a cache line */
      PREFETCH_W (&w[b]);
    __m256i qy = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    acc = _mm256_fmadd_ps (d, dot_i8_i8 (unpack_q4_0 (w[b].qs), qy), acc);
  }
  return hsum256 (acc);
}
/* AVX512-VNNI (256-bit): vpdpbusd adds four u8 × s8 products into each int32 lane, the
 * maddubs + madd pair of dot_i8_i8 in one instruction (and no int16 saturation). */
VNNI static inline __m256
vnni_dot_i8_i8 (__m256i a, __m256i b)
{
  return _mm256_cvtepi32_ps (_mm256_dpbusd_epi32 (_mm256_setzero_si256 (),
                                                  _mm256_sign_epi8 (a, a),
                                                  _mm256_sign_epi8 (b, a)));
}

VNNI static float
vnni_q8_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ8_0 *w = row, *y = xq;
  const int64_t nb = n / QOMNI_QK8_0;
  __m256 acc0 = _mm256_setzero_ps (), acc1 = _mm256_setzero_ps ();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    PREFETCH_W (&w[b]);
    const __m256i qw0 = _mm256_loadu_si256 ((const __m256i *) w[b].qs);
    const __m256i qy0 = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    const __m256i qw1 = _mm256_loadu_si256 ((const __m256i *) w[b + 1].qs);
    const __m256i qy1 = _mm256_loadu_si256 ((const __m256i *) y[b + 1].qs);
    const __m256 d0 = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    const __m256 d1 = _mm256_set1_ps (_cvtsh_ss (w[b + 1].d) * _cvtsh_ss (y[b + 1].d));
    acc0 = _mm256_fmadd_ps (d0, vnni_dot_i8_i8 (qw0, qy0), acc0);
    acc1 = _mm256_fmadd_ps (d1, vnni_dot_i8_i8 (qw1, qy1), acc1);
  }
  for (; b < nb; b++) {
    const __m256i qw = _mm256_loadu_si256 ((const __m256i *) w[b].qs);
    const __m256i qy = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    const __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    acc0 = _mm256_fmadd_ps (d, vnni_dot_i8_i8 (qw, qy), acc0);
  }
  return hsum256 (_mm256_add_ps (acc0, acc1));
}

VNNI static float
vnni_q4_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  const QomniBlockQ4_0 *w = row;
  const QomniBlockQ8_0 *y = xq;
  __m256 acc = _mm256_setzero_ps ();
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    if ((b & 3) == 0)
      PREFETCH_W (&w[b]);
    const __m256i qy = _mm256_loadu_si256 ((const __m256i *) y[b].qs);
    const __m256 d = _mm256_set1_ps (_cvtsh_ss (w[b].d) * _cvtsh_ss (y[b].d));
    acc = _mm256_fmadd_ps (d, vnni_dot_i8_i8 (unpack_q4_0 (w[b].qs), qy), acc);
  }
  return hsum256 (acc);
}
#endif

/* ---- the table and the dispatch ---- */

static const QomniQuantKernels kernel_table[] = {
  [QOMNI_CPU_REF] = { "ref", ref_q8_0_f32, ref_q4_0_f32, ref_q8_0_q8_0, ref_q4_0_q8_0 },
  [QOMNI_CPU_GENERIC] = { "generic", generic_q8_0_f32, generic_q4_0_f32, generic_q8_0_q8_0,
                          generic_q4_0_q8_0 },
#ifdef QOMNI_HAVE_X86
  [QOMNI_CPU_AVX2] = { "avx2", avx2_q8_0_f32, avx2_q4_0_f32, avx2_q8_0_q8_0, avx2_q4_0_q8_0 },
  [QOMNI_CPU_AVX512_VNNI] = { "avx512vnni", avx2_q8_0_f32, avx2_q4_0_f32, vnni_q8_0_q8_0,
                              vnni_q4_0_q8_0 },
#else
  [QOMNI_CPU_AVX2] = { "avx2", NULL, NULL, NULL, NULL },
  [QOMNI_CPU_AVX512_VNNI] = { "avx512vnni", NULL, NULL, NULL, NULL },
#endif
};
_Static_assert (sizeof kernel_table / sizeof kernel_table[0] == QOMNI_CPU_N_LEVELS,
                "one row per CPU level");

static gboolean
level_supported (QomniCpuLevel level)
{
  if (level < QOMNI_CPU_AVX2)
    return TRUE;
#ifdef QOMNI_HAVE_X86
  gboolean ok = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma") &&
                __builtin_cpu_supports ("f16c");
  if (level == QOMNI_CPU_AVX512_VNNI)
    ok = ok && __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512vl") &&
         __builtin_cpu_supports ("avx512vnni");
  return ok;
#else
  return FALSE;
#endif
}

const QomniQuantKernels *
qomni_quant_kernels (QomniCpuLevel level)
{
  g_return_val_if_fail (level < QOMNI_CPU_N_LEVELS, NULL);
  return level_supported (level) ? &kernel_table[level] : NULL;
}

QomniCpuLevel
qomni_quant_best_level (void)
{
  if (level_supported (QOMNI_CPU_AVX512_VNNI))
    return QOMNI_CPU_AVX512_VNNI;
  return level_supported (QOMNI_CPU_AVX2) ? QOMNI_CPU_AVX2 : QOMNI_CPU_GENERIC;
}

/* Chosen once, before main, so the hot path is one indirect call with no check. */
static const QomniQuantKernels *best = &kernel_table[QOMNI_CPU_GENERIC];

__attribute__ ((constructor)) static void
choose_kernels (void)
{
#ifdef QOMNI_HAVE_X86
  __builtin_cpu_init ();
#endif
  best = &kernel_table[qomni_quant_best_level ()];
}

float
qomni_vec_dot_q8_0_f32 (const void *row, const float *x, int64_t n)
{
  return best->dot_q8_0_f32 (row, x, n);
}

float
qomni_vec_dot_q4_0_f32 (const void *row, const float *x, int64_t n)
{
  return best->dot_q4_0_f32 (row, x, n);
}

float
qomni_vec_dot_q8_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  return best->dot_q8_0_q8_0 (row, xq, n);
}

float
qomni_vec_dot_q4_0_q8_0 (const void *row, const void *xq, int64_t n)
{
  return best->dot_q4_0_q8_0 (row, xq, n);
}

#ifdef QOMNI_HAVE_X86
/* The reference quantizer, eight lanes at a time, bit for bit: the same IEEE max, divide and
 * multiply, and roundf's half-away-from-zero rounding made from a truncation (v − trunc(v)
 * is exact for |v| < 2²³) and a step of one where that fraction reaches ½. */
AVX2 static void
avx2_quantize_row_q8_0 (const float *x, QomniBlockQ8_0 *y, int64_t n)
{
  const __m256 abs_mask = _mm256_castsi256_ps (_mm256_set1_epi32 (0x7fffffff));
  const __m256 half = _mm256_set1_ps (0.5f), one = _mm256_set1_ps (1.0f);
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    const float *xb = x + b * QOMNI_QK8_0;
    __m256 v[4], m = _mm256_setzero_ps ();
    for (int j = 0; j < 4; j++) {
      v[j] = _mm256_loadu_ps (xb + 8 * j);
      m = _mm256_max_ps (m, _mm256_and_ps (v[j], abs_mask));
    }
    __m128 m4 = _mm_max_ps (_mm256_castps256_ps128 (m), _mm256_extractf128_ps (m, 1));
    m4 = _mm_max_ps (m4, _mm_movehl_ps (m4, m4));
    m4 = _mm_max_ss (m4, _mm_movehdup_ps (m4));
    const float d = _mm_cvtss_f32 (m4) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = qomni_f32_to_f16 (d);
    __m256i q[4];
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_mul_ps (v[j], _mm256_set1_ps (id));
      const __m256 t = _mm256_round_ps (s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_and_ps (_mm256_sub_ps (s, t), abs_mask);
      const __m256 step = _mm256_and_ps (_mm256_cmp_ps (frac, half, _CMP_GE_OQ),
                                         _mm256_or_ps (one, _mm256_andnot_ps (abs_mask, s)));
      q[j] = _mm256_cvttps_epi32 (_mm256_add_ps (t, step));
    }
    /* int32 → int8 with the lanes back in element order */
    const __m256i p16 = _mm256_packs_epi32 (q[0], q[1]), p16b = _mm256_packs_epi32 (q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16 (p16, p16b);
    const __m256i order = _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256 ((__m256i *) y[b].qs, _mm256_permutevar8x32_epi32 (p8, order));
  }
}
#endif

void
qomni_quantize_row_q8_0 (const float *x, void *y, int64_t n)
{
  /* Once per product, on the calling thread while the others wait: the AVX2 form (bit
   * identical to the reference, tested) keeps that serial part short. */
#ifdef QOMNI_HAVE_X86
  if (best >= &kernel_table[QOMNI_CPU_AVX2]) {
    avx2_quantize_row_q8_0 (x, y, n);
    return;
  }
#endif
  qomni_quantize_row_q8_0_ref (x, y, n);
}
