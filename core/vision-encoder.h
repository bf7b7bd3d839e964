/* qomni — the thinker's vision encoder (architecture notes §6) on the CPU.
 *
 *   QomniVisionEncoder *enc = qomni_vision_encoder_new (weights, config, &error);
 *   qomni_image_preprocess (rgb, w, h, stride, &QOMNI_IMAGE_PARAMS_DEFAULT, &pixels, grid,
 *                           &error);
 *   int n_tok = qomni_vision_encoder_n_tokens (enc, grid);
 *   int D = qomni_vision_encoder_output_dim (enc), K = qomni_vision_encoder_n_deepstack (enc);
 *   float *embeds = g_new (float, n_tok * D), *deep = g_new (float, K * n_tok * D);
 *   qomni_vision_encoder_encode (enc, pixels, grid, embeds, deep, &error);
 *   QomniVisualRows image = { embeds, deep, n_tok, K };   // see thinker.h
 *   ...
 *   qomni_vision_encoder_free (enc);
 *
 * One call encodes one image or one video (patches in merge-block order, as
 * qomni_image_preprocess writes them): the patch embedding (the Conv3d as a linear map of
 * the flattened 3·2·16·16 patch), the learned 48×48 position table resampled bilinearly
 * (align_corners) to the grid, 2-D axial rotary positions, `depth` pre-LayerNorm blocks
 * whose attention is bidirectional within each temporal patch (grid_h·grid_w patches) and
 * blind across them, DeepStack mergers after the configured blocks and the final merger.
 * Each merger turns 4 consecutive patches (one 2×2 block) into one thinker token.
 *
 * Scratch is sized for a number of patches: at creation for none, grown by encode when an
 * image needs more, or planned up front with qomni_vision_encoder_reserve (a pipeline can
 * reserve for its pixel budget at start-up so that encode never allocates). The weights
 * are borrowed and must outlive the encoder. Not thread-safe.
 */
#pragma once

#include "config.h"
#include "weights.h"

#include <stdint.h>

G_BEGIN_DECLS

typedef struct _QomniVisionEncoder QomniVisionEncoder;

typedef struct _QomniVk QomniVk;

/* (transfer full) Reads thinker.visual.* with shape checks against config->thinker.vision. */
QomniVisionEncoder *qomni_vision_encoder_new (const QomniWeights *weights,
                                              const QomniConfig *config, GError **error);
/* The same on a Vulkan device (borrowed; vk NULL: the CPU): the positions and rotary tables
 * are made on the CPU, everything else runs there in one submission per encode
 * (vision-encoder-vk.h). Tracing is refused there (QOMNI_ERROR_UNSUPPORTED from encode).
 * Without Vulkan in this build a non-NULL vk is QOMNI_ERROR_UNSUPPORTED. */
QomniVisionEncoder *qomni_vision_encoder_new_on (const QomniWeights *weights,
                                                 const QomniConfig *config, QomniVk *vk,
                                                 GError **error);
gboolean qomni_vision_encoder_on_gpu (const QomniVisionEncoder *enc);
void qomni_vision_encoder_free (QomniVisionEncoder *enc);

/* Width of each output row (out_hidden_size: the thinker's hidden size, 2048). */
int qomni_vision_encoder_output_dim (const QomniVisionEncoder *enc);
/* DeepStack outputs per call (3 in the release, 2 in the tiny fixture). */
int qomni_vision_encoder_n_deepstack (const QomniVisionEncoder *enc);
/* Length of one pixel_values row: in_channels·temporal_patch·patch² (1536). */
int qomni_vision_encoder_patch_dim (const QomniVisionEncoder *enc);
/* Thinker tokens for a grid (t·h·w / merge²), or -1 when the grid is not valid for this
 * encoder (non-positive, or h or w not a multiple of the merge size). */
int qomni_vision_encoder_n_tokens (const QomniVisionEncoder *enc, const int grid_thw[3]);

/* Sizes the scratch for grids of up to n_patches patches (t·h·w) per temporal slice
 * and in total (on a GPU encoder: the device's). QOMNI_ERROR_DEVICE when memory runs out. */
gboolean qomni_vision_encoder_reserve (QomniVisionEncoder *enc, int64_t n_patches,
                                       GError **error);

/* pixel_values [t·h·w, patch_dim] -> embeds [n_tokens, output_dim] and, when deepstack is
 * not NULL, deepstack [n_deepstack, n_tokens, output_dim] (the features the thinker adds
 * after its layers 0 .. n_deepstack − 1). Errors: an invalid grid, non-finite pixels, out
 * of memory. */
gboolean qomni_vision_encoder_encode (QomniVisionEncoder *enc, const float *pixel_values,
                                      const int grid_thw[3], float *embeds, float *deepstack,
                                      GError **error);

/* Optional per-stage observer for tests and dumps: name is the reference's module name
 * ("patch_embed" [patches, D] before the positions are added, "blocks.N" [patches, D],
 * "merger_list.K" and "merger" [tokens, output_dim]); data is valid only during the call. */
typedef void (*QomniVisionTraceFn) (const char *name, const float *data, const int64_t *shape,
                                    int ndim, gpointer user);
void qomni_vision_encoder_set_trace (QomniVisionEncoder *enc, QomniVisionTraceFn fn,
                                     gpointer user);

G_END_DECLS
