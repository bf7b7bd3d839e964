/* qomni — 3-D M-RoPE position ids (transformers' get_rope_index, architecture notes §7.3).
 *
 * Text and audio tokens advance all three axes together (for a prompt without images or
 * video this is 0, 1, 2, … on every axis). Images advance h and w over their merged grid;
 * videos also advance t, by second_per_grid · position_id_per_seconds per temporal patch.
 * A video whose soundtrack is interleaved with it (use_audio_in_video: the run
 * <|vision_start|><|audio_start|> … <|audio_end|><|vision_end|>) gives its audio tokens
 * 0, 1, 2, … from the same start as its frames, so sound and picture of one moment get
 * nearby positions.
 */
#pragma once

#include "config.h"

G_BEGIN_DECLS

/* One image or video in prompt order: its grid in patches (t, h, w), as the vision
 * processor reports it, and for video the seconds one temporal patch covers. */
typedef struct {
  int grid_t, grid_h, grid_w;
  float second_per_grid;          /* video: temporal_patch_size / sampled fps; image: 0 */
} QomniMediaGrid;

/* Fills pos [3, n] (axis-major) for ids starting at position `start` and returns the next
 * free position (1 + the largest position used). Images/videos consume grids in order;
 * FALSE with an error when the ids and grids disagree.
 *
 * A video's temporal index k maps to t = s0 + trunc(k · second_per_grid · 13) computed in
 * float32 in the reference's order; the reference keeps a fractional value (a frame rate
 * for which 2/fps · 13 is not whole) as a float position, which integer positions cannot
 * hold: it is truncated here. Whole values (fps 2: 13 per patch, fps 1: 26) are exact. */
gboolean qomni_positions_build (const QomniThinkerConfig *cfg, const int *ids, int n,
                                const QomniMediaGrid *grids, int n_grids, int start, int *pos,
                                int *next, GError **error);

G_END_DECLS
