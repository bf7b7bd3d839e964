/* qomni — CPU kernels. */
#include "ops-cpu.h"
#include "quant.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* Dot kernels keep 16 independent partial sums so GCC vectorizes them without
 * -ffast-math; target_clones picks AVX2+FMA at run time where the CPU has it. */
#define QOMNI_SIMD_CLONES __attribute__ ((target_clones ("arch=x86-64-v3", "default")))

QOMNI_SIMD_CLONES static float
dot_f32 (const float *restrict w, const float *restrict x, int64_t k)
{
  float acc[16] = { 0 };
  int64_t i = 0;
  for (; i + 16 <= k; i += 16)
    for (int j = 0; j < 16; j++)
      acc[j] += w[i + j] * x[i + j];
  float s = 0.0f;
  for (; i < k; i++)
    s += w[i] * x[i];
  for (int j = 0; j < 16; j++)
    s += acc[j];
  return s;
}

/* Four dot products against one weight row: each weight element is loaded once for four
 * activation rows (prefill, batched experts). Written with GCC vector types because the
 * auto-vectorizer turns the scalar form into strided outer-loop code. */
typedef float v8sf __attribute__ ((vector_size (32)));

static inline __attribute__ ((always_inline)) v8sf
load8 (const float *p)
{
  v8sf v;
  memcpy (&v, p, sizeof v);
  return v;
}

static inline __attribute__ ((always_inline)) float
hsum8 (v8sf v)
{
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

QOMNI_SIMD_CLONES static void
dot4_f32 (const float *restrict w, const float *restrict x0, const float *restrict x1,
          const float *restrict x2, const float *restrict x3, int64_t k, float out[4])
{
  v8sf a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const v8sf wv = load8 (w + i);
    a0 += wv * load8 (x0 + i);
    a1 += wv * load8 (x1 + i);
    a2 += wv * load8 (x2 + i);
    a3 += wv * load8 (x3 + i);
  }
  float s0 = hsum8 (a0), s1 = hsum8 (a1), s2 = hsum8 (a2), s3 = hsum8 (a3);
  for (; i < k; i++) {
    s0 += w[i] * x0[i];
    s1 += w[i] * x1[i];
    s2 += w[i] * x2[i];
    s3 += w[i] * x3[i];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

/* bf16 → f32 for a whole row: a shift per element, vectorized. */
QOMNI_SIMD_CLONES static void
widen_bf16 (const uint16_t *restrict w, float *restrict out, int64_t k)
{
  uint32_t *bits = (uint32_t *) out;
  for (int64_t i = 0; i < k; i++)
    bits[i] = (uint32_t) w[i] << 16;
}

QOMNI_SIMD_CLONES static float
dot_bf16 (const uint16_t *restrict w, const float *restrict x, int64_t k)
{
  float acc[16] = { 0 };
  int64_t i = 0;
  for (; i + 16 <= k; i += 16)
    for (int j = 0; j < 16; j++) {
      union { uint32_t u; float f; } c = { .u = (uint32_t) w[i + j] << 16 };
      acc[j] += c.f * x[i + j];
    }
  float s = 0.0f;
  for (; i < k; i++)
    s += qomni_bf16_to_f32 (w[i]) * x[i];
  for (int j = 0; j < 16; j++)
    s += acc[j];
  return s;
}

static float
dot_f16 (const uint16_t *w, const float *x, int64_t k)
{
  float buf[256];
  float s = 0.0f;
  for (int64_t i = 0; i < k; i += 256) {
    int64_t len = MIN (256, k - i);
    for (int64_t j = 0; j < len; j++)
      buf[j] = qomni_f16_to_f32 (w[i + j]);
    s += dot_f32 (buf, x + i, len);
  }
  return s;
}

float
qomni_cpu_dot_row (QomniDType dtype, const void *w_row, const float *x, int64_t k)
{
  switch (dtype) {
    case QOMNI_DTYPE_F32:  return dot_f32 (w_row, x, k);
    case QOMNI_DTYPE_BF16: return dot_bf16 (w_row, x, k);
    case QOMNI_DTYPE_F16:  return dot_f16 (w_row, x, k);
    case QOMNI_DTYPE_Q8_0: return qomni_vec_dot_q8_0_f32 (w_row, x, k);
    case QOMNI_DTYPE_Q4_0: return qomni_vec_dot_q4_0_f32 (w_row, x, k);
    default: g_assert_not_reached ();
  }
  return 0.0f;
}

float *
qomni_tensor_to_f32_alloc (const QomniTensor *t)
{
  int64_t n = qomni_tensor_nelements (t);
  float *out = g_new (float, MAX (n, 1));
  qomni_to_f32 (t->dtype, t->data, out, n);
  return out;
}

void
qomni_weight_row_f32 (const QomniTensor *w, int64_t row, float *dst)
{
  int64_t cols = w->shape[w->ndim - 1];
  size_t row_bytes = qomni_dtype_nbytes (w->dtype, cols);
  qomni_to_f32 (w->dtype, (const guint8 *) w->data + (size_t) row * row_bytes, dst, cols);
}

int
qomni_cpu_threads (void)
{
  return omp_get_max_threads ();
}

gboolean
qomni_cpu_dtype_is_block (QomniDType dtype)
{
  return dtype == QOMNI_DTYPE_Q8_0 || dtype == QOMNI_DTYPE_Q4_0;
}

gsize
qomni_cpu_act_q8_bytes (int64_t k)
{
  return (gsize) (k / QOMNI_QK8_0) * sizeof (QomniBlockQ8_0);
}

void
qomni_cpu_quantize_act (const float *x, int n, int64_t k, void *xq)
{
  for (int r = 0; r < n; r++)
    qomni_quantize_row_q8_0 (x + (int64_t) r * k, (guint8 *) xq + r * qomni_cpu_act_q8_bytes (k),
                             k);
}

float
qomni_cpu_dot_row_q8 (QomniDType dtype, const void *w_row, const void *xq, int64_t k)
{
  return dtype == QOMNI_DTYPE_Q8_0 ? qomni_vec_dot_q8_0_q8_0 (w_row, xq, k)
                                   : qomni_vec_dot_q4_0_q8_0 (w_row, xq, k);
}

/* The Q8_0 copy of a product's activations, kept per calling thread so a decode step
 * allocates nothing; it only grows. */
static void *
act_scratch (gsize bytes)
{
  static __thread void *buf;
  static __thread gsize size;
  if (bytes > size) {
    g_free (buf);
    size = MAX (bytes, 2 * size);
    buf = g_malloc (size);
  }
  return buf;
}

void
qomni_cpu_linear (float *y, const float *x, int n, const QomniTensor *w, const float *bias)
{
  g_assert (w->ndim == 2);
  const int64_t out = w->shape[0], in = w->shape[1];
  const size_t row_bytes = qomni_dtype_nbytes (w->dtype, in);
  const guint8 *base = w->data;
  /* Each weight row is read once and used for all n activation rows. Only parallelize
   * when there is enough work to pay for waking the threads. */
  const gboolean par = (double) out * (double) in * n > 32768.0;
  if (qomni_cpu_dtype_is_block (w->dtype)) {
    /* Block formats: the activations are quantized to Q8_0 once, then every weight row is
     * an int8 × int8 dot (as llama.cpp does): a quarter of the activation bytes and no
     * widening of weights to f32. Adds x's Q8_0 rounding (see quant.h). */
    const gsize xq_row = qomni_cpu_act_q8_bytes (in);
    guint8 *xq = act_scratch (xq_row * (gsize) n);
    qomni_cpu_quantize_act (x, n, in, xq);
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < out; o++) {
      const void *row = base + (size_t) o * row_bytes;
      float b = bias ? bias[o] : 0.0f;
      for (int r = 0; r < n; r++)
        y[(int64_t) r * out + o] = qomni_cpu_dot_row_q8 (w->dtype, row, xq + r * xq_row, in) + b;
    }
  } else if (n == 1) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < out; o++) {
      const void *row = base + (size_t) o * row_bytes;
      float b = bias ? bias[o] : 0.0f;
      y[o] = qomni_cpu_dot_row (w->dtype, row, x, in) + b;
    }
  } else {
    /* Several rows: decode each weight row once to f32 (a no-op view for f32), then take
     * it against the activation rows four at a time. */
#pragma omp parallel if (par)
    {
      float *tmp = w->dtype == QOMNI_DTYPE_F32 ? NULL : g_new (float, in);
#pragma omp for schedule(static)
      for (int64_t o = 0; o < out; o++) {
        const float *wr = (const float *) (base + (size_t) o * row_bytes);
        if (w->dtype == QOMNI_DTYPE_BF16) {
          widen_bf16 ((const uint16_t *) wr, tmp, in);
          wr = tmp;
        } else if (tmp) {
          qomni_to_f32 (w->dtype, wr, tmp, in);
          wr = tmp;
        }
        const float b = bias ? bias[o] : 0.0f;
        int r = 0;
        for (; r + 4 <= n; r += 4) {
          float d[4];
          const float *xr = x + (int64_t) r * in;
          dot4_f32 (wr, xr, xr + in, xr + 2 * in, xr + 3 * in, in, d);
          for (int j = 0; j < 4; j++)
            y[(int64_t) (r + j) * out + o] = d[j] + b;
        }
        for (; r < n; r++)
          y[(int64_t) r * out + o] = dot_f32 (wr, x + (int64_t) r * in, in) + b;
      }
      g_free (tmp);
    }
  }
}

void
qomni_cpu_linear_same_input (float *const *ys, const QomniTensor *const *ws, int n_w,
                             const float *x, int n)
{
  gboolean all_block = TRUE;
  for (int i = 0; i < n_w; i++)
    all_block = all_block && qomni_cpu_dtype_is_block (ws[i]->dtype) &&
                ws[i]->shape[1] == ws[0]->shape[1];
  if (!all_block || n_w < 1) {
    for (int i = 0; i < n_w; i++)
      qomni_cpu_linear (ys[i], x, n, ws[i], NULL);
    return;
  }
  const int64_t in = ws[0]->shape[1];
  const gsize xq_row = qomni_cpu_act_q8_bytes (in);
  guint8 *xq = act_scratch (xq_row * (gsize) n);
  qomni_cpu_quantize_act (x, n, in, xq);
  /* One parallel region; each matrix's rows are split over all threads the way
   * qomni_cpu_linear splits them (so the same thread reads the same rows: the one that
   * first touched them, for weights made in memory), with no barrier between matrices. */
#pragma omp parallel
  for (int i = 0; i < n_w; i++) {
    const QomniTensor *w = ws[i];
    const int64_t out = w->shape[0];
    const size_t row_bytes = qomni_dtype_nbytes (w->dtype, in);
    const guint8 *base = w->data;
    float *y = ys[i];
#pragma omp for schedule(static) nowait
    for (int64_t o = 0; o < out; o++)
      for (int r = 0; r < n; r++)
        y[(int64_t) r * out + o] = qomni_cpu_dot_row_q8 (w->dtype, base + (size_t) o * row_bytes,
                                                         xq + r * xq_row, in);
  }
}

void
qomni_cpu_rmsnorm (float *y, const float *x, int n, int dim, const float *w, float eps)
{
  for (int r = 0; r < n; r++) {
    const float *xr = x + (int64_t) r * dim;
    float *yr = y + (int64_t) r * dim;
    double ss = 0.0;
    for (int i = 0; i < dim; i++)
      ss += (double) xr[i] * xr[i];
    float inv = 1.0f / sqrtf ((float) (ss / dim) + eps);
    for (int i = 0; i < dim; i++)
      yr[i] = xr[i] * inv * (w ? w[i] : 1.0f);
  }
}

void
qomni_cpu_layernorm (float *y, const float *x, int n, int dim, const float *w, const float *b,
                     float eps)
{
  for (int r = 0; r < n; r++) {
    const float *xr = x + (int64_t) r * dim;
    float *yr = y + (int64_t) r * dim;
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < dim; i++)
      mean += xr[i];
    mean /= dim;
    for (int i = 0; i < dim; i++)
      var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim;
    float inv = 1.0f / sqrtf ((float) var + eps);
    for (int i = 0; i < dim; i++)
      yr[i] = ((float) (xr[i] - mean)) * inv * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
  }
}

void
qomni_cpu_silu_mul (float *gate, const float *up, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    gate[i] = gate[i] / (1.0f + expf (-gate[i])) * up[i];
}

void
qomni_cpu_silu (float *x, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    x[i] = x[i] / (1.0f + expf (-x[i]));
}

void
qomni_cpu_gelu (float *x, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    x[i] = 0.5f * x[i] * (1.0f + erff (x[i] * (float) M_SQRT1_2));
}

void
qomni_cpu_gelu_tanh (float *x, int64_t n)
{
  const float k = 0.7978845608028654f; /* sqrt(2/pi) */
  for (int64_t i = 0; i < n; i++)
    x[i] = 0.5f * x[i] * (1.0f + tanhf (k * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

void
qomni_cpu_softmax (float *x, int n)
{
  float max = -INFINITY;
  for (int i = 0; i < n; i++)
    max = fmaxf (max, x[i]);
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = expf (x[i] - max);
    sum += x[i];
  }
  float inv = (float) (1.0 / sum);
  for (int i = 0; i < n; i++)
    x[i] *= inv;
}

void
qomni_cpu_add (float *y, const float *x, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    y[i] += x[i];
}

void
qomni_cpu_rope (float *x, int n, int heads, int hd, const float *cos_t, const float *sin_t)
{
  const int half = hd / 2;
  for (int r = 0; r < n; r++) {
    const float *c = cos_t + (int64_t) r * half, *s = sin_t + (int64_t) r * half;
    for (int h = 0; h < heads; h++) {
      float *v = x + ((int64_t) r * heads + h) * hd;
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void
qomni_cpu_attention (float *out, const float *q, const float *k, const float *v, int n, int m,
                     int nh, int nkv, int hd, int kv_stride, int q_pos0, gboolean causal,
                     int window)
{
  const int rep = nh / nkv;
  const float scale = 1.0f / sqrtf ((float) hd);
  const gboolean par = (double) n * nh * m * hd > 65536.0;
#pragma omp parallel if (par)
  {
    float *scores = g_new (float, MAX (m, 1));
#pragma omp for collapse(2) schedule(static)
    for (int r = 0; r < n; r++) {
      for (int h = 0; h < nh; h++) {
        const int pos = q_pos0 + r;
        int lo = 0, hi = m;  /* visible keys [lo, hi) */
        if (causal)
          hi = MIN (m, pos + 1);
        if (window > 0)
          lo = MAX (0, pos - window + 1);
        const float *qr = q + ((int64_t) r * nh + h) * hd;
        const int kvh = h / rep;
        float *o = out + ((int64_t) r * nh + h) * hd;
        memset (o, 0, sizeof (float) * hd);
        if (hi <= lo)
          continue;
        float max = -INFINITY;
        for (int j = lo; j < hi; j++) {
          scores[j] = dot_f32 (qr, k + (int64_t) j * kv_stride + (int64_t) kvh * hd, hd) * scale;
          max = fmaxf (max, scores[j]);
        }
        double sum = 0.0;
        for (int j = lo; j < hi; j++) {
          scores[j] = expf (scores[j] - max);
          sum += scores[j];
        }
        const float inv = (float) (1.0 / sum);
        for (int j = lo; j < hi; j++) {
          const float p = scores[j] * inv;
          const float *vr = v + (int64_t) j * kv_stride + (int64_t) kvh * hd;
          for (int d = 0; d < hd; d++)
            o[d] += p * vr[d];
        }
      }
    }
    g_free (scores);
  }
}

void
qomni_cpu_topk (const float *x, int n, int k, int *idx)
{
  for (int j = 0; j < k; j++) {
    int best = -1;
    for (int i = 0; i < n; i++) {
      gboolean taken = FALSE;
      for (int t = 0; t < j && !taken; t++)
        taken = idx[t] == i;
      if (!taken && (best < 0 || x[i] > x[best]))
        best = i;
    }
    idx[j] = best;
  }
}
