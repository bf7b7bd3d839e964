/* qomni — the talker: thinker states to codec frames (architecture notes §8, §9).
 *
 * Streaming use, fed while the thinker generates:
 *
 *   QomniTalker *t = qomni_talker_new (weights, config, 4096, &error);
 *   QomniTalkerOptions opt;
 *   qomni_talker_options_init (&opt, config);            // reference sampling, speaker ethan
 *   qomni_talker_start (t, prompt_ids, n, embed, hidden, NULL, 0, &opt, &error);
 *   for each token the thinker feeds back:  qomni_talker_push_text (t, its hs[0] row);
 *   when the thinker stops:                 qomni_talker_end_text (t);
 *   int codes[16];
 *   switch (qomni_talker_step (t, codes, &error)) {
 *     case QOMNI_TALKER_FRAME:     ... one frame: codes[0 … 15] ...
 *     case QOMNI_TALKER_NEED_TEXT: ... push more rows (or end the text), then step again ...
 *     case QOMNI_TALKER_DONE:      ... codec EOS, max_frames, or the context is full ...
 *     case QOMNI_TALKER_ERROR:     ... error is set ...
 *   }
 *   qomni_talker_free (t);
 *
 * Inputs from the thinker (§7.5): hs[0] = the input embedding of a position (token
 * embedding, or the encoder row at a media placeholder) and hs[accept_hidden_layer] = the
 * output of decoder layer accept_hidden_layer − 1, before any final norm.
 *
 * Alignment with the reference (which runs only after the thinker has finished): the
 * talker prompt needs the first answer token (A_3); talker step k (k ≥ 1) consumes
 * trailing[k−1], the (k+1)-th answer token's row, or tts_eos right after the last one,
 * then tts_pad. So frame 0 needs one answer row, and each later frame k needs answer row
 * k to exist or the text to have ended; until then qomni_talker_step returns NEED_TEXT and
 * changes nothing. Streaming therefore gives exactly the frames of the whole-answer run.
 * Push the rows of the tokens that are fed back to the thinker: the final token (the
 * <|im_end|> that stops generation) is never fed, so it has no row.
 */
#pragma once

#include "config.h"
#include "positions.h"
#include "sampler.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniTalker QomniTalker;

typedef enum {
  QOMNI_TALKER_FRAME,      /* codes holds a new frame */
  QOMNI_TALKER_NEED_TEXT,  /* waiting for the next thinker row or for qomni_talker_end_text */
  QOMNI_TALKER_DONE,       /* codec EOS, max_frames reached or the context is full */
  QOMNI_TALKER_ERROR,
} QomniTalkerStatus;

typedef struct {
  int speaker_codec_id;               /* e.g. qomni_config_speaker_id (config, "ethan") */
  QomniSamplerParams talker;          /* codebook 0: repetition penalty over its own ids */
  QomniSamplerParams code_predictor;  /* codebooks 1 … 15: no penalty */
  int max_frames;                     /* ≤ 0: until codec EOS or the context is full */
} QomniTalkerOptions;

/* The reference's generate() defaults: talker temperature 0.9, top-k 50, top-p 1,
 * repetition penalty 1.05; code predictor temperature 1, top-k 50, top-p 0.8; speaker
 * ethan (else the first speaker of the config); no frame limit. */
void qomni_talker_options_init (QomniTalkerOptions *opt, const QomniConfig *config);
/* Greedy on both models; the repetition penalty and the suppression stay, as in the
 * reference's do_sample=False. */
void qomni_talker_options_greedy (QomniTalkerOptions *opt);

/* (transfer full) max_ctx: talker positions (prompt + one per frame). Weights and config
 * are borrowed and must outlive the talker. */
QomniTalker *qomni_talker_new (const QomniWeights *weights, const QomniConfig *config,
                               int max_ctx, GError **error);
typedef struct _QomniVk QomniVk;
/* The same with the talker's decoder, codec head and the code predictor on a Vulkan device
 * (borrowed; NULL: the CPU). The calls below behave alike and give the same frames: the
 * code predictor runs a frame's 15 passes in one submission, greedy or sampling (the CPU's
 * draws, picked on the GPU; a draw within ~1e-8 of a cumulative boundary may pick the
 * neighbour: code-predictor-vk.h). */
QomniTalker *qomni_talker_new_on (const QomniWeights *weights, const QomniConfig *config,
                                  int max_ctx, QomniVk *vk, GError **error);
gboolean qomni_talker_on_gpu (const QomniTalker *t);
void qomni_talker_free (QomniTalker *t);

int qomni_talker_groups (const QomniTalker *t);              /* codes per frame (16) */
int qomni_talker_thinker_hidden_size (const QomniTalker *t); /* width of the rows fed in */

/* Observes every row fed to the talker decoder: the prompt [n, H] once, then [1, H] per
 * step (sum of the previous frame's 16 code embeddings plus the text row). */
typedef void (*QomniTalkerInputHook) (const float *rows, int n, int H, gpointer user);
void qomni_talker_set_input_hook (QomniTalker *t, QomniTalkerInputHook hook, gpointer user);

/* Starts an utterance (forgetting any previous one). prompt_ids [n]: the thinker prompt,
 * ending with the assistant header (<|im_start|>assistant\n). thinker_embed [n, Ht]: hs[0]
 * of each prompt position; thinker_hidden [n, Ht]: hs[accept_hidden_layer] (read only at
 * <|audio_pad|>/<|image_pad|>/<|video_pad|> positions of user turns; may be NULL when there
 * are none). grids: every image/video of the prompt in order (NULL, 0 without any), for
 * the talker's 3-D positions. Rows are copied; nothing is computed until the first step. */
gboolean qomni_talker_start (QomniTalker *t, const int *prompt_ids, int n,
                             const float *thinker_embed, const float *thinker_hidden,
                             const QomniMediaGrid *grids, int n_grids,
                             const QomniTalkerOptions *opt, GError **error);
/* Adds hs[0] [Ht] of the next answer token fed to the thinker (copied). */
void qomni_talker_push_text (QomniTalker *t, const float *thinker_embed_row);
/* The thinker has finished: after the last row come tts_eos, then tts_pad. */
void qomni_talker_end_text (QomniTalker *t);
/* Produces the next frame if it can; codes [groups]. */
QomniTalkerStatus qomni_talker_step (QomniTalker *t, int *codes, GError **error);
int qomni_talker_n_frames (const QomniTalker *t);

/* Wall-clock seconds spent in the talker decoder (with projections, codec head and
 * sampling) and in the code predictor since qomni_talker_new. */
void qomni_talker_timing (const QomniTalker *t, double *talker_s, double *code_predictor_s);

/* Non-streaming: thinker_embed [n_prompt + n_answer, Ht] (the prompt rows, then the answer
 * rows fed to the thinker), thinker_hidden [n_prompt, Ht]; runs to DONE. *codes (transfer
 * full) is codebook-major [groups, *n_frames] (NULL when there are no frames). */
gboolean qomni_talker_generate (QomniTalker *t, const int *prompt_ids, int n_prompt,
                                const float *thinker_embed, const float *thinker_hidden,
                                int n_answer, const QomniMediaGrid *grids, int n_grids,
                                const QomniTalkerOptions *opt, int **codes, int *n_frames,
                                GError **error);

G_END_DECLS
