/* qomni — 3-D position ids. */
#include "positions.h"
#include "error.h"

/* The reference's temporal offset of temporal patch k: arange(grid_t) · second_per_grid ·
 * position_id_per_seconds in float32, then stored into integer position ids. */
static int
temporal_offset (const QomniThinkerConfig *cfg, const QomniMediaGrid *m, int k)
{
  const float v = (float) k * m->second_per_grid;
  return (int) (v * (float) cfg->position_id_per_seconds);
}

/* Writes (t, h, w) of visual token v (row-major over the merged grid) of item m at s0. */
static void
visual_position (const QomniThinkerConfig *cfg, const QomniMediaGrid *m, int gh, int gw,
                 int v, int s0, int *pos, int n, int i)
{
  const int k = v / (gh * gw), r = (v / gw) % gh, c = v % gw;
  pos[0 * n + i] = s0 + temporal_offset (cfg, m, k);
  pos[1 * n + i] = s0 + r;
  pos[2 * n + i] = s0 + c;
}

static gboolean
too_few_grids (int n_grids, GError **error)
{
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
               "the prompt has more image/video placeholders than media items (%d)", n_grids);
  return FALSE;
}

gboolean
qomni_positions_build (const QomniThinkerConfig *cfg, const int *ids, int n,
                       const QomniMediaGrid *grids, int n_grids, int start, int *pos, int *next,
                       GError **error)
{
  const int merge = MAX (cfg->vision.spatial_merge_size, 1);
  int s = start, g = 0, i = 0;
  int max_pos = start - 1;
#define TRACK(i) for (int a_ = 0; a_ < 3; a_++) max_pos = MAX (max_pos, pos[a_ * n + (i)])
  while (i < n) {
    const int id = ids[i];
    if (id == cfg->vision_start_token_id && i + 1 < n && ids[i + 1] == cfg->audio_start_token_id) {
      /* A video with its soundtrack: both openers share one position, then the video
       * tokens (positions as a plain video) and the audio tokens (s0 + a on every axis)
       * in the processor's time order, then both closers share 1 + the largest so far. */
      if (g >= n_grids)
        return too_few_grids (n_grids, error);
      const QomniMediaGrid *m = &grids[g++];
      const int gh = m->grid_h / merge, gw = m->grid_w / merge;
      const int n_video = m->grid_t * gh * gw;
      for (int a = 0; a < 3; a++)
        pos[a * n + i] = pos[a * n + i + 1] = s;
      max_pos = MAX (max_pos, s);
      const int s0 = s + 1;
      int v = 0, au = 0;
      i += 2;
      while (i < n && (ids[i] == cfg->video_token_id || ids[i] == cfg->audio_token_id)) {
        if (ids[i] == cfg->video_token_id) {
          if (v >= n_video) {
            g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                         "media item %d: more video placeholders than its grid holds (%d)",
                         g - 1, n_video);
            return FALSE;
          }
          visual_position (cfg, m, gh, gw, v++, s0, pos, n, i);
        } else {
          for (int a = 0; a < 3; a++)
            pos[a * n + i] = s0 + au;
          au++;
        }
        TRACK (i);
        i++;
      }
      if (v != n_video || i + 1 >= n || ids[i] != cfg->audio_end_token_id ||
          ids[i + 1] != cfg->vision_end_token_id) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "media item %d: a video with audio needs %d video placeholders between "
                     "<|vision_start|><|audio_start|> and <|audio_end|><|vision_end|>, found "
                     "%d", g - 1, n_video, v);
        return FALSE;
      }
      s = max_pos + 1;
      for (int a = 0; a < 3; a++)
        pos[a * n + i] = pos[a * n + i + 1] = s;
      max_pos = s;
      s++;
      i += 2;
      continue;
    }
    if (id == cfg->image_token_id || id == cfg->video_token_id) {
      /* A run of visual pads: the merged grid of the next media item, row-major over
       * (t, h, w). */
      if (g >= n_grids)
        return too_few_grids (n_grids, error);
      const QomniMediaGrid *m = &grids[g++];
      const int gh = m->grid_h / merge, gw = m->grid_w / merge;
      const int count = m->grid_t * gh * gw;
      if (i + count > n) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "media item %d needs %d placeholder tokens but the prompt ends first", g - 1,
                     count);
        return FALSE;
      }
      for (int v = 0; v < count; v++, i++) {
        if (ids[i] != id) {
          g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                       "media item %d: placeholder run is shorter than its grid", g - 1);
          return FALSE;
        }
        visual_position (cfg, m, gh, gw, v, s, pos, n, i);
        TRACK (i);
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
#undef TRACK
  *next = max_pos + 1;
  return TRUE;
}
