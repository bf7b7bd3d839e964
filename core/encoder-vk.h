/* qomni — what the Vulkan encoders (audio, vision) share: weight matrices on the device,
 * a store of the small float vectors (biases, LayerNorm gains), the biased linear layer as
 * the tiled matmul plus a bias (+ GELU) pass, and the pre-LayerNorm bidirectional
 * transformer block both encoders are made of:
 *
 *   x = x + o(attention_within_blocks(rope?(qkv(LN1(x)))))
 *   x = x + fc2(GELU(fc1(LN2(x))))
 *
 *   GArray *vecs = g_array_new (FALSE, FALSE, sizeof (float));
 *   QomniVkEncBlock b;  qomni_vk_mat_new (vk, &b.qkv, parts, 3, 3 * D, D, …);
 *   b.ln1_w = qomni_vk_vecs_add (vecs, w, D, 1.0f, error, "…norm1.weight");  …
 *   QomniVkBuffer *vb = qomni_vk_vecs_upload (vk, vecs, error);
 *   qomni_vk_enc_block_record (vk, cmd, &b, vb, &shape, &acts, n, block, NULL, 0, 0);
 *
 * Activations are float32 rows; weights stay in their stored dtype (f32, f16, bf16, Q8_0,
 * Q4_0: whatever the matmul has a variant for). Internal to libqomni.
 */
#pragma once

#include "tensor.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

/* A weight matrix [rows, cols] on the device. */
typedef struct {
  QomniVkBuffer *buf;
  QomniDType dtype;
  int rows, cols;
} QomniVkMat;

/* Uploads parts (stacked along the rows; one dtype) as the matrix [rows, cols]; with
 * parts NULL fills it on the GPU with uniform random values of variance 1/cols in
 * random_dtype (f32 or bf16), for benchmarks. QOMNI_ERROR_UNSUPPORTED when the dtype has
 * no matmul kernel or the matrix is larger than one binding may cover. */
gboolean qomni_vk_mat_new (QomniVk *vk, QomniVkMat *m, const QomniTensor *const *parts,
                           int n_parts, int rows, int cols, QomniDType random_dtype,
                           guint32 seed, const char *what, GError **error);
/* The 2-D weight [rows, cols] named printf-style from w, or random when w is NULL. */
gboolean qomni_vk_mat_load (QomniVk *vk, QomniVkMat *m, const QomniWeights *w, int rows,
                            int cols, QomniDType random_dtype, guint32 seed, GError **error,
                            const char *fmt, ...) G_GNUC_PRINTF (9, 10);
void qomni_vk_mat_clear (QomniVk *vk, QomniVkMat *m);

/* Makes *b a host-visible buffer of at least bytes, keeping it when it is large enough: the
 * per-call inputs and results of an encoder, allocated once for the largest call. */
gboolean qomni_vk_host_ensure (QomniVk *vk, QomniVkBuffer **b, uint64_t bytes, const char *what,
                               GError **error);

/* Appends the float vector [len] named printf-style to vecs and returns its offset in
 * floats, or -1 with error set. With w NULL (random weights) appends len copies of fill. */
int qomni_vk_vecs_add (GArray *vecs, const QomniWeights *w, int64_t len, float fill,
                       GError **error, const char *fmt, ...) G_GNUC_PRINTF (6, 7);
/* (transfer full) One device buffer holding vecs. */
QomniVkBuffer *qomni_vk_vecs_upload (QomniVk *vk, GArray *vecs, GError **error);

/* y[n, rows] (+)= x[n, cols] · Wᵀ, then y = act(y + b[b_off ..]) when b_off ≥ 0 (the bias
 * is added after the accumulation, so with acc the residual gets W·x + b). scratch: the
 * split-K partials (qomni_vk_rec_matmul; NULL: no splits), e.g. QomniVkEncActs' own. */
void qomni_vk_rec_linear (QomniVkCmd *c, const QomniVkMat *w, const QomniVkBuffer *x,
                          uint32_t x_off, uint32_t x_stride, const QomniVkBuffer *y,
                          uint32_t y_off, uint32_t y_stride, int n, gboolean acc,
                          const QomniVkBuffer *vecs, int b_off, int act,
                          const QomniVkBuffer *scratch);
/* LayerNorm with gain and bias (offsets in vecs) of n rows of dim. */
void qomni_vk_rec_layernorm (QomniVkCmd *c, const QomniVkBuffer *x, uint32_t x_stride,
                             const QomniVkBuffer *y, uint32_t y_stride, int n, int dim,
                             const QomniVkBuffer *vecs, int w_off, int b_off, float eps);

/* One pre-LN block. The matrices and the vector offsets into the store. */
typedef struct {
  QomniVkMat qkv;   /* [3D, D]: rows [q | k | v] */
  QomniVkMat o;     /* [D, D] */
  QomniVkMat fc1;   /* [FF, D] */
  QomniVkMat fc2;   /* [D, FF] */
  int ln1_w, ln1_b, qkv_b, o_b, ln2_w, ln2_b, fc1_b, fc2_b;
} QomniVkEncBlock;

typedef struct {
  int D, FF, nh, hd;
  float eps;   /* the LayerNorms' */
  int act;     /* the MLP's activation: QOMNI_VK_ACT_GELU or QOMNI_VK_ACT_GELU_TANH */
} QomniVkEncShape;

/* Activations for up to `rows` rows: x, xn, att [rows, D], qkv [rows, 3D], ff [rows, FF],
 * and the partial buffer of the block's split-K products (the encoder's other products
 * share it, taking the splits that fit). */
typedef struct {
  QomniVkBuffer *x, *xn, *qkv, *att, *ff, *scratch;
  int rows;
} QomniVkEncActs;

/* Floats of partials the block's four products over ≤ rows rows take at most. */
uint64_t qomni_vk_enc_scratch_floats (const QomniVkEncShape *s, int rows);

gboolean qomni_vk_enc_acts_new (QomniVk *vk, QomniVkEncActs *a, const QomniVkEncShape *s,
                                int rows, GError **error);
void qomni_vk_enc_acts_clear (QomniVk *vk, QomniVkEncActs *a);

/* Records one block over a->x [n, D] (updated in place): attention is bidirectional within
 * consecutive blocks of `block` rows (the last may be shorter). With rope not NULL, q and
 * k are rotated (rotate-half) with cos [n, hd/2] at cs_off and sin at cs_off + sin_off. */
void qomni_vk_enc_block_record (QomniVkCmd *c, const QomniVkEncBlock *b,
                                const QomniVkBuffer *vecs, const QomniVkEncShape *s,
                                const QomniVkEncActs *a, int n, int block,
                                const QomniVkBuffer *rope, uint32_t cs_off, uint32_t sin_off);
void qomni_vk_enc_block_clear (QomniVk *vk, QomniVkEncBlock *b);

G_END_DECLS
