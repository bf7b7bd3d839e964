/* qomni — the code predictor: codebooks 1 … G−1 of one codec frame (architecture notes §9).
 *
 * A small dense decoder ("talker.code_predictor.model", 1-D RoPE) run afresh for every
 * frame: prefill [z, C(c0)] at positions 0 and 1, where z is the talker's final-normed
 * hidden state that produced c0 and C(c0) the talker's codec embedding of c0; then one
 * position per further codebook. `lm_head.j` predicts codebook j+1 and
 * `codec_embedding.j` embeds codebook j+1 (pitfall 22). The talker owns one of these.
 */
#pragma once

#include "config.h"
#include "sampler.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniCodePredictor QomniCodePredictor;

/* (transfer full) Weights are borrowed and must outlive the predictor. */
QomniCodePredictor *qomni_code_predictor_new (const QomniWeights *weights,
                                              const QomniConfig *config, GError **error);
void qomni_code_predictor_free (QomniCodePredictor *p);

/* Codebooks per frame (G = num_code_groups, 16). */
int qomni_code_predictor_groups (const QomniCodePredictor *p);

/* z, c0_embed [H] → codes[1 … G−1] (codes[0] is left alone), each drawn by `sampler`
 * (no penalty, no suppression); embed_sum [H] += Σ_{g ≥ 1} codec_embedding.{g−1}(codes[g]),
 * the residual part of the talker's next input. */
gboolean qomni_code_predictor_run (QomniCodePredictor *p, const float *z, const float *c0_embed,
                                   QomniSampler *sampler, int *codes, float *embed_sum,
                                   GError **error);

G_END_DECLS
