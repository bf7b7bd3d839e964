/* qomni — 3-D M-RoPE position ids (transformers' get_rope_index, architecture notes §7.3).
 *
 * Text and audio tokens advance all three axes together (for a prompt without images or
 * video this is 0, 1, 2, … on every axis). Images advance h and w over their merged grid.
 */
#pragma once

#include "config.h"

G_BEGIN_DECLS

/* One image or video in prompt order: its merged-token grid (t, h/merge, w/merge) and, for
 * video, the temporal step in positions per grid frame. */
typedef struct {
  int grid_t, grid_h, grid_w;     /* in patches, as the vision processor reports them */
  float t_step;                   /* positions per temporal grid index (image: 0) */
} QomniMediaGrid;

/* Fills pos [3, n] (axis-major) for ids starting at position `start` and returns the next
 * free position (1 + the largest position used). Images/videos consume grids in order;
 * FALSE with an error when the ids and grids disagree. */
gboolean qomni_positions_build (const QomniThinkerConfig *cfg, const int *ids, int n,
                                const QomniMediaGrid *grids, int n_grids, int start, int *pos,
                                int *next, GError **error);

G_END_DECLS
