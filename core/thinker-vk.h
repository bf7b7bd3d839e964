/* qomni — the thinker's decoder stack on the Vulkan device.
 *
 *   QomniVkThinker *g = qomni_vk_thinker_new (vk, weights, &config->thinker.text, 4096, 512,
 *                                             &error);
 *   qomni_vk_thinker_forward (g, x, n, pos, NULL, NULL, logits, &next, &error);  // prompt
 *   qomni_vk_thinker_decode (g, next, p, logits_or_NULL, &next, &error);          // per token
 *   qomni_vk_thinker_free (g);
 *
 * Weights are uploaded once (q/k/v stacked into one matrix, each layer's experts into
 * [E, 2I, H] gate+up and [E, H, I] down); activations are planned for max_batch rows at
 * creation; the KV cache is max_ctx positions per layer in f32. One call records one
 * command buffer and submits it once: the router's top-k, the expert choice and the
 * greedy argmax stay on the GPU; only the token id (and logits when asked) come back.
 * Prompt rows use the tiled matmul (experts grouped by expert, moe-vk.h); single rows the
 * matvec kernels. Where the device has tensor cores (qomni_vk_has_coopmat) prompt products
 * run on them with fp16 operands (the router excepted: a rounding could flip its top-k),
 * unless qomni_vk_thinker_set_coopmat turns that off.
 */
#pragma once

#include "config.h"
#include "tensor.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniVkThinker QomniVkThinker;

/* (transfer full) weights NULL: random weights of random_dtype (f32 or bf16) made on the
 * GPU, for benchmarks of shapes no file exists for. vk is borrowed. Dense-MLP layers and
 * shared experts (not in the thinker) are QOMNI_ERROR_UNSUPPORTED. */
QomniVkThinker *qomni_vk_thinker_new (QomniVk *vk, const QomniWeights *weights,
                                      const QomniTextConfig *config, QomniDType random_dtype,
                                      int max_ctx, int max_batch, GError **error);
void qomni_vk_thinker_free (QomniVkThinker *t);

int qomni_vk_thinker_n_past (const QomniVkThinker *t);
void qomni_vk_thinker_reset (QomniVkThinker *t);
/* Bytes of weights one decode step reads (attention, the chosen experts, router, lm_head). */
double qomni_vk_thinker_decode_bytes (const QomniVkThinker *t);
/* Prompt products on tensor cores (fp16 operands, fp32 sums) or in float32; on by default
 * where qomni_vk_has_coopmat, and never on elsewhere. Returns the setting in effect. */
gboolean qomni_vk_thinker_set_coopmat (QomniVkThinker *t, gboolean on);

/* Runs x[n, H] (embeddings) at positions pos[3, n] and appends them to the cache.
 * Optional outputs: layers[L, n, H] each layer's output, hidden[n, H] the final-normed
 * states, logits[V] and *next (greedy argmax) of the last row. */
gboolean qomni_vk_thinker_forward (QomniVkThinker *t, const float *x, int n, const int *pos,
                                   float *layers, float *hidden, float *logits, int *next,
                                   GError **error);
/* One token at position pos (all three axes), embedded on the GPU. */
gboolean qomni_vk_thinker_decode (QomniVkThinker *t, int id, int pos, float *logits, int *next,
                                  GError **error);

G_END_DECLS
