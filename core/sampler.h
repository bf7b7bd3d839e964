/* qomni — token sampling with Hugging Face semantics.
 *
 * Order: repetition penalty (over `history`), suppression, temperature, top-k, top-p,
 * then a draw. temperature ≤ 0 means greedy (argmax after the penalty). The generator is
 * seeded, so a seed reproduces a run.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  float temperature;         /* ≤ 0: greedy */
  int top_k;                 /* 0: off */
  float top_p;               /* ≥ 1: off */
  float repetition_penalty;  /* 1: off */
  guint64 seed;
} QomniSamplerParams;

#define QOMNI_SAMPLER_PARAMS_GREEDY ((QomniSamplerParams) { 0.0f, 0, 1.0f, 1.0f, 0 })

typedef struct _QomniSampler QomniSampler;

QomniSampler *qomni_sampler_new (const QomniSamplerParams *params);
void qomni_sampler_free (QomniSampler *s);
void qomni_sampler_reseed (QomniSampler *s, guint64 seed);
/* TRUE when every draw is the argmax (temperature ≤ 0). */
gboolean qomni_sampler_is_greedy (const QomniSampler *s);
/* Picks an id from logits[n_vocab] (modified in place). history: the ids the repetition
 * penalty applies to. suppress_from..suppress_to (exclusive) are set to −∞ except
 * `keep`; pass suppress_from = suppress_to to disable. */
int qomni_sampler_sample (QomniSampler *s, float *logits, int n_vocab, const int *history,
                          int n_history, int suppress_from, int suppress_to, int keep);

/* qomni_sampler_sample in two halves, for pickers elsewhere (the GPU's sample_pick shader)
 * that must make the CPU's choices: without penalty and suppression, sample is
 * pick (logits, draw ()), and greedy samplers take no draw.
 *
 * The generator's next uniform number in [0, 1): what the next sampled token would use. */
double qomni_sampler_draw (QomniSampler *s);
/* Temperature, top-k (ties at the k-th place keep the lower ids), softmax over the kept in
 * float (expf of logit − max), top-p (the shortest prefix by probability whose mass, summed
 * in double, reaches top_p), then the token where u · (kept mass) falls in the kept
 * probabilities' running sum. logits[n_vocab] is modified; greedy: the argmax, u unused. */
int qomni_sampler_pick (QomniSampler *s, float *logits, int n_vocab, double u);
const QomniSamplerParams *qomni_sampler_params (const QomniSampler *s);

G_END_DECLS
