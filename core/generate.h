/* qomni — the text generation loop shared by `qomni generate` and the qomnithinker
 * element: prefill, then sample / stream / feed one token at a time until a stop id or the
 * token limit. The token that ends generation (a stop id, or the last one allowed) is not
 * fed back, as in transformers' generate(). */
#pragma once

#include "sampler.h"
#include "thinker.h"
#include "tokenizer.h"

G_BEGIN_DECLS

typedef struct {
  QomniSamplerParams sampling;
  int max_tokens;
  int stop_ids[4];   /* -1 terminated; all -1: <|im_end|> and <|endoftext|> */
} QomniGenerateParams;

/* Called per generated token with the text that became complete (maybe ""); return FALSE
 * to stop. */
typedef gboolean (*QomniTokenFn) (int id, const char *text, gpointer user);

typedef struct {
  int prompt_tokens;
  int generated;
  double prefill_seconds;
  double decode_seconds;   /* time of the generated tokens after the first */
  gboolean stopped;        /* ended on a stop id */
} QomniGenerateStats;

/* out_ids (optional, GArray of int) receives the generated ids, stop id included. */
gboolean qomni_generate (QomniThinker *thinker, const QomniTokenizer *tok, const int *prompt,
                         int n_prompt, const float *audio, int n_audio,
                         const QomniGenerateParams *params, QomniTokenFn fn, gpointer user,
                         GArray *out_ids, QomniGenerateStats *stats, GError **error);

/* qomni_generate for a prompt with images or video (and audio) in it. */
gboolean qomni_generate_media (QomniThinker *thinker, const QomniTokenizer *tok,
                               const int *prompt, int n_prompt, const QomniThinkerMedia *media,
                               const QomniGenerateParams *params, QomniTokenFn fn,
                               gpointer user, GArray *out_ids, QomniGenerateStats *stats,
                               GError **error);

G_END_DECLS
