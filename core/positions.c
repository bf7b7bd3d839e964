/* qomni — 3-D position ids. */
#include "positions.h"
#include "error.h"

gboolean
qomni_positions_build (const QomniThinkerConfig *cfg, const int *ids, int n,
                       const QomniMediaGrid *grids, int n_grids, int start, int *pos, int *next,
                       GError **error)
{
  const int merge = MAX (cfg->vision.spatial_merge_size, 1);
  int s = start, g = 0, i = 0;
  int max_pos = start - 1;
  while (i < n) {
    const int id = ids[i];
    if (id == cfg->image_token_id || id == cfg->video_token_id) {
      /* A run of visual pads: the merged grid of the next media item, row-major over
       * (t, h, w); t advances by t_step per temporal index. */
      if (g >= n_grids) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "the prompt has more image/video placeholders than media items (%d)",
                     n_grids);
        return FALSE;
      }
      const QomniMediaGrid *m = &grids[g++];
      const int gh = m->grid_h / merge, gw = m->grid_w / merge;
      const int count = m->grid_t * gh * gw;
      if (i + count > n) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "media item %d needs %d placeholder tokens but the prompt ends first", g - 1,
                     count);
        return FALSE;
      }
      for (int t = 0; t < m->grid_t; t++)
        for (int r = 0; r < gh; r++)
          for (int c = 0; c < gw; c++, i++) {
            if (ids[i] != id) {
              g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                           "media item %d: placeholder run is shorter than its grid", g - 1);
              return FALSE;
            }
            pos[0 * n + i] = s + (int) (t * m->t_step);
            pos[1 * n + i] = s + r;
            pos[2 * n + i] = s + c;
            for (int a = 0; a < 3; a++)
              max_pos = MAX (max_pos, pos[a * n + i]);
          }
      s = max_pos + 1;
      continue;
    }
    /* text, audio pads and every marker token: one position on all axes */
    pos[0 * n + i] = pos[1 * n + i] = pos[2 * n + i] = s;
    max_pos = MAX (max_pos, s);
    s++;
    i++;
  }
  *next = max_pos + 1;
  return TRUE;
}
