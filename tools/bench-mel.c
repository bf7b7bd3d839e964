/* bench-mel — how long the log-mel front end takes per second of 16 kHz audio.
 *
 *   build/tools/bench-mel [SECONDS [REPEATS]]      (defaults: 30 s, 20 repeats)
 *
 * Prints the best and median time of qomni_mel_compute in ms per second of audio, and the
 * time of the per-sample loops alone (window multiply and |X|² over the same frames):
 * the most that a faster per-sample kernel (ORC) could save.
 */
#include "mel.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int
cmp_double (const void *a, const void *b)
{
  const double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  const double seconds = argc > 1 ? g_ascii_strtod (argv[1], NULL) : 30.0;
  const int repeats = argc > 2 ? atoi (argv[2]) : 20;
  const int n = (int) (seconds * QOMNI_MEL_SAMPLE_RATE);
  if (n < QOMNI_MEL_HOP || repeats < 1) {
    fprintf (stderr, "usage: %s [SECONDS >= 0.01 [REPEATS >= 1]]\n", argv[0]);
    return 2;
  }

  /* A chirp under noise: every mel bin gets some energy. */
  float *pcm = g_new (float, n);
  GRand *rand = g_rand_new_with_seed (1);
  for (int i = 0; i < n; i++) {
    const double t = (double) i / QOMNI_MEL_SAMPLE_RATE;
    pcm[i] = (float) (0.3 * sin (2.0 * G_PI * (100.0 + 200.0 * t) * t)
                      + 0.05 * g_rand_double_range (rand, -1.0, 1.0));
  }
  g_rand_free (rand);

  QomniMel *m = qomni_mel_new (128);
  const int T = qomni_mel_n_frames (n);
  float *features = g_new (float, (gsize) 128 * T);
  double *ms = g_new (double, repeats);
  GError *error = NULL;
  for (int r = 0; r < repeats; r++) {
    const gint64 t0 = g_get_monotonic_time ();
    if (!qomni_mel_compute (m, pcm, n, features, &error)) {
      fprintf (stderr, "bench-mel: %s\n", error->message);
      return 1;
    }
    ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
  }
  qsort (ms, repeats, sizeof (double), cmp_double);

  /* The per-sample loops alone, over the same frames. */
  float window[QOMNI_MEL_N_FFT], frame[QOMNI_MEL_N_FFT], spec[QOMNI_MEL_N_FFT + 2];
  float power[QOMNI_MEL_N_FFT / 2 + 1];
  for (int i = 0; i < QOMNI_MEL_N_FFT; i++)
    window[i] = (float) (0.5 - 0.5 * cos (2.0 * G_PI * i / QOMNI_MEL_N_FFT));
  for (int i = 0; i < QOMNI_MEL_N_FFT + 2; i++)
    spec[i] = pcm[i];
  double sink = 0.0, loops_best = INFINITY;
  for (int r = 0; r < repeats; r++) {
    const gint64 t0 = g_get_monotonic_time ();
    for (int t = 0; t + 2 < T; t++) {
      const float *src = pcm + (gsize) t * QOMNI_MEL_HOP;
      for (int i = 0; i < QOMNI_MEL_N_FFT; i++)
        frame[i] = src[i] * window[i];
      for (int j = 0; j <= QOMNI_MEL_N_FFT / 2; j++)
        power[j] = spec[2 * j] * spec[2 * j] + spec[2 * j + 1] * spec[2 * j + 1];
      sink += frame[t % QOMNI_MEL_N_FFT] + power[t % (QOMNI_MEL_N_FFT / 2)];
    }
    loops_best = MIN (loops_best, (g_get_monotonic_time () - t0) / 1000.0);
  }

  printf ("log-mel, %.1f s of audio (%d frames), %d runs\n", seconds, T, repeats);
  printf ("  qomni_mel_compute: best %.3f ms/s of audio, median %.3f ms/s\n",
          ms[0] / seconds, ms[repeats / 2] / seconds);
  printf ("  window + power loops alone: %.3f ms/s of audio (%.1f%% of the best run)%s\n",
          loops_best / seconds, 100.0 * loops_best / ms[0], sink == 12345.0 ? " " : "");
  g_free (ms);
  g_free (features);
  g_free (pcm);
  qomni_mel_free (m);
  return 0;
}
