/* qomni — image and video preprocessing for the vision encoder (architecture notes §5):
 * what transformers' Qwen2VLImageProcessor does with Qwen3-Omni's settings.
 *
 *   QomniImageParams p = QOMNI_IMAGE_PARAMS_DEFAULT;
 *   float *pixels = NULL;
 *   int grid[3];
 *   if (!qomni_image_preprocess (rgb, width, height, stride, &p, &pixels, grid, &error))
 *     ...;
 *   // pixels [grid[0]·grid[1]·grid[2], 3·2·16·16], rows in merge-block order
 *   qomni_vision_encoder_encode (enc, pixels, grid, embeds, deepstack, &error);
 *   g_free (pixels);
 *
 * Steps: smart_resize picks a size that is a multiple of patch·merge (32) with a pixel
 * count within [min_pixels, max_pixels]; the image is resampled to it with Pillow's
 * BICUBIC filter (a = −0.5, support widened by the factor when shrinking, 8-bit
 * fixed-point passes, horizontal then vertical, exactly as Pillow computes on RGB images);
 * values are mapped to (v/255 − mean)/std; an image is repeated to temporal_patch_size
 * frames (a video's frame count is padded to a multiple of it with its last frame); the
 * frames are cut into temporal_patch_size×patch×patch patches, each flattened as
 * [channel][frame][row][col], emitted in merge-block order: for each temporal index, each
 * merge×merge block of patches in row-major block order, the patches of a block row-major.
 *
 * Memory is bounded by the output: inputs larger than max_input_pixels are refused before
 * a single pixel is read, and the resampler keeps only the rows of its horizontal pass
 * that one output row needs (a ring of a filter's width), never a copy of the input.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct {
  int patch_size;             /* 16 */
  int temporal_patch_size;    /* 2 */
  int merge_size;             /* 2 */
  int64_t min_pixels;         /* preprocessor_config: 3136 for images */
  int64_t max_pixels;         /* 12,845,056 for images */
  int64_t max_input_pixels;   /* inputs with more pixels are refused up front */
  float mean[3], std[3];      /* 0.5, 0.5 */
} QomniImageParams;

/* The release's image settings (preprocessor_config.json), and a refusal above
 * 178,956,970 input pixels (Pillow's decompression-bomb limit). */
extern const QomniImageParams QOMNI_IMAGE_PARAMS_DEFAULT;
/* The processor's video settings: frames resized within [128·32·32, 768·32·32] pixels. */
extern const QomniImageParams QOMNI_VIDEO_PARAMS_DEFAULT;

/* The reference's smart_resize: the output size (multiples of patch·merge) for an input of
 * height × width. Fails for an aspect ratio above 200, sizes ≤ 0 or invalid params. */
gboolean qomni_image_smart_resize (int height, int width, const QomniImageParams *p,
                                   int *out_height, int *out_width, GError **error);

/* Pillow's BICUBIC resize of an 8-bit RGB image src (height rows of `stride` bytes, pixels
 * packed R, G, B) into dst [out_height, out_width, 3] (packed). Returns the image unchanged
 * when the size does not change, as Pillow does. Scratch: a few output rows. */
gboolean qomni_image_resize_rgb (const guint8 *src, int width, int height, int stride,
                                 guint8 *dst, int out_width, int out_height, GError **error);

/* One RGB image (8 bits per channel, packed, rows `stride` bytes apart) to pixel_values
 * (transfer full, g_free) [grid_t·grid_h·grid_w, 3·T·P·P] and grid_thw (grid_t = 1).
 * Errors (QOMNI_ERROR_INVALID_INPUT) for sizes ≤ 0, stride < 3·width, more than
 * max_input_pixels, or an aspect ratio above 200; QOMNI_ERROR_DEVICE when memory runs out.
 * A grey image is just R = G = B; other pixel formats must be converted by the caller. */
gboolean qomni_image_preprocess (const guint8 *rgb, int width, int height, int stride,
                                 const QomniImageParams *p, float **pixel_values,
                                 int grid_thw[3], GError **error);

/* A video as n_frames RGB frames of one size, already sampled by the caller (frame rate
 * and budget are the caller's choice, see docs/vision.md). Every frame is resized
 * as one image of that size would be; the count is padded to a multiple of
 * temporal_patch_size by repeating the last frame; grid_t = padded count / T. */
gboolean qomni_video_preprocess (const guint8 *const *frames, int n_frames, int width,
                                 int height, int stride, const QomniImageParams *p,
                                 float **pixel_values, int grid_thw[3], GError **error);

/* Thinker tokens (<|image_pad|> or <|video_pad|> copies) for a grid: t·h·w / merge². */
int qomni_image_n_tokens (const int grid_thw[3], int merge_size);

G_END_DECLS
