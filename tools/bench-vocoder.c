/* bench-vocoder — Code2Wav's speed with random weights made in memory (no file): the
 * real-time factor per chunk size, through the same API the elements use.
 *
 *   bench-vocoder [--device vulkan[:N]|cpu] [--preset full|tiny] [--frames N]
 *                 [--left N] [--chunks 4,10,25,100,300] [--profile]
 *
 * For each chunk size c, `frames` random codec frames are decoded as the reference's
 * chunked_decode (c, left): chunks of c new frames, each with up to `left` frames of
 * context before it. Printed per chunk size: time per decode call (the latency a chunk
 * adds after its last frame), and the real-time factor = decode time / audio duration
 * (80 ms per frame; below 1 is faster than real time). Best of 3 after a warm-up.
 * --profile prints the per-kernel GPU timestamps of one pass at the largest chunk.
 * Defaults: vulkan, full (1024 hidden, 8 layers, decoder 1536; bf16 matrices), 300
 * frames (24 s of speech), left context 25. */
#include "checkpoint.h"
#include "code2wav.h"
#include "error.h"
#include "ops-cpu.h"
#include "random-weights.h"
#include "vk-device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  const char *device = "vulkan", *preset = "full", *chunk_list = "4,10,25,100,300";
  int frames = 300, left = 25;
  gboolean profile = FALSE;
  for (int i = 1; i < argc; i++) {
    const gboolean has = i + 1 < argc;
    if (!strcmp (argv[i], "--device") && has)
      device = argv[++i];
    else if (!strcmp (argv[i], "--preset") && has)
      preset = argv[++i];
    else if (!strcmp (argv[i], "--frames") && has)
      frames = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--left") && has)
      left = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--chunks") && has)
      chunk_list = argv[++i];
    else if (!strcmp (argv[i], "--profile"))
      profile = TRUE;
    else {
      fprintf (stderr, "usage: %s [--device vulkan[:N]|cpu] [--preset full|tiny] "
               "[--frames N] [--left N] [--chunks 4,10,...] [--profile]\n", argv[0]);
      return 2;
    }
  }
  if (frames < 1 || left < 0) {
    fprintf (stderr, "bench-vocoder: --frames must be ≥ 1 and --left ≥ 0\n");
    return 2;
  }
  GError *error = NULL;
  QomniVk *vk = NULL;
  if (g_str_has_prefix (device, "vulkan")) {
    vk = qomni_vk_new (device[6] == ':' ? atoi (device + 7) : -1, &error);
    if (!vk) {
      fprintf (stderr, "bench-vocoder: %s\n", error->message);
      return 77;
    }
    if (profile)
      qomni_vk_profile_enable (vk, TRUE);
  } else if (strcmp (device, "cpu") != 0) {
    fprintf (stderr, "bench-vocoder: --device must be cpu or vulkan[:N]\n");
    return 2;
  }
  g_autoptr (QomniConfig) cfg = qomni_config_preset (preset, &error);
  if (!cfg) {
    fprintf (stderr, "bench-vocoder: %s\n", error->message);
    return 2;
  }
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (cfg, QOMNI_PART_CODE2WAV);
  gint64 t0 = g_get_monotonic_time ();
  QomniWeights *w = qomni_random_weights (specs, QOMNI_DTYPE_BF16, 1,
                                          QOMNI_RANDOM_WEIGHTS_DEFAULT, &error);
  QomniCode2Wav *c = w ? qomni_code2wav_new_on (w, cfg, vk, &error) : NULL;
  if (!c) {
    fprintf (stderr, "bench-vocoder: %s\n", error->message);
    return 1;
  }
  printf ("code2wav %s on %s: bf16 matrices, weights made and loaded in %.1f s; %d frames "
          "(%.1f s of speech), left context %d\n", preset,
          vk ? qomni_vk_device_name (vk) : "the CPU", (g_get_monotonic_time () - t0) * 1e-6,
          frames, frames * 0.08, left);
  if (!vk)
    printf ("(%d CPU threads)\n", qomni_cpu_threads ());

  const int Q = qomni_code2wav_num_quantizers (c), cb = qomni_code2wav_codebook_size (c);
  int *codes = g_new (int, (gsize) Q * frames);
  GRand *rng = g_rand_new_with_seed (5);
  for (int i = 0; i < Q * frames; i++)
    codes[i] = g_rand_int_range (rng, 0, cb);
  g_rand_free (rng);

  printf ("  %6s %7s %12s %12s %10s\n", "chunk", "calls", "ms/call", "total ms", "RTF");
  g_auto (GStrv) chunks = g_strsplit (chunk_list, ",", -1);
  int largest = 0;
  for (int i = 0; chunks[i]; i++) {
    const int chunk = atoi (chunks[i]);
    if (chunk < 1)
      continue;
    largest = MAX (largest, chunk);
    const int calls = (frames + chunk - 1) / chunk;
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {   /* the first allocates and compiles */
      float *wav;
      int n;
      t0 = g_get_monotonic_time ();
      if (!qomni_code2wav_chunked_decode (c, codes, frames, chunk, left, &wav, &n, &error)) {
        fprintf (stderr, "bench-vocoder: chunk %d: %s\n", chunk, error->message);
        return 1;
      }
      const double dt = (g_get_monotonic_time () - t0) * 1e-6;
      if (rep > 0)
        best = MIN (best, dt);
      g_free (wav);
    }
    printf ("  %6d %7d %12.2f %12.1f %10.4f\n", chunk, calls, best * 1e3 / calls, best * 1e3,
            best / (frames * 0.08));
  }
  if (vk && profile && largest > 0) {
    float *wav;
    int n;
    qomni_vk_profile_reset (vk);
    if (qomni_code2wav_chunked_decode (c, codes, frames, largest, left, &wav, &n, &error))
      g_free (wav);
    char title[96];
    snprintf (title, sizeof title, "one pass, chunk %d", largest);
    qomni_vk_profile_print (vk, title);
  }
  g_free (codes);
  qomni_code2wav_free (c);
  qomni_weights_free (w);
  if (vk)
    qomni_vk_free (vk);
  return 0;
}
