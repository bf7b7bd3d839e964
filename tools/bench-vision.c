/* bench-vision — how long image preprocessing and the vision encoder take on this CPU,
 * with random weights made in memory.
 *
 *   build/tools/bench-vision [PRESET [WIDTH [HEIGHT [FRAMES [DEPTH]]]]]
 *       defaults: full 448 448 1 (all blocks); FRAMES > 1 encodes a video of that many
 *       frames, FRAMES written as "Ns" a video of N seconds sampled at 2 fps (as
 *       qomniencode and `qomni generate --video` do); DEPTH limits the blocks (the time of
 *       the rest scales linearly).
 *
 * Prints the grid, the preprocessing time and the encode time (best of 2 runs; one run
 * when the first takes more than 5 s).
 */
#include "checkpoint.h"
#include "image.h"
#include "ops-cpu.h"
#include "random-weights.h"
#include "vision-encoder.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

static double
now_s (void)
{
  return (double) g_get_monotonic_time () / 1e6;
}

int
main (int argc, char **argv)
{
  const char *preset = argc > 1 ? argv[1] : "full";
  const int width = argc > 2 ? atoi (argv[2]) : 448;
  const int height = argc > 3 ? atoi (argv[3]) : 448;
  /* "Ns": N seconds of video at the samplers' default 2 fps */
  const gboolean seconds = argc > 4 && g_str_has_suffix (argv[4], "s");
  const int n_frames = argc > 4 ? (seconds ? 2 * atoi (argv[4]) : atoi (argv[4])) : 1;
  const int depth = argc > 5 ? atoi (argv[5]) : 0;
  if (width <= 0 || height <= 0 || n_frames <= 0) {
    fprintf (stderr, "usage: %s [PRESET [WIDTH [HEIGHT [FRAMES [DEPTH]]]]]\n", argv[0]);
    return 2;
  }
  GError *error = NULL;
  g_autoptr (QomniConfig) cfg = qomni_config_preset (preset, &error);
  if (!cfg) {
    fprintf (stderr, "bench-vision: %s\n", error->message);
    return 2;
  }
  QomniVisionConfig *vc = &cfg->thinker.vision;
  if (depth > 0 && depth < vc->depth) {
    vc->depth = depth;
    int k = 0;
    for (int i = 0; i < vc->n_deepstack; i++)
      if (vc->deepstack_visual_indexes[i] < depth)
        vc->deepstack_visual_indexes[k++] = vc->deepstack_visual_indexes[i];
    vc->n_deepstack = k;
  }
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (cfg, QOMNI_PART_VISION);
  double t0 = now_s ();
  QomniWeights *w = qomni_random_weights (specs, QOMNI_DTYPE_BF16, 1,
                                          QOMNI_RANDOM_WEIGHTS_DEFAULT, &error);
  QomniVisionEncoder *enc = w ? qomni_vision_encoder_new (w, cfg, &error) : NULL;
  if (!enc) {
    fprintf (stderr, "bench-vision: %s\n", error->message);
    qomni_weights_free (w);
    return 1;
  }
  printf ("vision %s: %d blocks, bf16 matrices, %d threads (weights made in %.1f s)\n", preset,
          vc->depth, qomni_cpu_threads (), now_s () - t0);

  guint8 **frames = g_new (guint8 *, n_frames);
  for (int f = 0; f < n_frames; f++) {
    frames[f] = g_new (guint8, (gsize) width * height * 3);
    for (gsize i = 0; i < (gsize) width * height * 3; i++)
      frames[f][i] = (guint8) ((i * 2654435761u + f * 97u) >> 24);
  }
  const QomniImageParams *p = n_frames > 1 ? &QOMNI_VIDEO_PARAMS_DEFAULT
                                           : &QOMNI_IMAGE_PARAMS_DEFAULT;
  float *pixels = NULL;
  int grid[3];
  t0 = now_s ();
  gboolean ok = qomni_video_preprocess ((const guint8 *const *) frames, n_frames, width, height,
                                        width * 3, p, &pixels, grid, &error);
  const double pre_s = now_s () - t0;
  double best = 1e30;
  int n_tok = 0;
  if (ok) {
    n_tok = qomni_vision_encoder_n_tokens (enc, grid);
    const int D = qomni_vision_encoder_output_dim (enc);
    const int K = qomni_vision_encoder_n_deepstack (enc);
    float *emb = g_new (float, (gsize) n_tok * D);
    float *deep = g_new (float, (gsize) MAX (K, 1) * n_tok * D);
    for (int r = 0; r < 2 && ok && (r == 0 || best <= 5.0); r++) {
      t0 = now_s ();
      ok = qomni_vision_encoder_encode (enc, pixels, grid, emb, deep, &error);
      best = MIN (best, now_s () - t0);
    }
    g_free (emb);
    g_free (deep);
  }
  if (!ok) {
    fprintf (stderr, "bench-vision: %s\n", error->message);
    g_error_free (error);
  } else {
    printf ("%d frame(s) %dx%d%s -> grid t %d, h %d, w %d: %d patches, %d tokens\n", n_frames,
            width, height, seconds ? " (2 fps)" : "", grid[0], grid[1], grid[2],
            grid[0] * grid[1] * grid[2], n_tok);
    printf ("preprocess: %.1f ms\nencode:     %.1f ms\n", pre_s * 1e3, best * 1e3);
  }
  g_free (pixels);
  for (int f = 0; f < n_frames; f++)
    g_free (frames[f]);
  g_free (frames);
  qomni_vision_encoder_free (enc);
  qomni_weights_free (w);
  return ok ? 0 : 1;
}
