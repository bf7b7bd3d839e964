/* qomni — the code predictor on the Vulkan device: codebooks 1 … G−1 of one frame.
 *
 *   QomniVkCodePredictor *p = qomni_vk_code_predictor_new (vk, weights, &config->talker,
 *                                                          QOMNI_DTYPE_BF16, &error);
 *   qomni_vk_code_predictor_run (p, talker_gpu, z_row, c0, sampler, codes, sum, &error);
 *
 * The math of code-predictor.c on the stack of thinker-vk.c (dense SwiGLU, 1-D RoPE): a
 * 2-row prefill [z, C(c0)], then one pass per further codebook, each through its own head
 * (lm_head.j) and, for the next pass, its own table (codec_embedding.j). z never leaves the
 * GPU: it is row z_row of the talker's final-normed states, and C(c0) is looked up in the
 * talker's codec embedding there. The picks stay on the GPU too, so the frame's G−1 passes
 * are one submission, recorded once and submitted again for every frame (nothing but
 * buffer contents changes): greedy, the argmax of every head; sampled, the CPU draws the
 * frame's G−1 uniform numbers first (qomni_sampler_draw, the draws its own path would
 * take, in order) and the sample_pick shader makes qomni_sampler_pick's choice with each.
 * Its probabilities may differ from the CPU's by an ulp (exp rounds differently in rare
 * cases), so a draw within ~1e-8 (relative) of a cumulative boundary can pick the
 * neighbour; elsewhere the codes are the CPU's. Where sample_pick cannot run (no doubles
 * on the device, vocabulary > QOMNI_VK_PICK_MAX_N, top-k > QOMNI_VK_PICK_MAX_K) or
 * QOMNI_GPU_SAMPLING=0, each pass's logits come back for the CPU's sampler (its choices bit
 * for bit), so a frame costs G−1 submissions.
 */
#pragma once

#include "config.h"
#include "sampler.h"
#include "tensor.h"
#include "thinker-vk.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniVkCodePredictor QomniVkCodePredictor;

/* (transfer full) weights NULL: random weights of random_dtype, for benchmarks. vk and the
 * config are borrowed. */
QomniVkCodePredictor *qomni_vk_code_predictor_new (QomniVk *vk, const QomniWeights *weights,
                                                   const QomniTalkerConfig *config,
                                                   QomniDType random_dtype, GError **error);
void qomni_vk_code_predictor_free (QomniVkCodePredictor *p);

/* z = row z_row of talker's hidden states (final-normed), c0 the frame's codebook-0 code
 * (embedded by the talker's table 0) → codes[1 … G−1] (codes[0] is left alone), each from
 * `sampler` (no penalty, no suppression; greedy runs on the GPU). embed_sum [H] (may be
 * NULL) = C(c0) + Σ_{g ≥ 1} codec_embedding.{g−1}(codes[g]): the talker's next input
 * without its text part. */
gboolean qomni_vk_code_predictor_run (QomniVkCodePredictor *p, QomniVkDecoder *talker,
                                      int z_row, int c0, QomniSampler *sampler, int *codes,
                                      float *embed_sum, GError **error);

/* FALSE: sampled frames read each pass's logits back to the CPU's sampler (as with
 * QOMNI_GPU_SAMPLING=0), for comparison; TRUE (the default): on the GPU where possible. */
void qomni_vk_code_predictor_set_gpu_sampling (QomniVkCodePredictor *p, gboolean on);

/* Seconds since creation spent recording commands on the CPU, and in submitting them and
 * waiting for the GPU (its execution). */
void qomni_vk_code_predictor_timing (const QomniVkCodePredictor *p, double *record_s,
                                     double *submit_s);

/* Bytes of weights one frame reads (G−1 passes of the layers, the heads and tables). */
double qomni_vk_code_predictor_frame_bytes (const QomniVkCodePredictor *p);

G_END_DECLS
