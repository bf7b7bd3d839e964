/* qomni — the pre-norm decoder stack shared by the thinker, the talker, the code predictor
 * and Code2Wav's pre-transformer (architecture notes §2.7):
 *
 *   a = RMSNorm_in(x)
 *   q, k, v = a·Wqᵀ, a·Wkᵀ, a·Wvᵀ            [n, nh·hd], [n, nkv·hd]
 *   q, k = RMSNorm per head (when q_norm/k_norm exist), then rotate-half RoPE
 *          (interleaved M-RoPE when the config has an mrope_section, else 1-D)
 *   x = x + ls_attn ⊙ o_proj(Attention(q, k, v))        (ls_*: Code2Wav layer scale)
 *   x = x + ls_mlp ⊙ MLP_or_MoE(RMSNorm_post(x))
 * then the final RMSNorm. The KV cache lives here; prompts longer than max_batch rows run
 * in slices. Scratch memory is sized once at creation; forward allocates nothing.
 */
#pragma once

#include "config.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniDecoder QomniDecoder;

/* Called after each layer with that layer's output rows [n, H] (before the final norm),
 * which the hook may modify (DeepStack adds visual features after the first layers).
 * row0: index of the first row within the forward call. */
typedef void (*QomniLayerHook) (int layer, float *hidden, int row0, int n, gpointer user);

/* (transfer full) prefix: "thinker.model", "talker.model", "talker.code_predictor.model",
 * "code2wav.pre_transformer". Weights are borrowed and must outlive the decoder. */
QomniDecoder *qomni_decoder_new (const QomniWeights *weights, const QomniTextConfig *config,
                                 const char *prefix, int max_ctx, int max_batch,
                                 GError **error);
void qomni_decoder_free (QomniDecoder *d);

const QomniTextConfig *qomni_decoder_config (const QomniDecoder *d);
int qomni_decoder_n_past (const QomniDecoder *d);
int qomni_decoder_max_ctx (const QomniDecoder *d);
/* Forgets cached positions ≥ n_past (0: empty cache). */
void qomni_decoder_truncate (QomniDecoder *d, int n_past);

/* Runs n rows x [n, H] through every layer, appending them to the KV cache, and leaves
 * the final-normed hidden states in x. pos [3, n]: RoPE positions per axis (t, h, w);
 * plain 1-D RoPE reads axis 0. Fails (cache untouched) if the context would overflow. */
gboolean qomni_decoder_forward (QomniDecoder *d, float *x, int n, const int *pos,
                                QomniLayerHook hook, gpointer user, GError **error);

G_END_DECLS
