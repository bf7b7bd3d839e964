/* Every Vulkan op against its CPU kernel (core/ops-cpu.h), in the spirit of ggml's
 * test-backend-ops: a table of ops × shapes (odd sizes included) × weight dtypes, random
 * inputs, the normalized mean squared error Σ(gpu − cpu)² / Σcpu² against a threshold per
 * row, and canary words before and after every output to catch out-of-bounds writes.
 *
 * Weighted ops compare against the CPU product over the same (dequantized) weights, so the
 * thresholds measure the GPU's arithmetic, not the format's rounding: 1e-10 … 1e-8 for sums
 * of a few thousand float32 products in a different order; transcendental ops (exp, erf
 * through A&S 7.1.26, tanh) get 1e-9 … 1e-7.
 *
 *   test-vk-ops            run the table; exit 0, 1 on a failure, 77 without a device
 *   test-vk-ops --perf     also time matvec per dtype (GB/s), matmul (the old 64 × 64 grid
 *                          and the planned tiles and K splits, also at the audio and vision
 *                          encoders' shapes), attention (decode; prompts per-row vs tiled)
 *                          and Code2Wav's convolutions (GFLOP/s), and a prompt's MoE block
 *                          at the thinker's shape (512 tokens, top-8 of 128 experts) per
 *                          pair, grouped, and on tensor cores
 */
#include "attention-vk.h"
#include "error.h"
#include "moe-vk.h"
#include "ops-cpu.h"
#include "quant.h"
#include "sampler.h"
#include "tensor.h"
#include "vk-device.h"
#include "vk-ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64                  /* canary floats on each side of an output */
#define CANARY 0x7fbadbadu        /* a NaN no kernel produces */

static QomniVk *vk;
static GRand *rng;
static int n_fail, n_run;

static float *
randf (size_t n, float scale)
{
  float *v = g_new (float, MAX (n, 1));
  for (size_t i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rng, -scale, scale);
  return v;
}

static QomniVkBuffer *
upload (const void *data, size_t bytes)
{
  GError *error = NULL;
  QomniVkBuffer *b = qomni_vk_buffer_new (vk, (bytes + 15) & ~(size_t) 15, QOMNI_VK_MEM_DEVICE,
                                          "test input", &error);
  g_assert_no_error (error);
  qomni_vk_upload (vk, b, 0, data, bytes, &error);
  g_assert_no_error (error);
  return b;
}

/* An output of n floats at element offset GUARD, canaries around it; init (may be NULL)
 * fills the payload, for accumulating ops. */
static QomniVkBuffer *
out_new (size_t n, const float *init)
{
  guint32 *host = g_new (guint32, n + 2 * GUARD);
  for (size_t i = 0; i < n + 2 * GUARD; i++)
    host[i] = CANARY;
  if (init)
    memcpy (host + GUARD, init, n * 4);
  QomniVkBuffer *b = upload (host, (n + 2 * GUARD) * 4);
  g_free (host);
  return b;
}

/* Downloads the payload into res[n]; FALSE when a canary changed. */
static gboolean
out_get (QomniVkBuffer *b, size_t n, float *res)
{
  GError *error = NULL;
  guint32 *host = g_new (guint32, n + 2 * GUARD);
  qomni_vk_download (vk, b, 0, host, (n + 2 * GUARD) * 4, &error);
  g_assert_no_error (error);
  gboolean ok = TRUE;
  for (size_t i = 0; i < GUARD; i++)
    ok &= host[i] == CANARY && host[GUARD + n + i] == CANARY;
  memcpy (res, host + GUARD, n * 4);
  g_free (host);
  return ok;
}

static double
nmse (const float *a, const float *b, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double) a[i] - b[i];
    num += d * d;
    den += (double) b[i] * b[i];
  }
  if (isnan (num))
    return INFINITY;
  return den > 0 ? num / den : num;
}

static void
report (const char *name, double err, double tol, gboolean guards)
{
  n_run++;
  gboolean ok = err <= tol && guards;
  if (!ok)
    n_fail++;
  printf ("%s %-44s nmse %.2e (max %.0e)%s\n", ok ? "ok  " : "FAIL", name, err, tol,
          guards ? "" : "  OUT-OF-BOUNDS WRITE");
}

static void
submit (QomniVkCmd *c)
{
  GError *error = NULL;
  qomni_vk_cmd_submit (c, &error);
  g_assert_no_error (error);
}

/* The CPU product the GPU kernels are held to: f32 activations throughout. (The CPU's own
 * Q8_0/Q4_0 products quantize the activations to Q8_0 first, which the shaders do not.) */
static void
cpu_linear (float *y, const float *x, int n, const QomniTensor *w, const float *bias)
{
  if (!qomni_cpu_dtype_is_block (w->dtype)) {
    qomni_cpu_linear (y, x, n, w, bias);
    return;
  }
  const int64_t out = w->shape[0], in = w->shape[1];
  const size_t row_bytes = qomni_dtype_nbytes (w->dtype, in);
  for (int r = 0; r < n; r++)
    for (int64_t o = 0; o < out; o++)
      y[(int64_t) r * out + o] = qomni_cpu_dot_row (w->dtype, (const guint8 *) w->data +
                                                    o * row_bytes, x + (int64_t) r * in, in) +
                                 (bias ? bias[o] : 0.0f);
}

/* Random weights [rows, cols] in dtype: the bytes and the tensor the CPU kernels read. */
typedef struct {
  QomniTensor t;
  void *bytes;
} Weight;

static Weight
weight_new (QomniDType dt, int64_t rows, int64_t cols, float scale)
{
  Weight w = { 0 };
  g_autofree float *f = randf ((size_t) (rows * cols), scale);
  size_t nb = qomni_dtype_nbytes (dt, rows * cols);
  w.bytes = g_malloc0 (nb + 16);
  for (int64_t r = 0; r < rows; r++) {
    const float *src = f + r * cols;
    char *dst = (char *) w.bytes + qomni_dtype_nbytes (dt, r * cols);
    for (int64_t c = 0; c < cols; c++)
      if (dt == QOMNI_DTYPE_F32)
        ((float *) dst)[c] = src[c];
      else if (dt == QOMNI_DTYPE_F16)
        ((uint16_t *) dst)[c] = qomni_f32_to_f16 (src[c]);
      else if (dt == QOMNI_DTYPE_BF16)
        ((uint16_t *) dst)[c] = qomni_f32_to_bf16 (src[c]);
    if (dt == QOMNI_DTYPE_Q8_0)
      qomni_quantize_row_q8_0_ref (src, (QomniBlockQ8_0 *) dst, cols);
    else if (dt == QOMNI_DTYPE_Q4_0)
      qomni_quantize_row_q4_0_ref (src, (QomniBlockQ4_0 *) dst, cols);
  }
  w.t = (QomniTensor) { .name = "w", .dtype = dt, .ndim = 2, .shape = { rows, cols },
                        .data = w.bytes, .nbytes = nb };
  return w;
}

static const QomniDType wtypes[] = { QOMNI_DTYPE_F32, QOMNI_DTYPE_F16, QOMNI_DTYPE_BF16,
                                     QOMNI_DTYPE_Q8_0, QOMNI_DTYPE_Q4_0 };

static gboolean
is_block (QomniDType dt)
{
  return qomni_dtype_info (dt)->block_elems > 1;
}

/* ---- weighted ops ---- */

/* y[z, r] = W·x[z] for z < nz slots; accumulate adds onto a random y. */
static void
test_matvec (QomniDType dt, int rows, int cols, int nz, gboolean acc)
{
  Weight w = weight_new (dt, rows, cols, 1.0f);
  g_autofree float *x = randf ((size_t) nz * cols, 1.0f);
  g_autofree float *y0 = randf ((size_t) nz * rows, 1.0f);
  g_autofree float *ref = g_new (float, (size_t) nz * rows);
  g_autofree float *res = g_new (float, (size_t) nz * rows);
  cpu_linear (ref, x, nz, &w.t, NULL);
  if (acc)
    for (int i = 0; i < nz * rows; i++)
      ref[i] += y0[i];
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, (size_t) nz * cols * 4);
  QomniVkBuffer *by = out_new ((size_t) nz * rows, acc ? y0 : NULL);
  QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, dt);
  QomniVkMatvecPush pc = { .rows = rows, .cols = cols, .x_stride = cols, .y_off = GUARD,
                           .y_stride = rows, .x_div = 1, .flags = acc ? QOMNI_VK_ACCUMULATE : 0 };
  QomniVkBind b[] = { { bw }, { bx }, { by }, { bx }, { bx } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
  qomni_vk_dispatch (c, pipe, b, 5, &pc, sizeof pc, (rows + nr - 1) / nr, nz, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) nz * rows, res);
  char name[96];
  snprintf (name, sizeof name, "matvec %s %dx%d z=%d%s", qomni_dtype_info (dt)->name, rows, cols,
            nz, acc ? " acc" : "");
  report (name, nmse (res, ref, (size_t) nz * rows), 1e-9, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* E experts stacked [E, 2I, H] ([gate; up] each); slot z = (token z / K, its expert ids[z]). */
static void
test_swiglu_ids (QomniDType dt, int E, int I, int H, int n, int K, gboolean norm)
{
  Weight w = weight_new (dt, (int64_t) E * 2 * I, H, 1.0f);
  g_autofree float *x = randf ((size_t) n * H, 1.0f);
  g_autofree float *gain = randf (4 + H, 1.0f);
  g_autofree float *xr = g_memdup2 (x, sizeof (float) * n * H);
  if (norm)
    qomni_cpu_rmsnorm (xr, x, n, H, gain + 4, 1e-6f);
  g_autofree guint32 *ids = g_new (guint32, n * K);
  for (int i = 0; i < n * K; i++)
    ids[i] = (guint32) g_rand_int_range (rng, 0, E);
  const int S = n * K;
  g_autofree float *ref = g_new (float, (size_t) S * I);
  g_autofree float *res = g_new (float, (size_t) S * I);
  g_autofree float *gu = g_new (float, 2 * I);
  for (int z = 0; z < S; z++) {
    QomniTensor te = w.t;
    te.shape[0] = 2 * I;
    te.data = (const char *) w.bytes + qomni_dtype_nbytes (dt, (int64_t) ids[z] * 2 * I * H);
    cpu_linear (gu, xr + (size_t) (z / K) * H, 1, &te, NULL);
    qomni_cpu_silu_mul (gu, gu + I, I);
    memcpy (ref + (size_t) z * I, gu, sizeof (float) * I);
  }
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, (size_t) n * H * 4);
  QomniVkBuffer *bi = upload (ids, (size_t) S * 4), *by = out_new ((size_t) S * I, NULL);
  QomniVkBuffer *bg = upload (gain, (size_t) (4 + H) * 4);
  QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_SWIGLU_F32, dt);
  QomniVkMatvecPush pc = { .rows = I, .cols = H, .x_stride = H, .y_off = GUARD, .y_stride = I,
                           .expert_stride = 2 * I * H, .x_div = K,
                           .flags = QOMNI_VK_USE_IDS | (norm ? QOMNI_VK_NORM : 0), .g_off = 4,
                           .eps = 1e-6f };
  QomniVkBind b[] = { { bw }, { bx }, { by }, { bi }, { bg } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
  qomni_vk_dispatch (c, pipe, b, 5, &pc, sizeof pc, (I + nr - 1) / nr, S, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) S * I, res);
  char name[96];
  snprintf (name, sizeof name, "%sswiglu-by-ids %s E=%d %dx%d n=%d k=%d", norm ? "rmsnorm+" : "",
            qomni_dtype_info (dt)->name, E, I, H, n, K);
  report (name, nmse (res, ref, (size_t) S * I), 1e-9, g);
  qomni_vk_buffer_free (vk, bg);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bi);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* y[z] = W · rmsnorm(x[z], gain at g_off): the norm fused into the matvec (NORM). */
static void
test_matvec_norm (QomniDType dt, int rows, int cols, int nz, int g_off)
{
  Weight w = weight_new (dt, rows, cols, 1.0f);
  g_autofree float *x = randf ((size_t) nz * cols, 2.0f), *gain = randf (g_off + cols, 1.0f);
  g_autofree float *xn = g_new (float, (size_t) nz * cols);
  g_autofree float *ref = g_new (float, (size_t) nz * rows);
  g_autofree float *res = g_new (float, (size_t) nz * rows);
  qomni_cpu_rmsnorm (xn, x, nz, cols, gain + g_off, 1e-6f);
  cpu_linear (ref, xn, nz, &w.t, NULL);
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, (size_t) nz * cols * 4);
  QomniVkBuffer *bg = upload (gain, (size_t) (g_off + cols) * 4);
  QomniVkBuffer *by = out_new ((size_t) nz * rows, NULL);
  QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, dt);
  QomniVkMatvecPush pc = { .rows = rows, .cols = cols, .x_stride = cols, .y_off = GUARD,
                           .y_stride = rows, .x_div = 1, .flags = QOMNI_VK_NORM,
                           .g_off = g_off, .eps = 1e-6f };
  QomniVkBind b[] = { { bw }, { bx }, { by }, { bx }, { bg } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
  qomni_vk_dispatch (c, pipe, b, 5, &pc, sizeof pc, (rows + nr - 1) / nr, nz, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) nz * rows, res);
  char name[96];
  snprintf (name, sizeof name, "rmsnorm+matvec %s %dx%d z=%d g_off=%d",
            qomni_dtype_info (dt)->name, rows, cols, nz, g_off);
  report (name, nmse (res, ref, (size_t) nz * rows), 1e-9, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bg);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* KSUM + ACCUMULATE: x[r] += Σ_j w[r·K + j] · W_ids[r·K + j] · g[r·K + j], the MoE down
 * projection fused with the weighted combine. */
static void
test_down_ksum (QomniDType dt, int E, int H, int I, int n, int K)
{
  Weight w = weight_new (dt, (int64_t) E * H, I, 1.0f);
  const int S = n * K;
  g_autofree float *gx = randf ((size_t) S * I, 1.0f), *tw = randf (3 + S, 1.0f);
  g_autofree float *x0 = randf ((size_t) n * H, 1.0f);
  g_autofree guint32 *ids = g_new (guint32, S);
  for (int i = 0; i < S; i++)
    ids[i] = (guint32) g_rand_int_range (rng, 0, E);
  g_autofree float *ref = g_memdup2 (x0, sizeof (float) * n * H);
  g_autofree float *res = g_new (float, (size_t) n * H), *yy = g_new (float, H);
  for (int s = 0; s < S; s++) {
    QomniTensor te = w.t;
    te.shape[0] = H;
    te.data = (const char *) w.bytes + qomni_dtype_nbytes (dt, (int64_t) ids[s] * H * I);
    cpu_linear (yy, gx + (size_t) s * I, 1, &te, NULL);
    for (int h = 0; h < H; h++)
      ref[(size_t) (s / K) * H + h] += tw[3 + s] * yy[h];
  }
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (gx, (size_t) S * I * 4);
  QomniVkBuffer *bi = upload (ids, (size_t) S * 4), *bt = upload (tw, (size_t) (3 + S) * 4);
  QomniVkBuffer *by = out_new ((size_t) n * H, x0);
  QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, dt);
  QomniVkMatvecPush pc = { .rows = H, .cols = I, .x_stride = I, .y_off = GUARD, .y_stride = H,
                           .expert_stride = H * I, .x_div = 1, .g_off = 3, .nslot = K,
                           .flags = QOMNI_VK_USE_IDS | QOMNI_VK_KSUM | QOMNI_VK_ACCUMULATE };
  QomniVkBind b[] = { { bw }, { bx }, { by }, { bi }, { bt } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
  qomni_vk_dispatch (c, pipe, b, 5, &pc, sizeof pc, (H + nr - 1) / nr, n, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * H, res);
  char name[96];
  snprintf (name, sizeof name, "down+combine (ksum) %s E=%d %dx%d n=%d k=%d",
            qomni_dtype_info (dt)->name, E, H, I, n, K);
  report (name, nmse (res, ref, (size_t) n * H), 1e-9, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bi);
  qomni_vk_buffer_free (vk, bt);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* A plan for qomni_vk_rec_matmul_plan: the tile family with about `splits` K splits (the
 * last one shorter when they do not divide cols). */
static QomniVkMatmulPlan
forced_plan (QomniVkPipe family, int splits, int cols)
{
  QomniVkMatmulPlan plan = { family, 64, 64, 1, 0 };
  if (family == QOMNI_VK_PIPE_MATMUL_WIDE_F32)
    plan.tile_m = plan.tile_n = 128;
  else if (family == QOMNI_VK_PIPE_MATMUL_NARROW_F32)
    plan.tile_n = 16;
  plan.k_chunk = ((cols + splits - 1) / splits + 15) / 16 * 16;
  plan.splits = (cols + plan.k_chunk - 1) / plan.k_chunk;
  return plan;
}

/* y[t, r] (+)= W[r, :] · x[t, :] (+ bias, act) through qomni_vk_rec_matmul, with the plan
 * it picks (family < 0) or a forced one, against the CPU product over f32 activations.
 * x_pad, y_pad: extra floats per row (a row stride other than the width; x_pad odd takes
 * the scalar loads); act < 0: no bias. The rows' padding and the partial buffer's tail
 * are checked untouched. */
static void
test_matmul_ex (QomniDType dt, int rows, int cols, int n, int family, int splits,
                gboolean acc, int act, int x_pad, int y_pad)
{
  const int xs = cols + x_pad, ys = rows + y_pad;
  const size_t N = (size_t) n * ys;
  Weight w = weight_new (dt, rows, cols, 1.0f);
  g_autofree float *x = randf ((size_t) n * xs, 1.0f), *xc = g_new (float, (size_t) n * cols);
  g_autofree float *y0 = randf (N, 1.0f), *bias = randf (rows, 1.0f);
  g_autofree float *prod = g_new (float, (size_t) n * rows);
  g_autofree float *ref = g_memdup2 (y0, 4 * N), *res = g_new (float, N);
  for (int t = 0; t < n; t++)
    memcpy (xc + (size_t) t * cols, x + (size_t) t * xs, 4 * (size_t) cols);
  cpu_linear (prod, xc, n, &w.t, NULL);
  for (int t = 0; t < n; t++) {
    float *row = ref + (size_t) t * ys;
    for (int r = 0; r < rows; r++)
      row[r] = (acc ? row[r] : 0.0f) + prod[(size_t) t * rows + r] + (act >= 0 ? bias[r] : 0.0f);
    if (act == QOMNI_VK_ACT_GELU)
      qomni_cpu_gelu (row, rows);
    else if (act == QOMNI_VK_ACT_GELU_TANH)
      qomni_cpu_gelu_tanh (row, rows);
  }
  QomniVkMatmulPlan plan;
  if (family < 0)
    qomni_vk_matmul_plan (rows, n, cols, G_MAXUINT64, &plan);
  else
    plan = forced_plan ((QomniVkPipe) family, splits, cols);
  /* partials for the plan, then GUARD canaries */
  const size_t P = plan.splits > 1 ? (size_t) plan.splits * n * rows : 0;
  guint32 *canary = g_new (guint32, P + GUARD);
  for (size_t i = 0; i < P + GUARD; i++)
    canary[i] = CANARY;
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, 4 * (size_t) n * xs);
  QomniVkBuffer *bb = upload (bias, 4 * (size_t) rows), *bp = upload (canary, 4 * (P + GUARD));
  QomniVkBuffer *by = out_new (N, y0);
  QomniVkMatmulArgs ma = { .w = { bw }, .dtype = dt, .rows = rows, .cols = cols, .n = n,
                           .x = bx, .x_stride = xs, .y = by, .y_off = GUARD, .y_stride = ys,
                           .acc = acc, .bias = act >= 0 ? bb : NULL,
                           .act = act >= 0 ? act : 0, .scratch = bp };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_rec_matmul_plan (c, &ma, &plan);
  submit (c);
  gboolean g = out_get (by, N, res);
  GError *error = NULL;
  qomni_vk_download (vk, bp, 4 * P, canary, 4 * GUARD, &error);
  g_assert_no_error (error);
  for (int i = 0; i < GUARD; i++)
    g &= canary[i] == CANARY;
  char name[128];
  snprintf (name, sizeof name, "matmul %s %dx%d n=%d tile %ux%u split %u%s%s%s",
            qomni_dtype_info (dt)->name, rows, cols, n, plan.tile_m, plan.tile_n, plan.splits, acc ? " acc" : "", act >= 0 ? " bias" : "",
            act > 0 ? (act == 1 ? "+gelu" : "+gelu_tanh") : "");
  report (name, nmse (res, ref, N), act > 0 ? 1e-8 : 1e-9, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bb);
  qomni_vk_buffer_free (vk, bp);
  qomni_vk_buffer_free (vk, by);
  g_free (canary);
  g_free (w.bytes);
}

static void
test_matmul (QomniDType dt, int rows, int cols, int n)
{
  test_matmul_ex (dt, rows, cols, n, -1, 0, FALSE, -1, 0, 0);
}

static void
test_embed (QomniDType dt, int V, int cols, int n)
{
  Weight w = weight_new (dt, V, cols, 1.0f);
  g_autofree guint32 *ids = g_new (guint32, n);
  g_autofree float *ref = g_new (float, (size_t) n * cols);
  g_autofree float *res = g_new (float, (size_t) n * cols);
  for (int i = 0; i < n; i++) {
    ids[i] = (guint32) g_rand_int_range (rng, 0, V);
    qomni_weight_row_f32 (&w.t, ids[i], ref + (size_t) i * cols);
  }
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bi = upload (ids, (size_t) n * 4);
  QomniVkBuffer *by = out_new ((size_t) n * cols, NULL);
  QomniVkEmbedPush pc = { .cols = cols, .n = n, .y_off = GUARD };
  QomniVkBind b[] = { { bw }, { bi }, { by } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_EMBED_F32, dt), b, 3, &pc,
                     sizeof pc, 1, n, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * cols, res);
  char name[96];
  snprintf (name, sizeof name, "embed %s V=%d cols=%d n=%d", qomni_dtype_info (dt)->name, V, cols,
            n);
  report (name, nmse (res, ref, (size_t) n * cols), 0.0, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bi);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* ---- activation ops ---- */

static void
test_norm (gboolean layer, int n, int dim)
{
  g_autofree float *x = randf ((size_t) n * dim, 2.0f);
  g_autofree float *gw = randf (dim, 1.0f), *bw = randf (dim, 1.0f);
  g_autofree float *ref = g_new (float, (size_t) n * dim);
  g_autofree float *res = g_new (float, (size_t) n * dim);
  if (layer)
    qomni_cpu_layernorm (ref, x, n, dim, gw, bw, 1e-5f);
  else
    qomni_cpu_rmsnorm (ref, x, n, dim, gw, 1e-6f);
  QomniVkBuffer *bx = upload (x, (size_t) n * dim * 4), *bg = upload (gw, dim * 4);
  QomniVkBuffer *bb = upload (bw, dim * 4), *by = out_new ((size_t) n * dim, NULL);
  QomniVkNormPush pc = { .n = n, .dim = dim, .x_stride = dim, .y_off = GUARD, .y_stride = dim,
                         .flags = layer ? 3 : 1, .eps = layer ? 1e-5f : 1e-6f };
  QomniVkBind b[] = { { bx }, { by }, { bg }, { bb } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, layer ? QOMNI_VK_PIPE_LAYERNORM : QOMNI_VK_PIPE_RMSNORM, b, layer ? 4 : 3,
                     &pc, sizeof pc, MIN (n, 65535), (n + 65534) / 65535, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * dim, res);
  char name[96];
  snprintf (name, sizeof name, "%s n=%d dim=%d", layer ? "layernorm" : "rmsnorm", n, dim);
  report (name, nmse (res, ref, (size_t) n * dim), 1e-11, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bg);
  qomni_vk_buffer_free (vk, bb);
  qomni_vk_buffer_free (vk, by);
}

static void
test_softmax (int n, int dim)
{
  g_autofree float *x = randf ((size_t) n * dim, 5.0f);
  g_autofree float *ref = g_memdup2 (x, sizeof (float) * n * dim);
  g_autofree float *res = g_new (float, (size_t) n * dim);
  for (int r = 0; r < n; r++)
    qomni_cpu_softmax (ref + (size_t) r * dim, dim);
  QomniVkBuffer *by = out_new ((size_t) n * dim, x);
  QomniVkSoftmaxPush pc = { .n = n, .dim = dim, .off = GUARD };
  QomniVkBind b[] = { { by } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SOFTMAX, b, 1, &pc, sizeof pc, n, 1, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * dim, res);
  char name[96];
  snprintf (name, sizeof name, "softmax n=%d dim=%d", n, dim);
  report (name, nmse (res, ref, (size_t) n * dim), 1e-11, g);
  qomni_vk_buffer_free (vk, by);
}

/* q/k RMSNorm per head, then rotate-half RoPE at random M-RoPE angles. */
static void
test_rope (int n, int heads, int hd, gboolean norm)
{
  const int half = hd / 2;
  const size_t N = (size_t) n * heads * hd;
  g_autofree float *x = randf (N, 2.0f), *nw = randf (hd, 1.0f);
  g_autofree float *cs = g_new (float, (size_t) 2 * n * half);
  for (int i = 0; i < n * half; i++) {
    double a = g_rand_double_range (rng, 0, 100);
    cs[i] = (float) cos (a);
    cs[n * half + i] = (float) sin (a);
  }
  g_autofree float *ref = g_memdup2 (x, sizeof (float) * N);
  g_autofree float *res = g_new (float, N);
  if (norm)
    qomni_cpu_rmsnorm (ref, ref, n * heads, hd, nw, 1e-6f);
  qomni_cpu_rope (ref, n, heads, hd, cs, cs + n * half);
  QomniVkBuffer *bx = upload (x, N * 4), *bc = upload (cs, (size_t) 2 * n * half * 4);
  QomniVkBuffer *bn = upload (nw, hd * 4), *by = out_new (N, NULL);
  QomniVkRopePush pc = { .n = n, .heads = heads, .hd = hd, .x_stride = heads * hd,
                         .y_off = GUARD, .y_stride = heads * hd, .sin_off = n * half,
                         .flags = norm, .eps = 1e-6f };
  QomniVkBind b[] = { { bx }, { by }, { bc }, { bn } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, b, 4, &pc, sizeof pc, heads, n, 1);
  submit (c);
  gboolean g = out_get (by, N, res);
  char name[96];
  snprintf (name, sizeof name, "%srope n=%d heads=%d hd=%d", norm ? "headnorm+" : "", n, heads, hd);
  report (name, nmse (res, ref, N), 1e-11, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bc);
  qomni_vk_buffer_free (vk, bn);
  qomni_vk_buffer_free (vk, by);
}

static void
test_attention (int n, int m, int nh, int nkv, int hd, int q_pos0, gboolean causal, int window)
{
  const int kvs = nkv * hd;
  g_autofree float *q = randf ((size_t) n * nh * hd, 1.0f);
  g_autofree float *k = randf ((size_t) m * kvs, 1.0f), *v = randf ((size_t) m * kvs, 1.0f);
  const size_t N = (size_t) n * nh * hd;
  g_autofree float *ref = g_new (float, N), *res = g_new (float, N);
  qomni_cpu_attention (ref, q, k, v, n, m, nh, nkv, hd, kvs, q_pos0, causal, window);
  QomniVkBuffer *bq = upload (q, N * 4), *bk = upload (k, (size_t) m * kvs * 4);
  QomniVkBuffer *bv = upload (v, (size_t) m * kvs * 4), *bo = out_new (N, NULL);
  QomniVkAttnPush pc = { .n = n, .m = m, .nh = nh, .nkv = nkv, .hd = hd, .q_stride = nh * hd,
                         .kv_stride = kvs, .o_off = GUARD, .o_stride = nh * hd, .q_pos0 = q_pos0,
                         .causal = causal, .window = window, .scale = 1.0f / sqrtf (hd) };
  QomniVkBind b[] = { { bq }, { bk }, { bv }, { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTENTION, b, 4, &pc, sizeof pc, nh, n, 1);
  submit (c);
  gboolean g = out_get (bo, N, res);
  char name[96];
  snprintf (name, sizeof name, "attention n=%d m=%d h=%d/%d hd=%d p0=%d %s w=%d", n, m, nh, nkv,
            hd, q_pos0, causal ? "causal" : "bidir", window);
  report (name, nmse (res, ref, N), 1e-10, g);
  qomni_vk_buffer_free (vk, bq);
  qomni_vk_buffer_free (vk, bk);
  qomni_vk_buffer_free (vk, bv);
  qomni_vk_buffer_free (vk, bo);
}

/* Bidirectional attention inside blocks of `block` rows (the encoders' windows; the last
 * block may be short) against the CPU run block by block. q, k, v interleaved in one
 * [n, 3·nh·hd] buffer, as the encoders' fused q/k/v product writes them. */
static void
test_attention_blocks (int n, int nh, int hd, int block)
{
  const int D = nh * hd, D3 = 3 * D;
  g_autofree float *qkv = randf ((size_t) n * D3, 1.0f);
  g_autofree float *q = g_new (float, (size_t) n * D), *k = g_new (float, (size_t) n * D);
  g_autofree float *v = g_new (float, (size_t) n * D);
  for (int r = 0; r < n; r++) {
    memcpy (q + (size_t) r * D, qkv + (size_t) r * D3, 4 * D);
    memcpy (k + (size_t) r * D, qkv + (size_t) r * D3 + D, 4 * D);
    memcpy (v + (size_t) r * D, qkv + (size_t) r * D3 + 2 * D, 4 * D);
  }
  const size_t N = (size_t) n * D;
  g_autofree float *ref = g_new (float, N), *res = g_new (float, N);
  for (int s0 = 0; s0 < n; s0 += block) {
    const int len = MIN (block, n - s0);
    const size_t o = (size_t) s0 * D;
    qomni_cpu_attention (ref + o, q + o, k + o, v + o, len, len, nh, nh, hd, D, 0, FALSE, 0);
  }
  QomniVkBuffer *bx = upload (qkv, (size_t) n * D3 * 4), *bo = out_new (N, NULL);
  QomniVkAttnPush pc = { .n = n, .m = n, .nh = nh, .nkv = nh, .hd = hd, .q_stride = D3,
                         .k_off = D, .v_off = 2 * D, .kv_stride = D3, .o_off = GUARD,
                         .o_stride = D, .scale = 1.0f / sqrtf (hd), .block = block };
  QomniVkBind b[] = { { bx }, { bx }, { bx }, { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTENTION, b, 4, &pc, sizeof pc, nh, n, 1);
  submit (c);
  gboolean g = out_get (bo, N, res);
  char name[96];
  snprintf (name, sizeof name, "attention blocks n=%d h=%d hd=%d block=%d", n, nh, hd, block);
  report (name, nmse (res, ref, N), 1e-10, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bo);
}

/* The prompt attention as the models record it (qomni_vk_rec_attention: the tiled kernel
 * for hd ≤ 128, the per-row one above that) against the CPU. q rows [n, nh·hd] sit at an
 * offset with a padded stride, k and v rows [m, nkv·hd] interleaved in one buffer at
 * offsets, as the models' fused q/k/v rows hold them. block > 0: bidirectional attention
 * inside blocks of block rows (the last may be short), m = n, against the CPU block by
 * block. */
static void
test_attention_prompt (int n, int m, int nh, int nkv, int hd, int q_pos0, gboolean causal,
                       int window, int block)
{
  const int D = nh * hd, kvd = nkv * hd, qs = D + 4, kvs = 2 * kvd + 8;
  const size_t N = (size_t) n * D;
  g_autofree float *q = randf (N, 1.0f);
  g_autofree float *k = randf ((size_t) m * kvd, 1.0f), *v = randf ((size_t) m * kvd, 1.0f);
  g_autofree float *ref = g_new (float, N), *res = g_new (float, N);
  if (block > 0) {
    for (int s0 = 0; s0 < n; s0 += block) {
      const int len = MIN (block, n - s0);
      qomni_cpu_attention (ref + (size_t) s0 * D, q + (size_t) s0 * D, k + (size_t) s0 * kvd,
                           v + (size_t) s0 * kvd, len, len, nh, nkv, hd, kvd, 0, FALSE, 0);
    }
  } else {
    qomni_cpu_attention (ref, q, k, v, n, m, nh, nkv, hd, kvd, q_pos0, causal, window);
  }
  /* device layout: q at 8 + r·qs; k at 4 + j·kvs, v 4 floats after it */
  g_autofree float *qd = g_new0 (float, 8 + (size_t) n * qs);
  g_autofree float *kvb = g_new0 (float, 4 + (size_t) m * kvs);
  for (int r = 0; r < n; r++)
    memcpy (qd + 8 + (size_t) r * qs, q + (size_t) r * D, 4 * D);
  for (int j = 0; j < m; j++) {
    memcpy (kvb + 4 + (size_t) j * kvs, k + (size_t) j * kvd, 4 * kvd);
    memcpy (kvb + 8 + kvd + (size_t) j * kvs, v + (size_t) j * kvd, 4 * kvd);
  }
  QomniVkBuffer *bq = upload (qd, (8 + (size_t) n * qs) * 4);
  QomniVkBuffer *bkv = upload (kvb, (4 + (size_t) m * kvs) * 4), *bo = out_new (N, NULL);
  QomniVkAttnPush pc = { .n = n, .m = m, .nh = nh, .nkv = nkv, .hd = hd, .q_off = 8,
                         .q_stride = qs, .k_off = 4, .v_off = 8 + kvd, .kv_stride = kvs,
                         .o_off = GUARD, .o_stride = D, .q_pos0 = q_pos0, .causal = causal,
                         .window = window, .scale = 1.0f / sqrtf (hd), .block = block };
  const QomniVkPipe pipe = qomni_vk_attn_pipe (&pc);
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_rec_attention (c, &pc, bq, bkv, bkv, bo);
  submit (c);
  gboolean g = out_get (bo, N, res);
  char name[96];
  snprintf (name, sizeof name, "%s n=%d m=%d h=%d/%d hd=%d p0=%d %s w=%d b=%d",
            qomni_vk_pipe_name (pipe), n, m, nh, nkv, hd, q_pos0, causal ? "causal" : "bidir",
            window, block);
  /* every head size the models have (64, 72, 128) must take the tiled kernel */
  const gboolean right_pipe = (pipe == QOMNI_VK_PIPE_ATTN_TILED) == (hd % 4 == 0 && hd <= 128);
  report (name, right_pipe ? nmse (res, ref, N) : INFINITY, 1e-10, g);
  qomni_vk_buffer_free (vk, bq);
  qomni_vk_buffer_free (vk, bkv);
  qomni_vk_buffer_free (vk, bo);
}

/* Flash-decoding: ATTN_SPLIT over chunks of the keys, then ATTN_COMBINE, against the CPU.
 * grid_m > 0: the replayed form (dyn): q_pos0 read from a buffer when the command runs,
 * m = q_pos0 + n, the grid sized for grid_m keys; the push's m, span and q_pos0 are junk. */
static void
test_attention_split (int n, int m, int nh, int nkv, int hd, int q_pos0, gboolean causal,
                      int window, int grid_m)
{
  const int kvs = nkv * hd;
  g_autofree float *q = randf ((size_t) n * nh * hd, 1.0f);
  g_autofree float *k = randf ((size_t) m * kvs, 1.0f), *v = randf ((size_t) m * kvs, 1.0f);
  const size_t N = (size_t) n * nh * hd;
  g_autofree float *ref = g_new (float, N), *res = g_new (float, N);
  qomni_cpu_attention (ref, q, k, v, n, m, nh, nkv, hd, kvs, q_pos0, causal, window);
  QomniVkAttnPush pc = { .n = n, .m = m, .nh = nh, .nkv = nkv, .hd = hd, .q_stride = nh * hd,
                         .kv_stride = kvs, .o_off = GUARD, .q_pos0 = q_pos0, .causal = causal,
                         .window = window, .scale = 1.0f / sqrtf (hd) };
  pc.n_chunks = qomni_vk_attn_split (m, &pc.span);
  const guint32 live = pc.n_chunks, step[4] = { 0xdead, (guint32) q_pos0, 0xdead, 0xdead };
  if (grid_m > 0) {
    g_assert (causal && q_pos0 + n == m);
    pc.n_chunks = qomni_vk_attn_split_max (grid_m);
    pc.m = 7;
    pc.q_pos0 = 3;
    pc.span = 1;
    pc.dyn = 1;
    pc.dyn_off = 1;
  }
  QomniVkBuffer *bs = upload (step, sizeof step);
  const size_t np = qomni_vk_attn_part_floats (n, nh, hd, pc.n_chunks);
  QomniVkBuffer *bq = upload (q, N * 4), *bk = upload (k, (size_t) m * kvs * 4);
  QomniVkBuffer *bv = upload (v, (size_t) m * kvs * 4), *bo = out_new (N, NULL);
  QomniVkBuffer *bp = out_new (np, NULL);
  QomniVkAttnCombinePush cp = { .n = n, .nh = nh, .hd = hd, .n_chunks = pc.n_chunks,
                                .part_off = GUARD, .o_off = GUARD, .o_stride = nh * hd };
  QomniVkBind b[] = { { bq }, { bk }, { bv }, { bp }, { bs } };
  QomniVkBind b2[] = { { bp }, { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_SPLIT, b, 5, &pc, sizeof pc, nh, n, pc.n_chunks);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_COMBINE, b2, 2, &cp, sizeof cp, nh, n, 1);
  submit (c);
  gboolean g = out_get (bo, N, res);
  g_autofree float *pres = g_new (float, np);
  g &= out_get (bp, np, pres);
  char name[96];
  if (grid_m > 0)
    snprintf (name, sizeof name, "attn-split dyn n=%d m=%d h=%d/%d hd=%d (%u of %u)", n, m, nh,
              nkv, hd, live, pc.n_chunks);
  else
    snprintf (name, sizeof name, "attn-split n=%d m=%d h=%d/%d hd=%d p0=%d %s w=%d (%u×%u)", n,
              m, nh, nkv, hd, q_pos0, causal ? "causal" : "bidir", window, pc.n_chunks, pc.span);
  report (name, nmse (res, ref, N), 1e-10, g);
  qomni_vk_buffer_free (vk, bs);
  qomni_vk_buffer_free (vk, bq);
  qomni_vk_buffer_free (vk, bk);
  qomni_vk_buffer_free (vk, bv);
  qomni_vk_buffer_free (vk, bo);
  qomni_vk_buffer_free (vk, bp);
}

/* ROPE_QKV: q heads normed + rotated in place, k heads into the K cache, v copied. */
static void
test_rope_qkv (int n, int nh, int nkv, int hd, gboolean norm, int dyn_pos)
{
  /* dyn_pos ≥ 0: the replayed form, the cache rows at dyn_pos read from the cos/sin buffer */
  const int half = hd / 2, W = (nh + 2 * nkv) * hd, kvd = nkv * hd;
  const int p0 = MAX (dyn_pos, 0);
  const size_t N = (size_t) n * W;
  g_autofree float *x = randf (N, 2.0f), *nw = randf (2 * hd + 3, 1.0f);
  g_autofree float *cs = g_new (float, (size_t) 2 * n * half + 1);
  ((guint32 *) cs)[2 * n * half] = (guint32) p0;
  for (int i = 0; i < n * half; i++) {
    double a = g_rand_double_range (rng, 0, 100);
    cs[i] = (float) cos (a);
    cs[n * half + i] = (float) sin (a);
  }
  g_autofree float *rq = g_new (float, (size_t) n * nh * hd);
  g_autofree float *rk = g_new (float, (size_t) n * kvd), *rv = g_new (float, (size_t) n * kvd);
  for (int r = 0; r < n; r++) {
    memcpy (rq + (size_t) r * nh * hd, x + (size_t) r * W, sizeof (float) * nh * hd);
    memcpy (rk + (size_t) r * kvd, x + (size_t) r * W + nh * hd, sizeof (float) * kvd);
    memcpy (rv + (size_t) r * kvd, x + (size_t) r * W + nh * hd + kvd, sizeof (float) * kvd);
  }
  if (norm) {
    qomni_cpu_rmsnorm (rq, rq, n * nh, hd, nw + 3, 1e-6f);
    qomni_cpu_rmsnorm (rk, rk, n * nkv, hd, nw + 3 + hd, 1e-6f);
  }
  qomni_cpu_rope (rq, n, nh, hd, cs, cs + n * half);
  qomni_cpu_rope (rk, n, nkv, hd, cs, cs + n * half);
  g_autofree float *ref = g_memdup2 (x, sizeof (float) * N);
  for (int r = 0; r < n; r++)
    memcpy (ref + (size_t) r * W, rq + (size_t) r * nh * hd, sizeof (float) * nh * hd);
  QomniVkBuffer *bx = out_new (N, x), *bc = upload (cs, ((size_t) 2 * n * half + 1) * 4);
  QomniVkBuffer *bn = upload (nw, (2 * hd + 3) * 4);
  const size_t kvn = (size_t) (p0 + n) * kvd;
  QomniVkBuffer *bk = out_new (kvn, NULL), *bv = out_new (kvn, NULL);
  QomniVkRopeQkvPush pc = { .n = n, .nh = nh, .nkv = nkv, .hd = hd, .x_off = GUARD,
                            .x_stride = W, .kv_off = GUARD, .kv_stride = kvd,
                            .sin_off = n * half, .qnorm_off = 3, .knorm_off = 3 + hd,
                            .flags = (norm ? QOMNI_VK_ROPE_QK_NORM : 0)
                                     | (dyn_pos >= 0 ? QOMNI_VK_ROPE_POS_DYN : 0),
                            .eps = 1e-6f, .pos_off = 2 * n * half };
  QomniVkBind b[] = { { bx }, { bk }, { bv }, { bc }, { bn } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE_QKV, b, 5, &pc, sizeof pc, nh + 2 * nkv, n, 1);
  submit (c);
  g_autofree float *res = g_new (float, N);
  g_autofree float *resk = g_new (float, kvn), *resv = g_new (float, kvn);
  gboolean g = out_get (bx, N, res);
  g &= out_get (bk, kvn, resk);
  g &= out_get (bv, kvn, resv);
  /* the rows before p0 untouched */
  for (size_t i = 0; i < (size_t) p0 * kvd; i++)
    g &= ((guint32 *) resk)[i] == CANARY && ((guint32 *) resv)[i] == CANARY;
  const size_t o = (size_t) p0 * kvd;
  const double e = MAX (nmse (res, ref, N), MAX (nmse (resk + o, rk, (size_t) n * kvd),
                                                 nmse (resv + o, rv, (size_t) n * kvd)));
  char name[96];
  snprintf (name, sizeof name, "rope_qkv n=%d h=%d/%d hd=%d%s%s", n, nh, nkv, hd,
            norm ? " headnorm" : "", dyn_pos >= 0 ? " dyn pos" : "");
  report (name, e, 1e-11, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bc);
  qomni_vk_buffer_free (vk, bn);
  qomni_vk_buffer_free (vk, bk);
  qomni_vk_buffer_free (vk, bv);
}

static void
test_eltwise (QomniVkPipe pipe, int n)
{
  g_autofree float *x = randf (n, 4.0f), *y = randf (n, 4.0f);
  g_autofree float *rx = g_memdup2 (x, sizeof (float) * n), *ry = g_memdup2 (y, sizeof (float) * n);
  g_autofree float *res = g_new (float, n);
  const float s = 0.37f;
  float *ref = rx;
  switch (pipe) {
  case QOMNI_VK_PIPE_SILU_MUL: qomni_cpu_silu_mul (rx, ry, n); break;
  case QOMNI_VK_PIPE_GELU: qomni_cpu_gelu (rx, n); break;
  case QOMNI_VK_PIPE_GELU_TANH: qomni_cpu_gelu_tanh (rx, n); break;
  case QOMNI_VK_PIPE_ADD: qomni_cpu_add (ry, rx, n); ref = ry; break;
  case QOMNI_VK_PIPE_SCALE: for (int i = 0; i < n; i++) rx[i] *= s; break;
  default: g_assert_not_reached ();
  }
  QomniVkBuffer *bx = out_new (n, x), *by = out_new (n, y);
  QomniVkEltPush pc = { .n = n, .x_off = GUARD, .y_off = GUARD, .s = s };
  QomniVkBind b[] = { { bx }, { by } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, pipe, b, 2, &pc, sizeof pc, MIN ((n + 255) / 256, 1024), 1, 1);
  submit (c);
  gboolean g = out_get (pipe == QOMNI_VK_PIPE_ADD ? by : bx, n, res);
  g_autofree float *other = g_new (float, n);
  g &= out_get (pipe == QOMNI_VK_PIPE_ADD ? bx : by, n, other);  /* the other one's guards */
  char name[96];
  snprintf (name, sizeof name, "%s n=%d", qomni_vk_pipe_name (pipe), n);
  /* the GPU's tanh and erf are not the C library's: a few float32 ulps per element, which
   * a single element (n = 1) shows undiluted (NVIDIA: 1.03e-9 on GELU-tanh); the other
   * ops keep 1e-9 */
  const gboolean transcendental = pipe == QOMNI_VK_PIPE_GELU || pipe == QOMNI_VK_PIPE_GELU_TANH
                                  || pipe == QOMNI_VK_PIPE_SILU_MUL;
  report (name, nmse (res, ref, n), transcendental ? 1e-8 : 1e-9, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
}

/* BIAS_ACT on rows with a stride (a column block of a wider buffer) against CPU bias + GELU. */
static void
test_bias_act (int n, int dim, int stride, int act)
{
  const size_t N = (size_t) n * stride;
  g_autofree float *x = randf (N, 4.0f), *bias = randf (dim, 1.0f);
  g_autofree float *ref = g_memdup2 (x, 4 * N), *res = g_new (float, N);
  for (int r = 0; r < n; r++) {
    float *row = ref + (size_t) r * stride;
    for (int c = 0; c < dim; c++)
      row[c] += bias[c];
    if (act == QOMNI_VK_ACT_GELU)
      qomni_cpu_gelu (row, dim);
    else if (act == QOMNI_VK_ACT_GELU_TANH)
      qomni_cpu_gelu_tanh (row, dim);
  }
  QomniVkBuffer *bx = out_new (N, x), *bb = upload (bias, 4 * (size_t) dim);
  QomniVkBiasActPush pc = { .n = n, .dim = dim, .x_off = GUARD, .x_stride = stride, .act = act };
  QomniVkBind b[] = { { bx }, { bb } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_BIAS_ACT, b, 2, &pc, sizeof pc,
                     MIN (((guint) N + 255) / 256, 1024), 1, 1);
  submit (c);
  gboolean g = out_get (bx, N, res);
  char name[96];
  snprintf (name, sizeof name, "bias_act n=%d dim=%d stride=%d act=%d", n, dim, stride, act);
  report (name, nmse (res, ref, N), 1e-9, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bb);
}

/* A 3×3, stride 2, padding 1 Conv2d as IM2COL + MATMUL against the convolution computed
 * directly (the definition, tap by tap) over chunks of x [F, W, Ci], the last chunk's
 * columns from `valid` on read as zero. Output [chunk, Wo, Fo, Co]. */
static void
test_conv2d (QomniDType dt, int chunks, int F, int W, int Ci, int Co, int valid)
{
  const int Fo = (F + 1) / 2, Wo = (W + 1) / 2, K = Ci * 9;
  const size_t nx = (size_t) chunks * F * W * Ci, ny = (size_t) chunks * Wo * Fo * Co;
  g_autofree float *x = randf (nx, 1.0f);
  Weight w = weight_new (dt, Co, K, 0.5f);
  g_autofree float *wf = g_new (float, (size_t) Co * K);
  for (int o = 0; o < Co; o++)
    qomni_weight_row_f32 (&w.t, o, wf + (size_t) o * K);
  g_autofree float *ref = g_new0 (float, ny), *res = g_new (float, ny);
  const int w_total = (chunks - 1) * W + valid;
  for (int c = 0; c < chunks; c++)
    for (int wo = 0; wo < Wo; wo++)
      for (int fo = 0; fo < Fo; fo++)
        for (int o = 0; o < Co; o++) {
          double acc = 0.0;
          for (int ci = 0; ci < Ci; ci++)
            for (int kh = 0; kh < 3; kh++)
              for (int kw = 0; kw < 3; kw++) {
                const int fi = 2 * fo + kh - 1, wi = 2 * wo + kw - 1;
                if (fi < 0 || fi >= F || wi < 0 || wi >= W || c * W + wi >= w_total)
                  continue;
                acc += (double) wf[(size_t) o * K + ci * 9 + kh * 3 + kw]
                       * x[(((size_t) c * F + fi) * W + wi) * Ci + ci];
              }
          ref[(((size_t) c * Wo + wo) * Fo + fo) * Co + o] = (float) acc;
        }
  const size_t ncol = (size_t) chunks * Wo * Fo * K;
  QomniVkBuffer *bx = upload (x, 4 * nx), *bw = upload (w.bytes, w.t.nbytes);
  QomniVkBuffer *bc = out_new (ncol, NULL), *by = out_new (ny, NULL);
  QomniVkIm2colPush ip = { .n_chunks = chunks, .Fi = F, .Wi = W, .Ci = Ci, .Fo = Fo, .Wo = Wo,
                           .x_chunk = F * W * Ci, .x_f = W * Ci, .x_w = Ci, .x_c = 1,
                           .w_total = w_total, .y_off = GUARD };
  QomniVkMatmulArgs ma = { .w = { bw }, .dtype = dt, .rows = Co, .cols = K,
                           .n = chunks * Wo * Fo, .x = bc, .x_off = GUARD, .x_stride = K,
                           .y = by, .y_off = GUARD, .y_stride = Co };
  QomniVkBind bi[] = { { bx }, { bc } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_IM2COL, bi, 2, &ip, sizeof ip,
                     MIN (((guint) ncol + 255) / 256, 4096), 1, 1);
  qomni_vk_rec_matmul (c, &ma);
  submit (c);
  g_autofree float *col = g_new (float, ncol);
  gboolean g = out_get (bc, ncol, col) && out_get (by, ny, res);
  char name[96];
  snprintf (name, sizeof name, "conv2d 3x3/2 %s %dx[%d,%d,%d]->%d valid=%d",
            qomni_dtype_info (dt)->name, chunks, F, W, Ci, Co, valid);
  report (name, nmse (res, ref, ny), 1e-10, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bc);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* shared: each row carries one more logit (a shared expert's gate), whose sigmoid follows
 * the n·K weights. */
static void
test_topk (int n, int E, int K, gboolean shared)
{
  const int S = E + (shared ? 1 : 0), NW = n * K + (shared ? n : 0);
  g_autofree float *lg = randf ((size_t) n * S, 3.0f);
  g_autofree float *ref_w = g_new (float, NW), *res_w = g_new (float, NW);
  g_autofree int *ref_i = g_new (int, n * K);
  g_autofree guint32 *res_i = g_new (guint32, n * K);
  g_autofree float *p = g_new (float, E);
  for (int r = 0; r < n; r++) {
    memcpy (p, lg + (size_t) r * S, sizeof (float) * E);
    qomni_cpu_softmax (p, E);
    qomni_cpu_topk (p, E, K, ref_i + r * K);
    float sum = 0;
    for (int j = 0; j < K; j++)
      sum += ref_w[r * K + j] = p[ref_i[r * K + j]];
    for (int j = 0; j < K; j++)
      ref_w[r * K + j] /= sum;
    if (shared)
      ref_w[n * K + r] = 1.0f / (1.0f + expf (-lg[(size_t) r * S + E]));
  }
  QomniVkBuffer *bl = upload (lg, (size_t) n * S * 4);
  QomniVkBuffer *bi = out_new (n * K, NULL), *bw = out_new (NW, NULL);
  QomniVkTopkPush pc = { .n = n, .E = E, .K = K, .ids_off = GUARD, .w_off = GUARD, .renorm = 1,
                         .l_stride = shared ? S : 0, .shared_gate = shared,
                         .sg_off = GUARD + n * K };
  QomniVkBind b[] = { { bl }, { bi }, { bw } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_TOPK, b, 3, &pc, sizeof pc, n, 1, 1);
  submit (c);
  gboolean g = out_get (bi, n * K, (float *) res_i) & out_get (bw, NW, res_w);
  int wrong = 0;
  for (int i = 0; i < n * K; i++)
    wrong += (int) res_i[i] != ref_i[i];
  char name[96];
  snprintf (name, sizeof name, "moe_topk n=%d E=%d k=%d%s (%d ids differ)", n, E, K,
            shared ? " +shared gate" : "", wrong);
  report (name, wrong ? INFINITY : nmse (res_w, ref_w, NW), 1e-11, g);
  qomni_vk_buffer_free (vk, bl);
  qomni_vk_buffer_free (vk, bi);
  qomni_vk_buffer_free (vk, bw);
}

static void
test_combine (int n, int H, int K)
{
  g_autofree float *x = randf ((size_t) n * H, 1.0f), *y = randf ((size_t) n * K * H, 1.0f);
  g_autofree float *w = randf (n * K, 1.0f);
  g_autofree float *ref = g_memdup2 (x, sizeof (float) * n * H), *res = g_new (float, n * H);
  for (int r = 0; r < n; r++)
    for (int h = 0; h < H; h++) {
      float s = 0;
      for (int j = 0; j < K; j++)
        s += w[r * K + j] * y[((size_t) r * K + j) * H + h];
      ref[(size_t) r * H + h] += s;
    }
  QomniVkBuffer *bx = out_new ((size_t) n * H, x), *by = upload (y, (size_t) n * K * H * 4);
  QomniVkBuffer *bw = upload (w, (size_t) n * K * 4);
  QomniVkCombinePush pc = { .n = n, .H = H, .K = K, .x_off = GUARD };
  QomniVkBind b[] = { { bx }, { by }, { bw } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_COMBINE, b, 3, &pc, sizeof pc, (H + 255) / 256, n, 1);
  submit (c);
  gboolean g = out_get (bx, (size_t) n * H, res);
  char name[96];
  snprintf (name, sizeof name, "moe_combine n=%d H=%d k=%d", n, H, K);
  report (name, nmse (res, ref, (size_t) n * H), 1e-12, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  qomni_vk_buffer_free (vk, bw);
}

static void
test_argmax (int n)
{
  g_autofree float *x = randf (n, 1.0f);
  if (n > 3)
    x[n / 3] = x[n / 2] = 2.0f;  /* a tie: the lower index wins */
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  QomniVkBuffer *bx = upload (x, (size_t) n * 4), *bo = out_new (1, NULL);
  QomniVkArgmaxPush pc = { .n = n, .out_off = GUARD };
  QomniVkBind b[] = { { bx }, { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ARGMAX, b, 2, &pc, sizeof pc, 1, 1, 1);
  submit (c);
  guint32 got;
  gboolean g = out_get (bo, 1, (float *) &got);
  char name[96];
  snprintf (name, sizeof name, "argmax n=%d (got %u, want %d)", n, got, best);
  report (name, (int) got == best ? 0.0 : INFINITY, 0.0, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bo);
}

/* The CPU's pick (qomni_sampler_pick) of one row with draw u and the sampler s. */
static int
cpu_pick (QomniSampler *s, const float *row, int n, double u)
{
  g_autofree float *l = g_memdup2 (row, sizeof (float) * n);
  return qomni_sampler_pick (s, l, n, CLAMP (u, 0.0, 1.0 - 1e-12));
}

/* sample_pick against qomni_sampler_pick: `rows` rows of n random logits in ±scale (steps
 * of `step` when > 0, for ties, those at the k-th place included) and random draws, one
 * dispatch. The tokens must be equal, except where the CPU's own choice changes when the
 * draw moves by 1e-6 or top_p by 1e-6 relative: there an exp that rounds the other way
 * (the GPU's probabilities may differ from expf's by an ulp) could pick a neighbour. Those
 * rows are excluded and counted (and may be no more than 5% of them). */
static void
test_sample_pick (int n, int rows, float temperature, int top_k, float top_p, float scale,
                  float step)
{
  const QomniSamplerParams sp = { .temperature = temperature, .top_k = top_k, .top_p = top_p,
                                  .repetition_penalty = 1.0f };
  QomniSamplerParams lo = sp, hi = sp;
  lo.top_p = top_p * (1.0f - 1e-6f);
  hi.top_p = top_p * (1.0f + 1e-6f);
  QomniSampler *s = qomni_sampler_new (&sp), *s_lo = qomni_sampler_new (&lo),
               *s_hi = qomni_sampler_new (&hi);
  g_autofree float *x = randf ((size_t) rows * n, scale);
  g_autofree double *u = g_new (double, rows);
  for (int i = 0; step > 0 && i < rows * n; i++)
    x[i] = roundf (x[i] / step) * step;
  for (int r = 0; r < rows; r++)
    u[r] = g_rand_double (rng);
  const int k = (top_k > 0 && top_k < n) ? top_k : n;
  QomniVkBuffer *bx = upload (x, sizeof (float) * rows * n), *bu = upload (u, 8 * rows);
  QomniVkBuffer *bo = out_new (rows, NULL);
  QomniVkPickPush pc = { .n = n, .k = k, .out_off = GUARD, .temperature = temperature,
                         .top_p = top_p };
  QomniVkBind b[] = { { bx }, { bu }, { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SAMPLE_PICK, b, 3, &pc, sizeof pc, rows, 1, 1);
  submit (c);
  g_autofree guint32 *got = g_new (guint32, rows);
  gboolean g = out_get (bo, rows, (float *) got);
  int differ = 0, near = 0, near_differ = 0;
  for (int r = 0; r < rows; r++) {
    const float *row = x + (size_t) r * n;
    const int want = cpu_pick (s, row, n, u[r]);
    const gboolean close = cpu_pick (s, row, n, u[r] - 1e-6) != want
                           || cpu_pick (s, row, n, u[r] + 1e-6) != want
                           || (top_p < 1.0f && (cpu_pick (s_lo, row, n, u[r]) != want
                                                || cpu_pick (s_hi, row, n, u[r]) != want));
    near += close;
    near_differ += close && (int) got[r] != want;
    differ += !close && (int) got[r] != want;
  }
  char name[128];
  snprintf (name, sizeof name, "sample_pick n=%d k=%d T=%g p=%g%s: %d rows, %d differ", n, k,
            temperature, top_p, step > 0 ? " ties" : "", rows, differ);
  report (name, differ + (near * 20 > rows ? 1.0 : 0.0), 0.0, g);
  printf ("     %d rows within 1e-6 of a boundary excluded (%d of them picked another)\n",
          near, near_differ);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bu);
  qomni_vk_buffer_free (vk, bo);
  qomni_sampler_free (s);
  qomni_sampler_free (s_lo);
  qomni_sampler_free (s_hi);
}

/* ---- the grouped MoE of a prefill (moe-vk.h) ---- */

/* Expert choices of n tokens, K distinct each. UNIFORM: any of E. SKEWED: every token takes
 * expert 1 and the rest from experts 0 .. K+1, so expert 1 holds all n tokens (n > 64: more
 * than one row tile) and experts above K+1 none. */
enum { LOAD_UNIFORM, LOAD_SKEWED };

static guint32 *
moe_ids (int n, int E, int K, int load)
{
  guint32 *ids = g_new (guint32, n * K);
  const int pool = load == LOAD_SKEWED ? MIN (E, K + 2) : E;
  g_autofree int *perm = g_new (int, E);
  for (int t = 0; t < n; t++) {
    for (int e = 0; e < E; e++)
      perm[e] = e;
    int first = 0;
    if (load == LOAD_SKEWED) {   /* expert 1 first, at a random slot below */
      perm[1] = 0;
      perm[0] = 1;
      first = 1;
    }
    for (int j = first; j < K; j++) {   /* partial Fisher-Yates over the pool */
      const int r = g_rand_int_range (rng, j, pool);
      const int tmp = perm[j];
      perm[j] = perm[r];
      perm[r] = tmp;
    }
    for (int j = 0; j < K; j++)
      ids[t * K + j] = (guint32) perm[j];
    if (load == LOAD_SKEWED) {   /* move expert 1 off slot 0 */
      const int j = g_rand_int_range (rng, 0, K);
      ids[t * K] = ids[t * K + j];
      ids[t * K + j] = 1;
    }
  }
  return ids;
}

/* The reference grouping: counts[E] | starts[E] | pairs[S], pairs by expert, then index. */
static guint32 *
moe_route_ref (const guint32 *ids, int S, int E)
{
  guint32 *r = g_new0 (guint32, 2 * E + S);
  for (int s = 0; s < S; s++)
    r[ids[s]]++;
  for (int e = 1; e < E; e++)
    r[E + e] = r[E + e - 1] + r[e - 1];
  g_autofree guint32 *fill = g_new0 (guint32, E);
  for (int s = 0; s < S; s++)
    r[2 * E + r[E + ids[s]] + fill[ids[s]]++] = (guint32) s;
  return r;
}

/* moe_group, then moe_swiglu (g in grouped order) and moe_matmul (y per pair) on their own
 * buffers with canaries, each against the CPU; then the whole block through
 * qomni_vk_moe_prefill against x + Σ_k w · down(silu(gate x) · up x). */
static void
test_moe_grouped (QomniDType dt, int E, int I, int H, int n, int K, int load, gboolean cm)
{
  /* the tensor-core kernels round both operands to fp16: NMSE ~1e-7 */
  const double tol = cm ? 1e-5 : 1e-9;
  const QomniVkPipe swiglu = cm ? QOMNI_VK_PIPE_MOE_SWIGLU_CM_F32 : QOMNI_VK_PIPE_MOE_SWIGLU_F32;
  const QomniVkPipe matmul = cm ? QOMNI_VK_PIPE_MOE_MATMUL_CM_F32 : QOMNI_VK_PIPE_MOE_MATMUL_F32;
  const int S = n * K;
  Weight wgu = weight_new (dt, (int64_t) E * 2 * I, H, 1.0f);
  Weight wdn = weight_new (dt, (int64_t) E * H, I, 1.0f);
  g_autofree guint32 *ids = moe_ids (n, E, K, load);
  g_autofree guint32 *rref = moe_route_ref (ids, S, E);
  g_autofree float *xn = randf ((size_t) n * H, 1.0f), *x0 = randf ((size_t) n * H, 1.0f);
  g_autofree float *tw = randf (S, 1.0f);
  /* the CPU: per pair s = (t, k), g[s] and y[s]; the residual sum in slot order */
  g_autofree float *gref = g_new (float, (size_t) S * I), *yref = g_new (float, (size_t) S * H);
  g_autofree float *gu = g_new (float, 2 * I);
  g_autofree float *xref = g_memdup2 (x0, sizeof (float) * n * H);
  for (int s = 0; s < S; s++) {
    QomniTensor te = wgu.t;
    te.shape[0] = 2 * I;
    te.data = (const char *) wgu.bytes + qomni_dtype_nbytes (dt, (int64_t) ids[s] * 2 * I * H);
    cpu_linear (gu, xn + (size_t) (s / K) * H, 1, &te, NULL);
    qomni_cpu_silu_mul (gu, gu + I, I);
    memcpy (gref + (size_t) s * I, gu, sizeof (float) * I);
    QomniTensor td = wdn.t;
    td.shape[0] = H;
    td.data = (const char *) wdn.bytes + qomni_dtype_nbytes (dt, (int64_t) ids[s] * H * I);
    cpu_linear (yref + (size_t) s * H, gu, 1, &td, NULL);
  }
  for (int t = 0; t < n; t++)
    for (int h = 0; h < H; h++) {
      float acc = 0;
      for (int k = 0; k < K; k++)
        acc += tw[t * K + k] * yref[((size_t) t * K + k) * H + h];
      xref[(size_t) t * H + h] += acc;
    }
  /* gref in the grouped order, as moe_swiglu writes it */
  g_autofree float *gsorted = g_new (float, (size_t) S * I);
  for (int j = 0; j < S; j++)
    memcpy (gsorted + (size_t) j * I, gref + (size_t) rref[2 * E + j] * I, sizeof (float) * I);

  QomniVkBuffer *bgu = upload (wgu.bytes, wgu.t.nbytes), *bdn = upload (wdn.bytes, wdn.t.nbytes);
  QomniVkBuffer *bi = upload (ids, (size_t) S * 4), *bxn = upload (xn, (size_t) n * H * 4);
  QomniVkBuffer *br = out_new (2 * E + S, NULL), *bg = out_new ((size_t) S * I, NULL);
  QomniVkBuffer *by = out_new ((size_t) S * H, NULL);
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  QomniVkGroupPush gp = { .S = S, .E = E, .route_off = GUARD };
  QomniVkBind b0[] = { { bi }, { br } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_GROUP, b0, 2, &gp, sizeof gp, E, 1, 1);
  const uint32_t tiles = (n + 63) / 64;
  QomniVkMoeMatmulPush up = { .rows = I, .cols = H, .expert_stride = 2 * I * H, .x_stride = H,
                              .y_off = GUARD, .y_stride = I, .route_off = GUARD, .E = E,
                              .x_div = K, .flags = QOMNI_VK_X_BY_PAIR };
  QomniVkBind b1[] = { { bgu }, { bxn }, { bg }, { br } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (swiglu, dt), b1, 4, &up, sizeof up,
                     (I + 63) / 64, tiles, E);
  QomniVkMoeMatmulPush dn = { .rows = H, .cols = I, .expert_stride = H * I, .x_off = GUARD,
                              .x_stride = I, .y_off = GUARD, .y_stride = H, .route_off = GUARD,
                              .E = E, .x_div = 1, .flags = QOMNI_VK_Y_BY_PAIR };
  QomniVkBind b2[] = { { bdn }, { bg }, { by }, { br } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (matmul, dt), b2, 4, &dn, sizeof dn,
                     (H + 63) / 64, tiles, E);
  submit (c);
  g_autofree guint32 *rres = g_new (guint32, 2 * E + S);
  g_autofree float *gres = g_new (float, (size_t) S * I), *yres = g_new (float, (size_t) S * H);
  gboolean gr = out_get (br, 2 * E + S, (float *) rres);
  gboolean gg = out_get (bg, (size_t) S * I, gres), gy = out_get (by, (size_t) S * H, yres);
  int wrong = 0, empty = 0;
  for (int i = 0; i < 2 * E + S; i++)
    wrong += rres[i] != rref[i];
  for (int e = 0; e < E; e++)
    empty += rref[e] == 0;
  char name[128], what[64];
  snprintf (what, sizeof what, "%s%s E=%d I=%d H=%d n=%d k=%d%s", cm ? "coopmat " : "",
            qomni_dtype_info (dt)->name, E, I, H, n, K, load == LOAD_SKEWED ? " skewed" : "");
  snprintf (name, sizeof name, "moe_group %s (%d empty, %d words differ)", what, empty, wrong);
  report (name, wrong ? INFINITY : 0.0, 0.0, gr);
  snprintf (name, sizeof name, "moe_swiglu %s", what);
  report (name, nmse (gres, gsorted, (size_t) S * I), tol, gg);
  snprintf (name, sizeof name, "moe_matmul (down) %s", what);
  report (name, nmse (yres, yref, (size_t) S * H), tol, gy);

  /* the whole block as the thinker records it */
  GError *error = NULL;
  QomniVkBuffer *bx = upload (x0, (size_t) n * H * 4), *bt = upload (tw, (size_t) S * 4);
  QomniVkBuffer *sc[3];
  const uint64_t sc_bytes[3] = { 4 * qomni_vk_moe_route_words (n, E, K), 4 * (uint64_t) S * I,
                                 4 * (uint64_t) S * H };
  for (int i = 0; i < 3; i++) {
    sc[i] = qomni_vk_buffer_new (vk, sc_bytes[i], QOMNI_VK_MEM_DEVICE, "moe scratch", &error);
    g_assert_no_error (error);
  }
  QomniVkMoe m = { .gate_up = bgu, .gate_up_dtype = dt, .down = bdn, .down_dtype = dt,
                   .xn = bxn, .x = bx, .ids = bi, .tw = bt, .route = sc[0], .g = sc[1],
                   .y = sc[2], .n = n, .H = H, .I = I, .E = E, .K = K, .coopmat = cm };
  c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_moe_prefill (c, &m);
  submit (c);
  g_autofree float *xres = g_new (float, (size_t) n * H);
  qomni_vk_download (vk, bx, 0, xres, (size_t) n * H * 4, &error);
  g_assert_no_error (error);
  snprintf (name, sizeof name, "moe prefill block %s", what);
  report (name, nmse (xres, xref, (size_t) n * H), tol, TRUE);

  QomniVkBuffer *bufs[] = { bgu, bdn, bi, bxn, br, bg, by, bx, bt, sc[0], sc[1], sc[2] };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    qomni_vk_buffer_free (vk, bufs[i]);
  g_free (wgu.bytes);
  g_free (wdn.bytes);
}

/* DENSE: the grouped kernels as a plain prefill product y[j] (+)= W x[j], x rows strided. */
static void
test_dense_mm (QomniDType dt, int rows, int cols, int n, gboolean acc, gboolean cm)
{
  const int xs = cols + 4;
  Weight w = weight_new (dt, rows, cols, 1.0f);
  g_autofree float *x = randf ((size_t) n * xs + 4, 1.0f), *y0 = randf ((size_t) n * rows, 1.0f);
  g_autofree float *xc = g_new (float, (size_t) n * cols);
  for (int j = 0; j < n; j++)
    memcpy (xc + (size_t) j * cols, x + 4 + (size_t) j * xs, sizeof (float) * cols);
  g_autofree float *ref = g_new (float, (size_t) n * rows), *res = g_new (float, (size_t) n * rows);
  cpu_linear (ref, xc, n, &w.t, NULL);
  if (acc)
    for (int i = 0; i < n * rows; i++)
      ref[i] += y0[i];
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, ((size_t) n * xs + 4) * 4);
  QomniVkBuffer *by = out_new ((size_t) n * rows, acc ? y0 : NULL);
  QomniVkMoeMatmulPush pc = { .rows = rows, .cols = cols, .x_off = 4, .x_stride = xs,
                              .y_off = GUARD, .y_stride = rows, .E = 1, .x_div = 1, .n = n,
                              .flags = QOMNI_VK_DENSE | (acc ? QOMNI_VK_ACCUMULATE : 0) };
  QomniVkBind b[] = { { bw }, { bx }, { by }, { bx } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (cm ? QOMNI_VK_PIPE_MOE_MATMUL_CM_F32
                                                    : QOMNI_VK_PIPE_MOE_MATMUL_F32, dt),
                     b, 4, &pc, sizeof pc, (rows + 63) / 64, (n + 63) / 64, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * rows, res);
  char name[96];
  snprintf (name, sizeof name, "%smatmul dense %s %dx%d n=%d%s", cm ? "coopmat " : "",
            qomni_dtype_info (dt)->name, rows, cols, n, acc ? " acc" : "");
  report (name, nmse (res, ref, (size_t) n * rows), cm ? 1e-5 : 1e-9, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* ---- Code2Wav's ops: checked against the convolutions' definitions written out here ---- */

/* Causal Conv1d (weight [cout, cin, k], dilation d, left pad (k−1)·d) or the reference's
 * CausalTransConv1d (weight [cin, cout, k], stride s, trimmed by k − s on both sides),
 * time-major x [L, cin]; acc adds onto a random y. */
static void
test_conv1d (QomniDType dt, gboolean transposed, int L, int cin, int cout, int k, int dil,
             int s, gboolean acc)
{
  Weight w = weight_new (dt, transposed ? cin : cout, (int64_t) (transposed ? cout : cin) * k,
                         1.0f);
  g_autofree float *wf = qomni_tensor_to_f32_alloc (&w.t);
  g_autofree float *x = randf ((size_t) L * cin, 1.0f), *bias = randf (cout, 1.0f);
  const int T = transposed ? (L - k / s + 1) * s : L;
  g_autofree float *y0 = randf ((size_t) T * cout, 1.0f);
  g_autofree float *ref = g_new0 (float, (size_t) T * cout);
  g_autofree float *res = g_new (float, (size_t) T * cout);
  if (transposed) {
    /* the untransposed definition: input i lands on outputs i·s + j, then the trim */
    for (int i = 0; i < L; i++)
      for (int j = 0; j < k; j++) {
        const int t = i * s + j - (k - s);
        if (t < 0 || t >= T)
          continue;
        for (int co = 0; co < cout; co++) {
          double a = 0;
          for (int ci = 0; ci < cin; ci++)
            a += (double) x[(size_t) i * cin + ci] * wf[((size_t) ci * cout + co) * k + j];
          ref[(size_t) t * cout + co] += (float) a;
        }
      }
  } else {
    for (int t = 0; t < L; t++)
      for (int co = 0; co < cout; co++) {
        double a = 0;
        for (int j = 0; j < k; j++) {
          const int src = t - (k - 1 - j) * dil;
          if (src >= 0)
            for (int ci = 0; ci < cin; ci++)
              a += (double) x[(size_t) src * cin + ci] * wf[((size_t) co * cin + ci) * k + j];
        }
        ref[(size_t) t * cout + co] = (float) a;
      }
  }
  for (size_t i = 0; i < (size_t) T * cout; i++)
    ref[i] += bias[i % cout] + (acc ? y0[i] : 0.0f);
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bx = upload (x, (size_t) L * cin * 4);
  QomniVkBuffer *bb = upload (bias, (size_t) cout * 4);
  QomniVkBuffer *by = out_new ((size_t) T * cout, acc ? y0 : NULL);
  const int M = transposed ? L - k / s + 1 : L, R = transposed ? s * cout : cout;
  QomniVkConvPush pc = { .L = L, .M = M, .cin = cin, .cout = cout, .k = k, .dil = dil,
                         .stride = s, .y_off = GUARD,
                         .flags = QOMNI_VK_CONV_BIAS | (acc ? QOMNI_VK_ACCUMULATE : 0) };
  /* both tilings on every shape, whatever qomni_vk_conv_pipe would pick */
  for (int narrow = 0; narrow < 2; narrow++) {
    QomniVkPipe fam = narrow ? (transposed ? QOMNI_VK_PIPE_CONV1D_TN_F32 : QOMNI_VK_PIPE_CONV1D_N_F32)
                             : (transposed ? QOMNI_VK_PIPE_CONV1D_T_F32 : QOMNI_VK_PIPE_CONV1D_F32);
    QomniVkPipe pipe = qomni_vk_pipe_for_float_dtype (fam, dt);
    const int tr = narrow ? 16 : 64, tm = narrow ? 256 : 64;
    if (acc) {
      GError *error = NULL;
      g_autofree guint32 *init = g_new (guint32, (size_t) T * cout);
      memcpy (init, y0, (size_t) T * cout * 4);
      qomni_vk_upload (vk, by, 4 * GUARD, init, (size_t) T * cout * 4, &error);
      g_assert_no_error (error);
    }
    QomniVkBind b[] = { { bw }, { bx }, { by }, { bb } };
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
    qomni_vk_dispatch (c, pipe, b, 4, &pc, sizeof pc, (R + tr - 1) / tr, (M + tm - 1) / tm, 1);
    submit (c);
    gboolean g = out_get (by, (size_t) T * cout, res);
    char name[96];
    snprintf (name, sizeof name, "%s L=%d %d->%d k=%d %s=%d%s", qomni_vk_pipe_name (pipe), L,
              cin, cout, k, transposed ? "s" : "d", transposed ? s : dil, acc ? " acc" : "");
    report (name, nmse (res, ref, (size_t) T * cout), 1e-10, g);
  }
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bb);
  qomni_vk_buffer_free (vk, by);
  g_free (w.bytes);
}

/* Depthwise causal conv (groups = channels): weight [C, k] then bias [C], one f32 buffer. */
static void
test_dwconv1d (int L, int C, int k, int dil)
{
  g_autofree float *x = randf ((size_t) L * C, 1.0f), *wb = randf ((size_t) C * (k + 1), 1.0f);
  g_autofree float *ref = g_new (float, (size_t) L * C), *res = g_new (float, (size_t) L * C);
  for (int t = 0; t < L; t++)
    for (int ch = 0; ch < C; ch++) {
      float a = wb[(size_t) C * k + ch];
      for (int j = 0; j < k; j++) {
        const int src = t - (k - 1 - j) * dil;
        if (src >= 0)
          a += wb[(size_t) ch * k + j] * x[(size_t) src * C + ch];
      }
      ref[(size_t) t * C + ch] = a;
    }
  QomniVkBuffer *bx = upload (x, (size_t) L * C * 4), *bw = upload (wb, (size_t) C * (k + 1) * 4);
  QomniVkBuffer *by = out_new ((size_t) L * C, NULL);
  QomniVkDwConvPush pc = { .L = L, .C = C, .k = k, .dil = dil, .y_off = GUARD, .b_off = C * k };
  QomniVkBind b[] = { { bx }, { by }, { bw } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_DWCONV1D, b, 3, &pc, sizeof pc,
                     MIN ((L * C + 255) / 256, 1024), 1, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) L * C, res);
  char name[96];
  snprintf (name, sizeof name, "dwconv1d L=%d C=%d k=%d d=%d", L, C, k, dil);
  report (name, nmse (res, ref, (size_t) L * C), 1e-12, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, by);
}

/* SnakeBeta from log-space α, β (as stored), on inputs up to ±amp. */
static void
test_snake (int n, int C, float amp)
{
  g_autofree float *x = randf ((size_t) n * C, amp), *lab = randf (2 * (size_t) C, 1.0f);
  g_autofree float *par = g_new (float, 2 * (size_t) C);
  for (int ch = 0; ch < C; ch++) {
    par[ch] = expf (lab[ch]);
    par[C + ch] = 1.0f / (expf (lab[C + ch]) + 1e-9f);
  }
  g_autofree float *ref = g_new (float, (size_t) n * C), *res = g_new (float, (size_t) n * C);
  for (size_t i = 0; i < (size_t) n * C; i++) {
    const float sn = sinf (x[i] * par[i % C]);
    ref[i] = x[i] + par[C + i % C] * sn * sn;
  }
  QomniVkBuffer *bx = out_new ((size_t) n * C, x), *bp = upload (par, 2 * (size_t) C * 4);
  QomniVkSnakePush pc = { .n = n, .C = C, .x_off = GUARD, .y_off = GUARD, .b_off = C };
  QomniVkBind b[] = { { bx }, { bx }, { bp } };   /* in place, as the decoder runs it */
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SNAKE, b, 3, &pc, sizeof pc,
                     MIN ((n * C + 255) / 256, 1024), 1, 1);
  submit (c);
  gboolean g = out_get (bx, (size_t) n * C, res);
  char name[96];
  snprintf (name, sizeof name, "snake n=%d C=%d |x|<%g", n, C, amp);
  report (name, nmse (res, ref, (size_t) n * C), 1e-11, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, bp);
}

static void
test_scale_add (int n, int C)
{
  g_autofree float *x = randf ((size_t) n * C, 1.0f), *y = randf ((size_t) n * C, 1.0f);
  g_autofree float *gain = randf (C, 1.0f), *res = g_new (float, (size_t) n * C);
  g_autofree float *ref = g_memdup2 (x, sizeof (float) * n * C);
  for (size_t i = 0; i < (size_t) n * C; i++)
    ref[i] += gain[i % C] * y[i];
  QomniVkBuffer *bx = out_new ((size_t) n * C, x), *by = upload (y, (size_t) n * C * 4);
  QomniVkBuffer *bg = upload (gain, (size_t) C * 4);
  QomniVkScaleAddPush pc = { .n = n, .C = C, .x_off = GUARD };
  QomniVkBind b[] = { { bx }, { by }, { bg } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SCALE_ADD, b, 3, &pc, sizeof pc,
                     MIN ((n * C + 255) / 256, 1024), 1, 1);
  submit (c);
  gboolean g = out_get (bx, (size_t) n * C, res);
  char name[96];
  snprintf (name, sizeof name, "scale_add n=%d C=%d", n, C);
  report (name, nmse (res, ref, (size_t) n * C), 1e-12, g);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  qomni_vk_buffer_free (vk, bg);
}

/* Code embedding: Q stacked tables of cb rows, codes [Q, stride] codebook-major. */
static void
test_embed_mean (QomniDType dt, int Q, int cb, int cols, int n)
{
  Weight w = weight_new (dt, (int64_t) Q * cb, cols, 1.0f);
  const int stride = n + 3;   /* a window of a wider code array, as the stream passes it */
  guint32 *codes = g_new (guint32, (size_t) Q * stride);
  for (int i = 0; i < Q * stride; i++)
    codes[i] = (guint32) g_rand_int_range (rng, 0, cb);
  g_autofree float *ref = g_new0 (float, (size_t) n * cols), *row = g_new (float, cols);
  g_autofree float *res = g_new (float, (size_t) n * cols);
  for (int f = 0; f < n; f++) {
    for (int q = 0; q < Q; q++) {
      qomni_weight_row_f32 (&w.t, (int64_t) q * cb + codes[q * stride + 1 + f], row);
      qomni_cpu_add (ref + (size_t) f * cols, row, cols);
    }
    for (int h = 0; h < cols; h++)
      ref[(size_t) f * cols + h] /= (float) Q;
  }
  QomniVkBuffer *bw = upload (w.bytes, w.t.nbytes), *bc = upload (codes, (size_t) Q * stride * 4);
  QomniVkBuffer *by = out_new ((size_t) n * cols, NULL);
  QomniVkEmbedMeanPush pc = { .cols = cols, .n = n, .Q = Q, .cb = cb, .codes_off = 1,
                              .codes_stride = stride, .y_off = GUARD };
  QomniVkPipe pipe = qomni_vk_pipe_for_float_dtype (QOMNI_VK_PIPE_EMBED_MEAN_F32, dt);
  QomniVkBind b[] = { { bw }, { bc }, { by } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, pipe, b, 3, &pc, sizeof pc, 1, n, 1);
  submit (c);
  gboolean g = out_get (by, (size_t) n * cols, res);
  char name[96];
  snprintf (name, sizeof name, "%s Q=%d cb=%d %dx%d", qomni_vk_pipe_name (pipe), Q, cb, n, cols);
  /* the same additions in the same order: equal up to the division */
  report (name, nmse (res, ref, (size_t) n * cols), 1e-14, g);
  qomni_vk_buffer_free (vk, bw);
  qomni_vk_buffer_free (vk, bc);
  qomni_vk_buffer_free (vk, by);
  g_free (codes);
  g_free (w.bytes);
}

/* fill_random_blocks against the same hash and the CPU reference quantizer: blocks
 * dequantized on both sides, by NMSE (1e-6: the same values, up to a rare one-step
 * difference where a GPU divides less exactly), canaries after the last (odd) block. */
static guint32
pcg_hash (guint32 v)
{
  guint32 s = v * 747796405u + 2891336453u;
  guint32 w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

static void
test_fill_blocks (QomniDType dt, int n_blocks, guint32 seed, float scale)
{
  const size_t nbytes = qomni_dtype_nbytes (dt, (int64_t) n_blocks * 32);
  const size_t n_words = (nbytes + 3) / 4;
  QomniVkBuffer *bo = out_new (n_words, NULL);
  QomniVkFillBlocksPush pc = { .n_blocks = n_blocks, .off_words = GUARD, .seed = seed,
                               .q4 = dt == QOMNI_DTYPE_Q4_0, .scale = scale };
  QomniVkBind b[] = { { bo } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM_BLOCKS, b, 1, &pc, sizeof pc,
                     (n_blocks + 127) / 128, 1, 1);
  submit (c);
  g_autofree guint32 *got = g_new (guint32, n_words);
  gboolean g = out_get (bo, n_words, (float *) got);

  const int64_t n = (int64_t) n_blocks * 32;
  g_autofree float *v = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    v[i] = scale * ((float) (pcg_hash ((guint32) i ^ pcg_hash (seed)) >> 8) *
                    (2.0f / 16777216.0f) - 1.0f);
  g_autofree guint8 *want = g_new0 (guint8, nbytes);
  if (dt == QOMNI_DTYPE_Q8_0)
    qomni_quantize_row_q8_0_ref (v, (QomniBlockQ8_0 *) want, n);
  else
    qomni_quantize_row_q4_0_ref (v, (QomniBlockQ4_0 *) want, n);
  g_autofree float *a = g_new (float, n), *r = g_new (float, n);
  qomni_to_f32 (dt, got, a, n);
  qomni_to_f32 (dt, want, r, n);
  char name[96];
  snprintf (name, sizeof name, "fill_random_blocks %s %d blocks", qomni_dtype_info (dt)->name,
            n_blocks);
  report (name, nmse (a, r, (size_t) n), 1e-6, g);
  qomni_vk_buffer_free (vk, bo);
}

/* ---- perf ---- */

static double
time_dispatches (QomniVkPipe pipe, const QomniVkBind *b, int nb, const void *pc, size_t pcs,
                 uint32_t gx, uint32_t gy, int reps)
{
  for (int pass = 0; pass < 2; pass++) {  /* the first pass compiles and warms up */
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
    for (int i = 0; i < (pass ? reps : 1); i++)
      qomni_vk_dispatch (c, pipe, b, nb, pc, pcs, gx, gy, 1);
    gint64 t0 = g_get_monotonic_time ();
    submit (c);
    if (pass)
      return (g_get_monotonic_time () - t0) * 1e-6 / reps;
  }
  return 0;
}

/* Times reps of a recording function in one submission, after one warm-up. */
static double
time_recorded (void (*rec) (QomniVkCmd *c, gpointer user), gpointer user, int reps)
{
  double t = 0;
  for (int pass = 0; pass < 2; pass++) {
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
    for (int i = 0; i < (pass ? reps : 1); i++)
      rec (c, user);
    gint64 t0 = g_get_monotonic_time ();
    submit (c);
    t = (g_get_monotonic_time () - t0) * 1e-6 / (pass ? reps : 1);
  }
  return t;
}

typedef struct {
  QomniVkMoe m;
  const QomniVkBuffer *pair_g, *pair_y;   /* per-pair scratch of the matvec path */
  QomniDType dt;
} MoePerf;

static void
rec_moe_grouped (QomniVkCmd *c, gpointer user)
{
  qomni_vk_moe_prefill (c, &((MoePerf *) user)->m);
}

/* what rec_stack did before the grouped products: matvecs per (token, slot) pair */
static void
rec_moe_pairs (QomniVkCmd *c, gpointer user)
{
  MoePerf *mp = user;
  const QomniVkMoe *m = &mp->m;
  QomniVkPipe sw = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_SWIGLU_F32, mp->dt);
  QomniVkPipe dn = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, mp->dt);
  const uint32_t nr = qomni_vk_pipe_spec (sw, 1);
  QomniVkMatvecPush gp = { .rows = m->I, .cols = m->H, .x_stride = m->H, .y_stride = m->I,
                           .expert_stride = 2 * m->I * m->H, .x_div = m->K,
                           .flags = QOMNI_VK_USE_IDS };
  QomniVkBind bg[] = { { m->gate_up }, { m->xn }, { mp->pair_g }, { m->ids }, { m->xn } };
  qomni_vk_dispatch (c, sw, bg, 5, &gp, sizeof gp, (m->I + nr - 1) / nr, m->n * m->K, 1);
  QomniVkMatvecPush dp = { .rows = m->H, .cols = m->I, .x_stride = m->I, .y_stride = m->H,
                           .expert_stride = m->H * m->I, .x_div = 1, .flags = QOMNI_VK_USE_IDS };
  QomniVkBind bd[] = { { m->down }, { mp->pair_g }, { mp->pair_y }, { m->ids }, { m->xn } };
  qomni_vk_dispatch (c, dn, bd, 5, &dp, sizeof dp, (m->H + nr - 1) / nr, m->n * m->K, 1);
  QomniVkCombinePush cp = { .n = m->n, .H = m->H, .K = m->K };
  QomniVkBind bc[] = { { m->x }, { mp->pair_y }, { m->tw } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_COMBINE, bc, 3, &cp, sizeof cp, (m->H + 255) / 256,
                     m->n, 1);
}

/* one prompt attention as the models record it */
typedef struct {
  QomniVkAttnPush ap;
  const QomniVkBuffer *q, *kv, *o;
} AttnPerf;

static void
rec_attn_prompt (QomniVkCmd *c, gpointer user)
{
  const AttnPerf *a = user;
  qomni_vk_rec_attention (c, &a->ap, a->q, a->kv, a->kv, a->o);
}

/* A prompt's MoE block at the thinker's widths (H 2048, I 768, top-8) over E experts and
 * 512 tokens: per-pair matvecs (the old path), the grouped products, and the grouped
 * products on tensor cores where the device has them. */
static void
perf_moe (int E, int reps)
{
  GError *error = NULL;
  const int H = 2048, I = 768, K = 8, n = 512, S = n * K;
  const QomniDType dts[] = { QOMNI_DTYPE_BF16, QOMNI_DTYPE_Q8_0 };
  g_autofree guint32 *ids = moe_ids (n, E, K, LOAD_UNIFORM);
  g_autofree float *tw = randf (S, 0.2f), *xn = randf ((size_t) n * H, 1.0f);
  QomniVkBuffer *bi = upload (ids, (size_t) S * 4), *bt = upload (tw, (size_t) S * 4);
  QomniVkBuffer *bxn = upload (xn, (size_t) n * H * 4), *bx = upload (xn, (size_t) n * H * 4);
  const uint64_t sc_bytes[4] = { 4 * qomni_vk_moe_route_words (n, E, K), 4 * (uint64_t) S * I,
                                 4 * (uint64_t) S * H, 4 * (uint64_t) S * H };
  QomniVkBuffer *sc[4];
  for (int i = 0; i < 4; i++) {
    sc[i] = qomni_vk_buffer_new (vk, sc_bytes[i], QOMNI_VK_MEM_DEVICE, "perf moe", &error);
    g_assert_no_error (error);
  }
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++) {
    const QomniDType dt = dts[d];
    const uint64_t ngu = qomni_dtype_nbytes (dt, (int64_t) E * 2 * I * H);
    const uint64_t ndn = qomni_dtype_nbytes (dt, (int64_t) E * H * I);
    QomniVkBuffer *bw[2];
    for (int i = 0; i < 2; i++) {
      const uint64_t nb = i ? ndn : ngu;
      bw[i] = qomni_vk_buffer_new (vk, nb, QOMNI_VK_MEM_DEVICE, "perf experts", &error);
      g_assert_no_error (error);
      /* small random bits: finite in every format; speed only */
      QomniVkFillPush fp = { .n_words = (uint32_t) (nb / 4), .seed = 7 + i, .mode = 0,
                             .scale = 0.01f };
      QomniVkBind fb[] = { { bw[i] } };
      QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, fb, 1, &fp, sizeof fp, 4096, 1, 1);
      submit (c);
    }
    MoePerf mp = { .m = { .gate_up = bw[0], .gate_up_dtype = dt, .down = bw[1],
                          .down_dtype = dt, .xn = bxn, .x = bx, .ids = bi, .tw = bt,
                          .route = sc[0], .g = sc[1], .y = sc[2], .n = n, .H = H, .I = I,
                          .E = E, .K = K },
                   .pair_g = sc[1], .pair_y = sc[3], .dt = dt };
    const double flop = 2.0 * S * 3.0 * I * H, bytes = (double) (ngu + ndn);
    for (int way = 0; way < 3; way++) {
      if (way == 2 && !qomni_vk_has_coopmat (vk))
        break;
      mp.m.coopmat = way == 2;
      const double t = time_recorded (way ? rec_moe_grouped : rec_moe_pairs, &mp, reps);
      char name[64];
      snprintf (name, sizeof name, "moe %s E=%d n=%d: %s", qomni_dtype_info (dt)->name, E, n,
                way == 0 ? "per pair" : way == 1 ? "grouped" : "grouped coopmat");
      printf ("  %-36s %10.1f %10.1f %10.1f\n", name, t * 1e6, bytes / t * 1e-9,
              flop / t * 1e-9);
    }
    qomni_vk_buffer_free (vk, bw[0]);
    qomni_vk_buffer_free (vk, bw[1]);
  }
  QomniVkBuffer *bufs[] = { bi, bt, bxn, bx, sc[0], sc[1], sc[2], sc[3] };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    qomni_vk_buffer_free (vk, bufs[i]);
}

typedef struct {
  QomniVkMatmulArgs a;
  QomniVkMatmulPlan plan;
} MatmulPerf;

static void
rec_matmul_perf (QomniVkCmd *c, gpointer user)
{
  MatmulPerf *m = user;
  qomni_vk_rec_matmul_plan (c, &m->a, &m->plan);
}

/* One product two ways: the grid the tiled matmul had before split-K (64 × 64 tiles, one
 * split; the kernel is today's), then the plan qomni_vk_rec_matmul picks. */
static void
perf_matmul (QomniDType dt, QomniVkBuffer *bw, int rows, int cols, int n, QomniVkBuffer *bx,
             QomniVkBuffer *by, QomniVkBuffer *scratch, int reps)
{
  MatmulPerf m = { .a = { .w = { bw }, .dtype = dt, .rows = rows, .cols = cols, .n = n,
                          .x = bx, .x_stride = cols, .y = by, .y_stride = rows,
                          .scratch = scratch } };
  const double nb = (double) qomni_dtype_nbytes (dt, (int64_t) rows * cols);
  for (int way = 0; way < 2; way++) {
    if (way == 0)
      m.plan = forced_plan (QOMNI_VK_PIPE_MATMUL_F32, 1, cols);
    else
      qomni_vk_matmul_plan (rows, n, cols, scratch->size / 4, &m.plan);
    const double t = time_recorded (rec_matmul_perf, &m, reps);
    char name[80];
    snprintf (name, sizeof name, "matmul %s %dx%d n=%d %ux%u/%u", qomni_dtype_info (dt)->name,
              rows, cols, n, m.plan.tile_m, m.plan.tile_n, m.plan.splits);
    printf ("  %-36s %10.1f %10.1f %10.1f%s\n", name, t * 1e6, nb / t * 1e-9,
            2.0 * rows * cols * n / t * 1e-9, way ? "" : "  (old grid)");
  }
}

/* The encoders' bf16 products: the audio encoder's 1 s and 8 s (13 and 104 rows through
 * 1280 → 1280, 1280 → 5120, 5120 → 1280) and a 448² image's 784 rows through the vision
 * MLP (1152 → 4304 → 1152). Lines "WxK n=N TMxTN/S": tile and K splits. */
static void
perf_encoder_matmuls (int scale, QomniVkBuffer *scratch)
{
  GError *error = NULL;
  static const int shapes[][3] = { { 1280, 1280, 13 }, { 5120, 1280, 13 }, { 1280, 5120, 13 },
                                   { 1280, 1280, 104 }, { 5120, 1280, 104 },
                                   { 1280, 5120, 104 }, { 4304, 1152, 784 },
                                   { 1152, 4304, 784 } };
  QomniVkBuffer *bx = qomni_vk_buffer_new (vk, (uint64_t) 4 * 784 * 5120, QOMNI_VK_MEM_DEVICE,
                                           "perf x", &error);
  g_assert_no_error (error);
  QomniVkBuffer *by = qomni_vk_buffer_new (vk, (uint64_t) 4 * 784 * 5120, QOMNI_VK_MEM_DEVICE,
                                           "perf y", &error);
  g_assert_no_error (error);
  QomniVkBuffer *bw = qomni_vk_buffer_new (vk, (uint64_t) 2 * 5120 * 1280, QOMNI_VK_MEM_DEVICE,
                                           "perf w", &error);
  g_assert_no_error (error);
  QomniVkFillPush fx = { .n_words = 784 * 5120, .mode = 1, .scale = 1.0f };
  QomniVkFillPush fw = { .n_words = 5120 * 1280 / 2, .seed = 7, .mode = 0, .scale = 0.03f };
  QomniVkBind bxb[] = { { bx } }, bwb[] = { { bw } };
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, bxb, 1, &fx, sizeof fx, 4096, 1, 1);
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, bwb, 1, &fw, sizeof fw, 4096, 1, 1);
  submit (c);
  /* on a software device the vision shapes take seconds: there only the audio ones */
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    if (scale > 1 || shapes[i][2] < 784)
      perf_matmul (QOMNI_DTYPE_BF16, bw, shapes[i][0], shapes[i][1], shapes[i][2], bx, by,
                   scratch, scale > 1 ? 20 : 1);
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  qomni_vk_buffer_free (vk, bw);
}

static void
perf (int scale)
{
  GError *error = NULL;
  printf ("\nperf on %s (wall clock over a batch of dispatches, one submission)\n",
          qomni_vk_device_name (vk));
  printf ("  %-36s %10s %10s %10s\n", "op", "µs", "GB/s", "GFLOP/s");
  /* matvec: a 2048-wide projection, rows sized so the weight is ~32·scale MB in bf16 */
  const int cols = 2048, rows = 8192 * scale;
  const int reps = scale > 1 ? 50 : 3;
  g_autofree float *x = randf (512 * 4096, 1.0f);
  QomniVkBuffer *bx = upload (x, 512 * 4096 * 4);
  QomniVkBuffer *by = qomni_vk_buffer_new (vk, (uint64_t) 512 * rows * 4, QOMNI_VK_MEM_DEVICE,
                                           "perf y", &error);
  g_assert_no_error (error);
  QomniVkBuffer *scratch = qomni_vk_buffer_new (vk, (uint64_t) 4 << 22, QOMNI_VK_MEM_DEVICE,
                                                "perf matmul partials", &error);
  g_assert_no_error (error);
  perf_encoder_matmuls (scale, scratch);
  for (guint d = 0; d < G_N_ELEMENTS (wtypes); d++) {
    QomniDType dt = wtypes[d];
    size_t nb = qomni_dtype_nbytes (dt, (int64_t) rows * cols);
    QomniVkBuffer *bw = qomni_vk_buffer_new (vk, nb, QOMNI_VK_MEM_DEVICE, "perf w", &error);
    g_assert_no_error (error);
    {
      /* random bits: every dtype decodes them to finite-ish numbers or NaN alike; speed only */
      QomniVkFillPush fp = { .n_words = (uint32_t) (nb / 4), .seed = d, .mode = 0, .scale = 0.1f };
      QomniVkBind fb[] = { { bw } };
      QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, fb, 1, &fp, sizeof fp, 4096, 1, 1);
      submit (c);
    }
    QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, dt);
    QomniVkMatvecPush pc = { .rows = rows, .cols = cols, .x_stride = cols, .y_stride = rows,
                             .x_div = 1 };
    QomniVkBind b[] = { { bw }, { bx }, { by }, { bx }, { bx } };
    const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
    double t = time_dispatches (pipe, b, 5, &pc, sizeof pc, (rows + nr - 1) / nr, 1, reps);
    char name[64];
    snprintf (name, sizeof name, "matvec %s %dx%d", qomni_dtype_info (dt)->name, rows, cols);
    printf ("  %-36s %10.1f %10.1f %10.1f\n", name, t * 1e6, nb / t * 1e-9,
            2.0 * rows * cols / t * 1e-9);
    const int n = 512;
    perf_matmul (dt, bw, rows, cols, n, bx, by, scratch, scale > 1 ? 5 : 1);
    /* the grouped kernels in DENSE mode: SIMT (vector loads, vec4 shared), tensor cores */
    for (int cm = 0; cm <= qomni_vk_has_coopmat (vk); cm++) {
      QomniVkMoeMatmulPush cp = { .rows = rows, .cols = cols, .x_stride = cols, .y_stride = rows,
                                  .E = 1, .x_div = 1, .n = n, .flags = QOMNI_VK_DENSE };
      QomniVkBind cb[] = { { bw }, { bx }, { by }, { bx } };
      t = time_dispatches (qomni_vk_pipe_for_dtype (cm ? QOMNI_VK_PIPE_MOE_MATMUL_CM_F32
                                                       : QOMNI_VK_PIPE_MOE_MATMUL_F32, dt),
                           cb, 4, &cp, sizeof cp, (rows + 63) / 64, (n + 63) / 64,
                           scale > 1 ? 5 : 1);
      snprintf (name, sizeof name, "moe_matmul%s dense %s n=%d", cm ? "_cm" : "",
                qomni_dtype_info (dt)->name, n);
      printf ("  %-36s %10.1f %10.1f %10.1f\n", name, t * 1e6, nb / t * 1e-9,
              2.0 * rows * cols * n / t * 1e-9);
    }
    qomni_vk_buffer_free (vk, bw);
  }
  /* attention decode: 32 heads over a 4096-position cache of 4 KV heads × 128 */
  {
    const int m = 4096, nkv = 4, hd = 128, nh = 32;
    QomniVkBuffer *kv = qomni_vk_buffer_new (vk, (uint64_t) m * nkv * hd * 4, QOMNI_VK_MEM_DEVICE,
                                             "perf kv", &error);
    g_assert_no_error (error);
    QomniVkFillPush fp = { .n_words = m * nkv * hd, .mode = 1, .scale = 1.0f };
    QomniVkBind fb[] = { { kv } };
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, fb, 1, &fp, sizeof fp, 4096, 1, 1);
    submit (c);
    QomniVkAttnPush ap = { .n = 1, .m = m, .nh = nh, .nkv = nkv, .hd = hd, .q_stride = nh * hd,
                           .kv_stride = nkv * hd, .o_stride = nh * hd, .q_pos0 = m - 1,
                           .causal = 1, .scale = 0.088f };
    QomniVkBind ab[] = { { bx }, { kv }, { kv }, { by } };
    double t = time_dispatches (QOMNI_VK_PIPE_ATTENTION, ab, 4, &ap, sizeof ap, nh, 1, reps);
    double bytes = 2.0 * m * nkv * hd * 4;
    printf ("  %-36s %10.1f %10.1f %10.1f\n", "attention decode m=4096 32/4x128", t * 1e6,
            bytes / t * 1e-9, 4.0 * m * nh * hd / t * 1e-9);
    /* the same through split + combine, at a few cache lengths */
    static const int ms[] = { 512, 4096 };
    for (guint mi = 0; mi < G_N_ELEMENTS (ms); mi++) {
      QomniVkAttnPush sp = ap;
      sp.m = ms[mi];
      sp.q_pos0 = ms[mi] - 1;
      sp.o_stride = 0;
      sp.n_chunks = qomni_vk_attn_split (sp.m, &sp.span);
      QomniVkAttnCombinePush cp = { .n = 1, .nh = nh, .hd = hd, .n_chunks = sp.n_chunks,
                                    .o_stride = nh * hd };
      QomniVkBuffer *bp = qomni_vk_buffer_new (
          vk, 4 * qomni_vk_attn_part_floats (1, nh, hd, sp.n_chunks), QOMNI_VK_MEM_DEVICE,
          "perf partials", &error);
      g_assert_no_error (error);
      QomniVkBind sb[] = { { bx }, { kv }, { kv }, { bp }, { bx } };
      QomniVkBind cb[] = { { bp }, { by } };
      double ts = 0;
      for (int pass = 0; pass < 2; pass++) {
        QomniVkCmd *c2 = qomni_vk_cmd_begin (vk, NULL);
        for (int i = 0; i < (pass ? reps : 1); i++) {
          qomni_vk_dispatch (c2, QOMNI_VK_PIPE_ATTN_SPLIT, sb, 5, &sp, sizeof sp, nh, 1,
                             sp.n_chunks);
          qomni_vk_dispatch (c2, QOMNI_VK_PIPE_ATTN_COMBINE, cb, 2, &cp, sizeof cp, nh, 1, 1);
        }
        gint64 t0 = g_get_monotonic_time ();
        submit (c2);
        ts = (g_get_monotonic_time () - t0) * 1e-6 / (pass ? reps : 1);
      }
      char nm[64];
      snprintf (nm, sizeof nm, "attn split+combine m=%d (%u chunks)", ms[mi], sp.n_chunks);
      bytes = 2.0 * ms[mi] * nkv * hd * 4;
      printf ("  %-36s %10.1f %10.1f %10.1f\n", nm, ts * 1e6, bytes / ts * 1e-9,
              4.0 * ms[mi] * nh * hd / ts * 1e-9);
      qomni_vk_buffer_free (vk, bp);
    }
    /* prompt attention, the per-row kernel against the tiled one the models use: the
     * thinker's 512-token prefill (32 query heads on 4 KV heads × 128, causal) and one
     * 448×448 image in the vision encoder (784 patches, 16 heads × 72, one block) */
    static const struct {
      const char *what;
      int n, nh, nkv, hd;
      gboolean causal;
    } ps[] = { { "512 32/4x128", 512, 32, 4, 128, TRUE },
               { "784 16x72 block", 784, 16, 16, 72, FALSE } };
    for (guint pi = 0; pi < G_N_ELEMENTS (ps); pi++) {
      const int n = ps[pi].n, ph = ps[pi].nh, pkv = ps[pi].nkv, phd = ps[pi].hd;
      AttnPerf a = { .ap = { .n = n, .m = n, .nh = ph, .nkv = pkv, .hd = phd,
                             .q_stride = ph * phd, .kv_stride = pkv * phd,
                             .o_stride = ph * phd, .causal = ps[pi].causal,
                             .scale = 1.0f / sqrtf (phd), .block = ps[pi].causal ? 0 : n },
                     .q = bx, .kv = kv, .o = by };
      QomniVkBind pb[] = { { bx }, { kv }, { kv }, { by } };
      const double t_row = time_dispatches (QOMNI_VK_PIPE_ATTENTION, pb, 4, &a.ap, sizeof a.ap,
                                            ph, n, reps);
      const double t_tile = time_recorded (rec_attn_prompt, &a, reps);
      const double keys = ps[pi].causal ? n * (n + 1.0) / 2 : (double) n * n;
      const double flop = 4.0 * keys * ph * phd;
      char nm[64];
      snprintf (nm, sizeof nm, "prompt %s attention", ps[pi].what);
      printf ("  %-36s %10.1f %10s %10.1f\n", nm, t_row * 1e6, "", flop / t_row * 1e-9);
      snprintf (nm, sizeof nm, "prompt %s %s", ps[pi].what,
                qomni_vk_pipe_name (qomni_vk_attn_pipe (&a.ap)));
      printf ("  %-36s %10.1f %10s %10.1f  (%.1fx)\n", nm, t_tile * 1e6, "",
              flop / t_tile * 1e-9, t_row / t_tile);
    }
    qomni_vk_buffer_free (vk, kv);
  }
  /* Code2Wav's convolutions at the release's widths for a 35-frame call (chunk 10 +
   * context 25), bf16 kernels: block 1's transposed conv and first residual conv, block 4's
   * dilated conv, and the final 96 → 1 conv (narrow tiles) */
  {
    static const struct { const char *what; gboolean tr; int L, cin, cout, k, dil, s; } cs[] = {
      { "conv_t 1536->768 k16 s8", TRUE, 140, 1536, 768, 16, 1, 8 },
      { "conv 768->768 k7 d3", FALSE, 1120, 768, 768, 7, 3, 1 },
      { "conv 96->96 k7 d9", FALSE, 67200, 96, 96, 7, 9, 1 },
      { "conv 96->1 k7", FALSE, 67200, 96, 1, 7, 1, 1 },
    };
    QomniVkBuffer *cx = qomni_vk_buffer_new (vk, 4 * (uint64_t) 67200 * 96, QOMNI_VK_MEM_DEVICE,
                                             "perf conv x", &error);
    QomniVkBuffer *cy = qomni_vk_buffer_new (vk, 4 * (uint64_t) 67200 * 96, QOMNI_VK_MEM_DEVICE,
                                             "perf conv y", &error);
    QomniVkBuffer *cw = qomni_vk_buffer_new (vk, 2 * (uint64_t) 1536 * 768 * 16,
                                             QOMNI_VK_MEM_DEVICE, "perf conv w", &error);
    g_assert_no_error (error);
    QomniVkFillPush fp = { .n_words = 67200 * 96 / 2, .mode = 0, .scale = 0.1f };
    QomniVkBind fb[] = { { cx } }, fw[] = { { cw } };
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, NULL);
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, fb, 1, &fp, sizeof fp, 4096, 1, 1);
    fp.n_words = 1536 * 768 * 16 / 2;
    fp.seed = 1;
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, fw, 1, &fp, sizeof fp, 4096, 1, 1);
    submit (c);
    for (guint i = 0; i < G_N_ELEMENTS (cs); i++) {
      const int M = cs[i].tr ? cs[i].L - cs[i].k / cs[i].s + 1 : cs[i].L;
      const int R = cs[i].tr ? cs[i].s * cs[i].cout : cs[i].cout;
      uint32_t tr, tm;
      const int pipe = qomni_vk_conv_pipe (QOMNI_DTYPE_BF16, cs[i].tr, R, &tr, &tm);
      QomniVkConvPush cp = { .L = cs[i].L, .M = M, .cin = cs[i].cin, .cout = cs[i].cout,
                             .k = cs[i].k, .dil = cs[i].dil, .stride = cs[i].s,
                             .flags = QOMNI_VK_CONV_BIAS };
      QomniVkBind cb[] = { { cw }, { cx }, { cy }, { cx } };
      const double t = time_dispatches (pipe, cb, 4, &cp, sizeof cp, (R + tr - 1) / tr,
                                        (M + tm - 1) / tm, 3);
      const double flop = 2.0 * M * R * (double) cs[i].cin * (cs[i].tr ? cs[i].k / cs[i].s
                                                                          : cs[i].k);
      char name[64];
      snprintf (name, sizeof name, "%s L=%d", cs[i].what, cs[i].L);
      printf ("  %-36s %10.1f %10s %10.1f\n", name, t * 1e6, "", flop / t * 1e-9);
    }
    qomni_vk_buffer_free (vk, cx);
    qomni_vk_buffer_free (vk, cy);
    qomni_vk_buffer_free (vk, cw);
  }
  qomni_vk_buffer_free (vk, bx);
  qomni_vk_buffer_free (vk, by);
  qomni_vk_buffer_free (vk, scratch);
  perf_moe (128, scale > 1 ? 5 : 1);
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);  /* lines reach a log even if a slow device is killed */
  gboolean do_perf = FALSE;
  int scale = 1;
  for (int i = 1; i < argc; i++)
    if (!strcmp (argv[i], "--perf"))
      do_perf = TRUE;
    else if (!strncmp (argv[i], "--scale=", 8))
      scale = MAX (1, atoi (argv[i] + 8));
  GError *error = NULL;
  vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  printf ("device: %s (subgroup %u, max binding range %" G_GUINT64_FORMAT " MiB)\n",
          qomni_vk_device_name (vk), qomni_vk_subgroup_size (vk),
          qomni_vk_max_range (vk) >> 20);
  rng = g_rand_new_with_seed (1234);

  static const int float_shapes[][2] = { { 1, 7 }, { 7, 33 }, { 33, 257 }, { 257, 64 },
                                         { 64, 2048 } };
  static const int block_shapes[][2] = { { 1, 32 }, { 7, 64 }, { 33, 256 }, { 257, 512 },
                                         { 64, 2048 } };
  for (guint d = 0; d < G_N_ELEMENTS (wtypes); d++) {
    const QomniDType dt = wtypes[d];
    const int (*shapes)[2] = is_block (dt) ? block_shapes : float_shapes;
    for (int s = 0; s < 5; s++)
      test_matvec (dt, shapes[s][0], shapes[s][1], 1, FALSE);
    test_matvec (dt, 33, is_block (dt) ? 64 : 40, 3, TRUE);
    test_swiglu_ids (dt, 5, 24, is_block (dt) ? 64 : 48, 3, 2, FALSE);
    test_matmul (dt, 33, is_block (dt) ? 64 : 33, 7);
    test_matmul (dt, 130, 256, 65);
    test_matmul (dt, 7, is_block (dt) ? 32 : 9, 1);
    test_embed (dt, 50, is_block (dt) ? 64 : 33, 5);
  }
  /* the tiled product's plans: every n of a few rows (narrow tiles), the audio encoder's
   * 13 and 104 rows, 513; K split by the plan (200 = 3 splits of 80, 80, 40); accumulate,
   * bias and the GELUs in the last pass; odd row strides (the scalar loads) */
  for (guint d = 0; d < G_N_ELEMENTS (wtypes); d++) {
    const QomniDType dt = wtypes[d];
    const int K = is_block (dt) ? 256 : 200;
    for (int n = 1; n <= 7; n++)
      test_matmul_ex (dt, 33, K, n, -1, 0, n & 1, n % 3 - 1, 0, n % 2);
    test_matmul_ex (dt, 33, K, 13, -1, 0, TRUE, QOMNI_VK_ACT_GELU, 0, 0);
    test_matmul_ex (dt, 70, K, 104, -1, 0, TRUE, QOMNI_VK_ACT_NONE, 0, 3);
    test_matmul_ex (dt, 70, is_block (dt) ? 96 : 40, 513, -1, 0, TRUE, QOMNI_VK_ACT_GELU_TANH,
                    0, 0);
    /* each tile forced, with 1, 3 and 5 splits, odd strides */
    const QomniVkPipe fam[] = { QOMNI_VK_PIPE_MATMUL_F32, QOMNI_VK_PIPE_MATMUL_WIDE_F32,
                                QOMNI_VK_PIPE_MATMUL_NARROW_F32 };
    const int fam_n[] = { 104, 133, 13 };
    for (guint f = 0; f < G_N_ELEMENTS (fam); f++)
      for (int sp = 1; sp <= 5; sp += 2)
        test_matmul_ex (dt, 70, is_block (dt) ? 160 : (sp == 3 ? 150 : 152), fam_n[f], fam[f],
                        sp, sp != 1, sp == 5 ? QOMNI_VK_ACT_GELU : -1, sp == 3, sp == 3 ? 1 : 0);
  }
  /* the decode fusions (after the table above, so its random inputs stay as they were) */
  for (guint d = 0; d < G_N_ELEMENTS (wtypes); d++) {
    const QomniDType dt = wtypes[d];
    test_swiglu_ids (dt, 5, 24, is_block (dt) ? 64 : 48, 3, 2, TRUE);
    test_matvec_norm (dt, 33, is_block (dt) ? 64 : 40, 2, 4);
    test_down_ksum (dt, 6, 33, is_block (dt) ? 64 : 24, 2, 3);
    if (!is_block (dt))
      test_down_ksum (dt, 4, 9, 7, 1, 4);   /* odd width: the scalar path */
    test_matvec_norm (dt, 64, 2048, 1, 8);
    if (!is_block (dt))
      test_matvec_norm (dt, 7, 33, 3, 3);   /* odd width and gain offset: the scalar path */
  }
  test_norm (FALSE, 1, 7);
  test_norm (FALSE, 5, 33);
  test_norm (FALSE, 3, 2048);
  test_norm (TRUE, 1, 7);
  test_norm (TRUE, 4, 257);
  test_softmax (1, 1);
  test_softmax (3, 257);
  test_rope (5, 3, 16, TRUE);
  test_rope (2, 4, 128, TRUE);
  test_rope (3, 2, 8, FALSE);
  test_attention (1, 33, 4, 2, 16, 32, TRUE, 0);
  test_attention (7, 7, 4, 1, 128, 0, TRUE, 0);
  test_attention (5, 12, 2, 2, 16, 7, TRUE, 4);
  test_attention (6, 6, 3, 3, 8, 0, FALSE, 0);
  test_attention (1, 300, 8, 2, 64, 299, TRUE, 0);
  test_attention_split (1, 1, 32, 4, 128, 0, TRUE, 0, 0);
  test_attention_split (1, 7, 4, 2, 16, 6, TRUE, 0, 0);
  test_attention_split (1, 33, 4, 2, 16, 32, TRUE, 0, 0);
  test_attention_split (1, 513, 32, 4, 128, 512, TRUE, 0, 0);
  test_attention_split (1, 4096, 32, 4, 128, 4095, TRUE, 0, 0);
  test_attention_split (1, 5000, 8, 2, 64, 4999, TRUE, 0, 0);   /* span > tile */
  test_attention_split (3, 515, 8, 2, 64, 512, TRUE, 0, 0);     /* rows see different ranges */
  test_attention_split (4, 300, 4, 4, 256, 296, TRUE, 100, 0);  /* window, hd = 256 */
  test_attention_split (2, 70, 6, 3, 8, 0, FALSE, 0, 0);
  /* the replayed grid covers every m up to the cache's length */
  {
    gboolean g = TRUE;
    for (uint32_t mm = 1; mm <= 20000; mm += 7)
      for (uint32_t m2 = 1; m2 <= mm; m2 += 1 + m2 / 64) {
        uint32_t span;
        g &= qomni_vk_attn_split (m2, &span) <= qomni_vk_attn_split_max (mm);
      }
    n_run++;
    n_fail += !g;
    printf ("%s attn_split_max: the grid covers every shorter cache\n", g ? "ok  " : "FAIL");
  }
  /* replayed: fewer live chunks than the grid; a span past the tile */
  test_attention_split (1, 100, 4, 2, 16, 99, TRUE, 0, 1000);
  test_attention_split (1, 33, 4, 2, 16, 32, TRUE, 0, 4096);
  test_attention_split (1, 5000, 8, 2, 64, 4999, TRUE, 0, 8192);
  test_attention_split (1, 4096, 8, 2, 64, 4095, TRUE, 0, 6000);   /* 128 live chunks */
  test_attention_blocks (25, 3, 16, 8);    /* 3 full blocks and a short one */
  test_attention_blocks (104, 4, 64, 104);  /* one audio window */
  test_attention_blocks (70, 2, 72, 35);    /* vision's head size, two images */
  test_rope_qkv (1, 32, 4, 128, TRUE, -1);
  test_rope_qkv (3, 4, 2, 16, TRUE, -1);
  test_rope_qkv (2, 3, 1, 8, FALSE, -1);
  test_rope_qkv (1, 4, 2, 16, TRUE, 37);
  const QomniVkPipe elts[] = { QOMNI_VK_PIPE_SILU_MUL, QOMNI_VK_PIPE_GELU,
                               QOMNI_VK_PIPE_GELU_TANH, QOMNI_VK_PIPE_ADD, QOMNI_VK_PIPE_SCALE };
  for (guint i = 0; i < G_N_ELEMENTS (elts); i++) {
    test_eltwise (elts[i], 1);
    test_eltwise (elts[i], 257);
    test_eltwise (elts[i], 10000);
  }
  for (int act = 0; act < 3; act++) {
    test_bias_act (1, 7, 7, act);
    test_bias_act (33, 257, 300, act);
  }
  test_conv2d (QOMNI_DTYPE_F32, 1, 9, 7, 1, 5, 7);        /* odd sizes, one input channel */
  test_conv2d (QOMNI_DTYPE_BF16, 3, 8, 10, 6, 13, 3);     /* last chunk padded from 3 */
  test_conv2d (QOMNI_DTYPE_F16, 2, 5, 5, 16, 70, 5);
  test_topk (3, 8, 2, FALSE);
  test_topk (2, 128, 8, FALSE);
  test_topk (1, 7, 7, FALSE);
  test_topk (3, 128, 6, TRUE);
  test_topk (1, 8, 2, TRUE);
  test_combine (2, 33, 3);
  test_combine (1, 2048, 8);
  test_argmax (1);
  test_argmax (7);
  test_argmax (152064);
  if (qomni_vk_has_float64 (vk)) {
    /* the code predictor's vocabulary and default, ties, every top-k path */
    test_sample_pick (2048, 256, 1.0f, 50, 0.8f, 8.0f, 0.0f);
    test_sample_pick (2048, 128, 0.7f, 50, 0.95f, 8.0f, 0.5f);
    test_sample_pick (2048, 64, 1.3f, QOMNI_VK_PICK_MAX_K, 1.0f, 4.0f, 0.0f);
    test_sample_pick (200, 64, 0.9f, 0, 0.9f, 6.0f, 0.0f);
    test_sample_pick (37, 64, 1.0f, 50, 0.8f, 3.0f, 0.25f);
    test_sample_pick (2048, 32, 0.25f, 1, 0.8f, 8.0f, 0.0f);
  } else {
    printf ("note: %s has no shaderFloat64: sample_pick not tested (the code predictor "
            "samples on the CPU there)\n", qomni_vk_device_name (vk));
  }
  /* Code2Wav: odd lengths and widths, the release's k = 2s transposed kernels and the
   * dilations 1, 3, 9 of its residual units */
  static const QomniDType fdt[] = { QOMNI_DTYPE_F32, QOMNI_DTYPE_F16, QOMNI_DTYPE_BF16 };
  for (guint d = 0; d < G_N_ELEMENTS (fdt); d++) {
    test_conv1d (fdt[d], FALSE, 37, 19, 33, 7, 1, 1, FALSE);
    test_conv1d (fdt[d], FALSE, 70, 24, 65, 7, 9, 1, FALSE);
    test_conv1d (fdt[d], FALSE, 29, 40, 40, 1, 1, 1, TRUE);
    test_conv1d (fdt[d], TRUE, 13, 24, 17, 10, 1, 5, FALSE);
    test_conv1d (fdt[d], TRUE, 9, 33, 16, 2, 1, 2, FALSE);
    test_embed_mean (fdt[d], 4, 11, 33, 5);
  }
  test_conv1d (QOMNI_DTYPE_F32, FALSE, 100, 7, 1, 7, 3, 1, FALSE);   /* to one channel */
  test_conv1d (QOMNI_DTYPE_F32, TRUE, 4, 20, 9, 6, 1, 3, TRUE);
  test_conv1d (QOMNI_DTYPE_BF16, FALSE, 130, 96, 96, 7, 3, 1, FALSE);
  test_conv1d (QOMNI_DTYPE_F32, FALSE, 300, 5, 4, 7, 9, 1, TRUE);   /* several narrow tiles */
  test_dwconv1d (1, 5, 7, 1);
  test_dwconv1d (37, 33, 7, 1);
  test_dwconv1d (20, 8, 3, 4);
  test_snake (1, 1, 1.0f);
  test_snake (37, 33, 3.0f);
  test_snake (64, 96, 90.0f);
  test_scale_add (1, 7);
  test_scale_add (37, 257);
  for (int q4 = 0; q4 < 2; q4++) {
    const QomniDType dt = q4 ? QOMNI_DTYPE_Q4_0 : QOMNI_DTYPE_Q8_0;
    test_fill_blocks (dt, 1, 3, 0.5f);
    test_fill_blocks (dt, 2, 4, 0.04f);
    test_fill_blocks (dt, 129, 5, 0.04f);   /* odd: the last block alone */
    test_fill_blocks (dt, 64 * 300, 6, 1.0f);
  }
  /* the grouped MoE of a prefill: the vector path (widths of 8) and, for the float
   * formats, odd widths (the scalar path); uneven loads with empty experts. Then the same
   * on tensor cores where the device has them (NVIDIA; not lavapipe). */
  const gboolean has_cm = qomni_vk_has_coopmat (vk);
  for (int cm = 0; cm <= has_cm; cm++)
    for (guint d = 0; d < G_N_ELEMENTS (wtypes); d++) {
      const QomniDType dt = wtypes[d];
      if (is_block (dt)) {
        test_moe_grouped (dt, 8, 32, 64, 9, 3, LOAD_UNIFORM, cm);
        test_moe_grouped (dt, 16, 64, 96, 70, 4, LOAD_SKEWED, cm);
        test_dense_mm (dt, 130, 256, 65, FALSE, cm);
      } else {
        test_moe_grouped (dt, 8, 24, 48, 9, 3, LOAD_UNIFORM, cm);
        test_moe_grouped (dt, 16, 72, 80, 70, 4, LOAD_SKEWED, cm);
        test_moe_grouped (dt, 5, 7, 33, 13, 2, LOAD_UNIFORM, cm);
        test_dense_mm (dt, 130, 72, 65, TRUE, cm);
        test_dense_mm (dt, 33, 37, 7, FALSE, cm);
      }
    }
  if (!has_cm)
    printf ("not run: the tensor-core (coopmat) kernels: this device lacks "
            "VK_NV_cooperative_matrix 16x8x16 fp16 (or QOMNI_VK_COOPMAT=0)\n");
  /* the prompt attention (tiled: 32 (row, head) pairs a workgroup, keys in tiles of 32):
   * GQA ratios 1, 3, 4, 8, rows not a multiple of the tile, a cache before the rows
   * (q_pos0), sliding windows, blocks with a short last one, head sizes 8 … 128; the
   * per-row kernel for hd 256 */
  test_attention_prompt (37, 37, 16, 2, 128, 0, TRUE, 0, 0);    /* the thinker's ratio 8 */
  test_attention_prompt (45, 64, 16, 4, 128, 19, TRUE, 0, 0);   /* appended to a cache */
  test_attention_prompt (70, 70, 3, 3, 64, 0, TRUE, 0, 0);
  test_attention_prompt (23, 23, 12, 4, 16, 0, TRUE, 0, 0);     /* ratio 3: rows split */
  test_attention_prompt (67, 67, 4, 4, 128, 0, TRUE, 16, 0);    /* Code2Wav's window */
  test_attention_prompt (33, 73, 8, 1, 128, 40, TRUE, 20, 0);   /* window past a cache */
  test_attention_prompt (1, 33, 4, 2, 16, 32, TRUE, 0, 0);      /* one row */
  test_attention_prompt (6, 6, 3, 3, 8, 0, FALSE, 0, 0);
  test_attention_prompt (5, 9, 4, 2, 100, 4, TRUE, 0, 0);       /* 25 vec4s: uneven lanes */
  test_attention_prompt (25, 25, 3, 3, 16, 0, FALSE, 0, 8);     /* 3 blocks and a short one */
  test_attention_prompt (117, 117, 4, 4, 64, 0, FALSE, 0, 104); /* audio: window + 13 rows */
  test_attention_prompt (200, 200, 2, 2, 72, 0, FALSE, 0, 100); /* vision: two images */
  test_attention_prompt (40, 40, 8, 2, 72, 0, FALSE, 0, 13);    /* GQA inside blocks */
  test_attention_prompt (5, 9, 4, 2, 256, 4, TRUE, 0, 0);       /* per-row kernel */
  printf ("%d of %d passed\n", n_run - n_fail, n_run);
  if (do_perf)
    perf (scale);
  g_rand_free (rng);
  qomni_vk_free (vk);
  return n_fail ? 1 : 0;
}
