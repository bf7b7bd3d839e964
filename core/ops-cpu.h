/* qomni — CPU kernels: the plain float32 reference every GPU kernel is tested against,
 * and fast enough to run the tiny and mid-size models. Matrix products use all cores
 * (OpenMP). Weights may be f32, f16, bf16, q8_0 or q4_0; activations are f32.
 *
 * Shapes follow PyTorch: a linear weight W is [out, in] and y = x · Wᵀ (+ b).
 */
#pragma once

#include "tensor.h"

G_BEGIN_DECLS

/* (transfer full) A float copy of any float tensor (norm gains, biases, small tables). */
float *qomni_tensor_to_f32_alloc (const QomniTensor *t);

/* Row `row` of a 2-D weight as f32 into dst[cols]. */
void qomni_weight_row_f32 (const QomniTensor *w, int64_t row, float *dst);

/* y[n, out] = x[n, in] · Wᵀ + bias. W is [out, in]; bias is [out] f32 or NULL.
 * x and y must not overlap. */
void qomni_cpu_linear (float *y, const float *x, int n, const QomniTensor *w, const float *bias);

/* Several products of one input (q/k/v): the input quantized once for block formats and
 * one parallel region for all of them. ys[i] = x · ws[i]ᵀ, no bias. */
void qomni_cpu_linear_same_input (float *const *ys, const QomniTensor *const *ws, int n_w,
                                  const float *x, int n);

/* Q8_0 and Q4_0 weights: their products take the activations quantized to Q8_0
 * (qomni_cpu_quantize_act: n rows of k, each qomni_cpu_act_q8_bytes (k) bytes) and dot
 * int8 by int8 (qomni_cpu_dot_row_q8). */
gboolean qomni_cpu_dtype_is_block (QomniDType dtype);
gsize qomni_cpu_act_q8_bytes (int64_t k);
void qomni_cpu_quantize_act (const float *x, int n, int64_t k, void *xq);
float qomni_cpu_dot_row_q8 (QomniDType dtype, const void *w_row, const void *xq, int64_t k);

/* dot(w_row, x) over k elements for a weight row of any dtype (k a multiple of 32 for
 * block formats). */
float qomni_cpu_dot_row (QomniDType dtype, const void *w_row, const float *x, int64_t k);

/* RMSNorm over the last dim: y = x / sqrt(mean(x²) + eps) · w (w may be NULL). In place ok. */
void qomni_cpu_rmsnorm (float *y, const float *x, int n, int dim, const float *w, float eps);
/* LayerNorm with biased variance; w, b may be NULL. In place ok. */
void qomni_cpu_layernorm (float *y, const float *x, int n, int dim, const float *w,
                          const float *b, float eps);

void qomni_cpu_silu_mul (float *gate, const float *up, int64_t n);  /* gate = silu(gate)·up */
void qomni_cpu_silu (float *x, int64_t n);
void qomni_cpu_gelu (float *x, int64_t n);       /* exact: 0.5x(1+erf(x/√2)) */
void qomni_cpu_gelu_tanh (float *x, int64_t n);  /* tanh approximation */
void qomni_cpu_softmax (float *x, int n);
void qomni_cpu_add (float *y, const float *x, int64_t n);  /* y += x */

/* Rotate-half RoPE in place on x[n, heads, hd]: element i pairs with i + hd/2, angle
 * ang[r, i] for row r and slot i < hd/2 (given as cos/sin [n, hd/2]). */
void qomni_cpu_rope (float *x, int n, int heads, int hd, const float *cos_t, const float *sin_t);

/* Scaled dot-product attention for one sequence.
 *   q   [n, nh, hd]                  (row stride nh·hd)
 *   k,v [m, nkv, hd]                 (row stride kv_stride floats)
 *   out [n, nh, hd]
 * Query row r sits at key position q_pos0 + r. causal: keys j ≤ that position.
 * window > 0: also j > position − window (sliding window; the query sees itself and the
 * window − 1 previous keys). Not causal: every key is visible (bidirectional block).
 * Query head h reads KV head h / (nh / nkv). */
void qomni_cpu_attention (float *out, const float *q, const float *k, const float *v,
                          int n, int m, int nh, int nkv, int hd, int kv_stride,
                          int q_pos0, gboolean causal, int window);

/* top-k of x[n] by value (ties to the lower index), descending, into idx[k]. */
void qomni_cpu_topk (const float *x, int n, int k, int *idx);

/* Number of threads the kernels use. */
int qomni_cpu_threads (void);

G_END_DECLS
