/* qomni — a decoder stack on the Vulkan device: the thinker, the talker, the code predictor.
 *
 *   QomniVkThinker *g = qomni_vk_thinker_new (vk, weights, &config->thinker.text, 4096, 512,
 *                                             &error);
 *   qomni_vk_thinker_forward (g, x, n, pos, NULL, NULL, logits, &next, &error);  // prompt
 *   qomni_vk_thinker_decode (g, next, p, logits_or_NULL, &next, &error);          // per token
 *   qomni_vk_thinker_free (g);
 *
 * Weights are uploaded once per store and device (q/k/v stacked into one matrix, each layer's experts into
 * [E, 2I, H] gate+up and [E, H, I] down, a dense MLP as one [2·Id, H] gate+up, a shared
 * expert's gate as one more router row); activations are planned for max_batch rows at
 * creation; the KV cache is max_ctx positions per layer in f32. One call records one
 * command buffer and submits it once: the router's top-k, the expert choice and the
 * greedy argmax stay on the GPU; only the token id (and logits when asked) come back.
 * Prompt rows use the tiled matmul (experts grouped by expert, moe-vk.h); single rows the
 * matvec kernels. Where the device has tensor cores (qomni_vk_has_coopmat),
 * qomni_vk_thinker_set_coopmat runs the thinker's prompt products on them with fp16
 * operands (the router excepted: a rounding could flip its top-k); off by default, as the
 * float32 tiles measured faster on the H200. The talker and the code predictor stay in
 * float32.
 *
 * The same stack serves every decoder of the model (QomniVkDecoder, of which the thinker is
 * one): MoE layers with or without a sigmoid-gated shared expert (talker), dense SwiGLU
 * layers (code predictor, mlp_only_layers), q/k norms, interleaved M-RoPE or 1-D RoPE. For
 * work that chains several passes in one submission (the code predictor's 15 steps), the
 * record functions add a pass, a head or an embedding lookup to a command being recorded.
 */
#pragma once

#include "config.h"
#include "tensor.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniVkDecoder QomniVkDecoder;
typedef QomniVkDecoder QomniVkThinker;

/* Where a stack's weights live. embed/head: printf formats of the input embedding and the
 * output head, taking the table index (%d) when n_tables > 1 (the code predictor's 15
 * codebooks); NULL for none. tied: the tensor the head falls back to when the config ties
 * the embeddings and head is absent. */
typedef struct {
  const char *prefix;   /* "thinker.model": prefix.layers.N.…, prefix.norm.weight */
  const char *embed;
  const char *head;
  const char *tied;
  int n_tables;         /* embeddings and heads; 0 means 1 */
} QomniVkStackNames;

/* (transfer full) weights NULL: random weights of random_dtype (f32 or bf16) made on the
 * GPU, for benchmarks of shapes no file exists for; each such decoder has its own. From a
 * store, the uploaded weights are shared: every decoder of the same store and names on one
 * QomniVk (N streams, from any thread) uses one copy (qomni_vk_shared_get), freed with the
 * last of them; each decoder has its own KV cache and activations, so decoders sharing
 * weights run concurrently. vk is borrowed. */
QomniVkDecoder *qomni_vk_decoder_new (QomniVk *vk, const QomniWeights *weights,
                                      const QomniTextConfig *config,
                                      const QomniVkStackNames *names, QomniDType random_dtype,
                                      int max_ctx, int max_batch, GError **error);
void qomni_vk_decoder_free (QomniVkDecoder *d);
int qomni_vk_decoder_n_past (const QomniVkDecoder *d);
void qomni_vk_decoder_reset (QomniVkDecoder *d);
/* Forgets cached positions ≥ n_past. */
void qomni_vk_decoder_truncate (QomniVkDecoder *d, int n_past);
int qomni_vk_decoder_hidden_size (const QomniVkDecoder *d);
int qomni_vk_decoder_vocab (const QomniVkDecoder *d);
/* Device bytes of the stack's weights, shared or not (the rest of the decoder's memory is
 * its own: KV cache, activations, step buffers). */
uint64_t qomni_vk_decoder_weight_bytes (const QomniVkDecoder *d);
/* Bytes of weights one decode step of the layers reads (attention, the chosen experts, the
 * shared expert, router or dense MLP), heads not included. */
double qomni_vk_decoder_step_bytes (const QomniVkDecoder *d);

/* Runs x[n, H] at positions pos[3, n] and appends them to the cache. Optional outputs:
 * layers[L, n, H] each layer's output, hidden[n, H] the final-normed states, logits[V] and
 * *next (greedy argmax) of the last row through head 0. */
gboolean qomni_vk_decoder_forward (QomniVkDecoder *d, const float *x, int n, const int *pos,
                                   float *layers, float *hidden, float *logits, int *next,
                                   GError **error);
/* The same with additions: adds [n_add, n, H] is added to the hidden states after layer
 * l < n_add (DeepStack: zero rows outside the visual positions). layers[l] is the output
 * before the addition, as the reference's hidden_states. */
gboolean qomni_vk_decoder_forward_add (QomniVkDecoder *d, const float *x, int n,
                                       const int *pos, const float *adds, int n_add,
                                       float *layers, float *hidden, float *logits, int *next,
                                       GError **error);

/* Recording into a command of one's own. The hidden states [max_batch, H] f32: the input
 * rows of a pass, final-normed after it. */
QomniVkBuffer *qomni_vk_decoder_x (QomniVkDecoder *d);
/* cos/sin of n rows at positions pos[3, n] (axis stride pos_stride) into cs [2, n, half]:
 * the n cos rows, then the n sin rows. */
void qomni_vk_decoder_rope_table (const QomniVkDecoder *d, const int *pos, int pos_stride,
                                  int n, float *cs);
int qomni_vk_decoder_rope_half (const QomniVkDecoder *d);
/* A pass over the n rows in x at positions n_past …: row r's cos at cs[cs_off + r·half],
 * its sin sin_off further. Advances n_past at once (truncate if the command is abandoned).
 * Fails when the rows do not fit the context or the batch. */
gboolean qomni_vk_decoder_record (QomniVkDecoder *d, QomniVkCmd *c, int n,
                                  const QomniVkBuffer *cs, uint32_t cs_off, uint32_t sin_off,
                                  GError **error);
/* dst[dst_off .. + V) = head[table] · x[row]. */
void qomni_vk_decoder_record_head (QomniVkDecoder *d, QomniVkCmd *c, int table, int row,
                                   const QomniVkBuffer *dst, uint32_t dst_off);
/* dst rows [n, H] at dst_off = embed[table][ids[ids_off + i]]. */
void qomni_vk_decoder_record_embed (QomniVkDecoder *d, QomniVkCmd *c, int table,
                                    const QomniVkBuffer *ids, uint32_t ids_off, int n,
                                    const QomniVkBuffer *dst, uint32_t dst_off);

/* The thinker: thinker.model, embed_tokens and lm_head. */
QomniVkThinker *qomni_vk_thinker_new (QomniVk *vk, const QomniWeights *weights,
                                      const QomniTextConfig *config, QomniDType random_dtype,
                                      int max_ctx, int max_batch, GError **error);
static inline void
qomni_vk_thinker_free (QomniVkThinker *t)
{
  qomni_vk_decoder_free (t);
}
static inline int
qomni_vk_thinker_n_past (const QomniVkThinker *t)
{
  return qomni_vk_decoder_n_past (t);
}
static inline void
qomni_vk_thinker_reset (QomniVkThinker *t)
{
  qomni_vk_decoder_reset (t);
}
/* Bytes of weights one decode step reads (attention, the chosen experts, router, lm_head). */
double qomni_vk_thinker_decode_bytes (const QomniVkThinker *t);
static inline gboolean
qomni_vk_thinker_forward (QomniVkThinker *t, const float *x, int n, const int *pos,
                          float *layers, float *hidden, float *logits, int *next,
                          GError **error)
{
  return qomni_vk_decoder_forward (t, x, n, pos, layers, hidden, logits, next, error);
}
static inline gboolean
qomni_vk_thinker_forward_add (QomniVkThinker *t, const float *x, int n, const int *pos,
                              const float *adds, int n_add, float *layers, float *hidden,
                              float *logits, int *next, GError **error)
{
  return qomni_vk_decoder_forward_add (t, x, n, pos, adds, n_add, layers, hidden, logits, next,
                                       error);
}
/* Prompt products on tensor cores (fp16 operands, fp32 sums) or in float32 (the default);
 * on only where qomni_vk_has_coopmat. Returns the setting in effect. */
gboolean qomni_vk_thinker_set_coopmat (QomniVkThinker *t, gboolean on);
/* One token at position pos (all three axes), embedded on the GPU. Once the cache is
 * longer than one attention chunk (32 positions) the step is recorded once and replayed,
 * with only its small input buffer written per token (bit-identical results); off with
 * QOMNI_VK_REPLAY=0 or qomni_vk_decoder_set_replay, which then records every step anew. */
gboolean qomni_vk_thinker_decode (QomniVkThinker *t, int id, int pos, float *logits, int *next,
                                  GError **error);
void qomni_vk_decoder_set_replay (QomniVkDecoder *d, gboolean on);
/* Decode steps run by replay so far. */
int qomni_vk_decoder_replayed (const QomniVkDecoder *d);

G_END_DECLS
