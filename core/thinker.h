/* qomni — the thinker: Qwen3-Omni's 48-layer MoE language model (architecture notes §7).
 *
 *   QomniThinker *t = qomni_thinker_new (weights, config, 4096, &error);
 *   qomni_thinker_prefill (t, ids, n, audio_rows, n_audio_rows, NULL, 0, logits, &error);
 *   // or, with images/video: qomni_thinker_prefill_media (t, ids, n, &media, logits, &error);
 *   int id = qomni_sampler_sample (s, logits, vocab, ...);
 *   qomni_thinker_decode (t, id, logits, &error);      // one token at a time
 *   qomni_thinker_free (t);
 *
 * Embedding rows of media placeholders (<|audio_pad|>, <|image_pad|>, <|video_pad|>) are
 * replaced by the encoders' outputs, in order. Positions continue across calls, so a
 * conversation can go on turn after turn with the same cache.
 */
#pragma once

#include "config.h"
#include "decoder.h"
#include "positions.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniThinker QomniThinker;

typedef struct _QomniVk QomniVk;

/* (transfer full) max_ctx: positions the KV cache holds. */
QomniThinker *qomni_thinker_new (const QomniWeights *weights, const QomniConfig *config,
                                 int max_ctx, GError **error);
/* The same on a Vulkan device (borrowed; vk NULL: the CPU). The calls below behave alike;
 * on the GPU the decoder and lm_head run there, hooks and state callbacks get the layer
 * outputs brought back, DeepStack's additions are made on the CPU and added there. */
QomniThinker *qomni_thinker_new_on (const QomniWeights *weights, const QomniConfig *config,
                                    int max_ctx, QomniVk *vk, GError **error);
gboolean qomni_thinker_on_gpu (const QomniThinker *t);
void qomni_thinker_free (QomniThinker *t);

int qomni_thinker_hidden_size (const QomniThinker *t);
int qomni_thinker_vocab_size (const QomniThinker *t);
int qomni_thinker_n_past (const QomniThinker *t);
int qomni_thinker_max_ctx (const QomniThinker *t);
/* Empties the cache; positions restart at 0. */
void qomni_thinker_reset (QomniThinker *t);

/* Observes every decoder layer's output (and may change it); NULL to stop. */
void qomni_thinker_set_layer_hook (QomniThinker *t, QomniLayerHook hook, gpointer user);

/* What the talker needs of every position the thinker runs (architecture notes §7.5):
 * embed [n, H] = hs[0], the input rows (token embeddings, encoder rows at media
 * placeholders), and hidden [n, H] = hs[layer], the output of decoder layer layer − 1
 * before the final norm. Called once per forward (a prompt, then each fed token). */
typedef void (*QomniThinkerStateFn) (const float *embed, const float *hidden, int n,
                                     gpointer user);
/* layer: the talker's accept_hidden_layer. NULL fn stops the capture. */
void qomni_thinker_set_state_fn (QomniThinker *t, int layer, QomniThinkerStateFn fn,
                                 gpointer user);

/* out[n, H] = embed_tokens[ids]. */
void qomni_thinker_embed (const QomniThinker *t, const int *ids, int n, float *out);
/* Writes rows[n_rows, H] into the rows of x[n, H] whose id is token_id, in order; the
 * counts must agree. */
gboolean qomni_thinker_scatter (const QomniThinker *t, const int *ids, int n, int token_id,
                                const float *rows, int n_rows, float *x, GError **error);

/* Runs x[n, H] at positions pos[3, n]; x becomes the final-normed hidden states. */
gboolean qomni_thinker_forward (QomniThinker *t, float *x, const int *pos, int n,
                                GError **error);
/* logits[n, V] = lm_head(hidden[n, H]). */
void qomni_thinker_logits (const QomniThinker *t, const float *hidden, int n, float *logits);

/* Embeds ids, scatters audio rows [n_audio, H] into the <|audio_pad|> rows, builds 3-D
 * positions continuing from the cache, runs the prompt and writes the last position's
 * logits [V]. A prompt with image or video placeholders needs qomni_thinker_prefill_media. */
gboolean qomni_thinker_prefill (QomniThinker *t, const int *ids, int n, const float *audio,
                                int n_audio, const QomniMediaGrid *grids, int n_grids,
                                float *logits, GError **error);

/* What the vision encoder made for the images (or the videos) of one prompt, all of them
 * in prompt order (several encode calls' outputs concatenated). Borrowed. */
typedef struct {
  const float *embeds;     /* [n_rows, H]: replace the placeholders' embeddings, in order */
  const float *deepstack;  /* [n_deepstack, n_rows, H]: deepstack[k] is added to the
                            * placeholders' hidden states after layer k; NULL for none */
  int n_rows;
  int n_deepstack;
} QomniVisualRows;

/* Everything a prompt's placeholders stand for. Borrowed; NULL/0 for what is absent. */
typedef struct {
  const float *audio;              /* [n_audio, H] for the <|audio_pad|> tokens */
  int n_audio;
  const QomniVisualRows *images;   /* for the <|image_pad|> tokens */
  const QomniVisualRows *videos;   /* for the <|video_pad|> tokens */
  const QomniMediaGrid *grids;     /* every image and video, in prompt order */
  int n_grids;
} QomniThinkerMedia;

/* qomni_thinker_prefill with images and video: their rows go into the placeholders, their
 * grids shape the 3-D positions, and their DeepStack features are added after the first
 * layers at the placeholders' positions (after the layer hook has seen the layer's output,
 * so the hook observes what the reference calls hidden_states). The placeholder counts must
 * match the rows given. media may be NULL for a text-only prompt. */
gboolean qomni_thinker_prefill_media (QomniThinker *t, const int *ids, int n,
                                      const QomniThinkerMedia *media, float *logits,
                                      GError **error);
/* Feeds one token at the next position and writes its logits [V]. */
gboolean qomni_thinker_decode (QomniThinker *t, int id, float *logits, GError **error);

G_END_DECLS
