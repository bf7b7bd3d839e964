/* qomni — the vision encoder's transformer on the Vulkan device (the math of
 * vision-encoder.c), with the same pre-LN block as the audio encoder (encoder-vk.h).
 *
 * Applications use qomni_vision_encoder_new_on (vision-encoder.h), which wraps this and
 * computes the small per-image tables on the CPU: the position embeddings resampled to the
 * grid and the 2-D rotary tables. One encode is one command buffer, submitted once: the
 * patch embedding (a matmul over the flattened patches, onto the positions), `depth`
 * blocks with attention inside each temporal slice and 2-D RoPE on q and k, the DeepStack
 * mergers after their blocks and the final merger. Scratch grows with the largest image
 * seen (or qomni_vk_vision_encoder_reserve). The weights are uploaded once per (device,
 * weight store) and shared by every encoder made from them (qomni_vk_shared_get), each with
 * its own scratch; random ones (weights NULL) are each encoder's own.
 */
#pragma once

#include "config.h"
#include "tensor.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniVkVisionEncoder QomniVkVisionEncoder;

/* (transfer full) weights NULL: random weights of random_dtype (f32 or bf16) made on the
 * GPU, for benchmarks. vk and weights are borrowed. */
QomniVkVisionEncoder *qomni_vk_vision_encoder_new (QomniVk *vk, const QomniWeights *weights,
                                                   const QomniConfig *config,
                                                   QomniDType random_dtype, GError **error);
void qomni_vk_vision_encoder_free (QomniVkVisionEncoder *enc);

/* Sizes the device scratch for n patches. */
gboolean qomni_vk_vision_encoder_reserve (QomniVkVisionEncoder *enc, int n, GError **error);

/* pixels [n, patch_dim] (merge-block order), seg patches per temporal slice (the attention
 * blocks; n a multiple of seg and of 4), pos [n, D] the resampled position embeddings of
 * every patch, rope [2, n, hd/2] cos then sin of every patch ->
 * embeds [n/4, out] and, when deepstack is not NULL, deepstack [n_deepstack, n/4, out]. */
gboolean qomni_vk_vision_encoder_encode (QomniVkVisionEncoder *enc, const float *pixels, int n,
                                         int seg, const float *pos, const float *rope,
                                         float *embeds, float *deepstack, GError **error);

G_END_DECLS
