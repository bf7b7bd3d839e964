/* qomni bench — the audio encoder: milliseconds for each length of audio (a 440 Hz tone
 * with noise at 16 kHz), mel features and encoder apart.
 *
 * Floor: 2 · multiply-adds of the transformer layers and projections per output token
 * plus the windowed attention (FLOPs ÷ peak; the convolution front end is not counted),
 * or reading the encoder's weights once (bytes ÷ bandwidth), whichever is longer. */
#include "bench.h"
#include "mel.h"

#include <stdio.h>

#define S "encoder"

void
bench_run_encoder (Bench *b)
{
  bench_section (b, S);
  const QomniConfig *cfg = b->model->config;
  const QomniAudioConfig *ac = &cfg->thinker.audio;
  GError *error = NULL;
  QomniAudioEncoder *enc = bench_encoder_new (b, &error);
  if (!enc) {
    bench_skip (b, S, "all", "%s", error->message);
    g_error_free (error);
    return;
  }
  const char *where = bench_encoder_where (b);
  QomniMel *mel = qomni_mel_new (ac->num_mel_bins);
  const QomniWeights *w = b->model->weights;
  const double macs = bench_weight_macs (w, "thinker.audio_tower.", NULL, 0, 0);
  const double bytes = bench_weight_bytes (w, "thinker.audio_tower.", NULL, 0, 0);
  const double peak = bench_peak (b, where), bw = bench_bandwidth (b, where);
  GRand *rng = g_rand_new_with_seed (3);
  gboolean warm = FALSE;
  for (guint i = 0; i < b->audio_seconds->len; i++) {
    const int secs = g_array_index (b->audio_seconds, int, i);
    const int n = 16000 * secs;
    float *pcm = g_new (float, n);
    for (int k = 0; k < n; k++)
      pcm[k] = 0.3f * sinf (2 * G_PI * 440 * k / 16000.0f) +
               0.05f * (float) g_rand_double_range (rng, -1, 1);
    const int T = qomni_mel_n_frames (n);
    const int n_tok = qomni_audio_encoder_n_tokens (enc, T);
    float *features = g_new (float, (gsize) ac->num_mel_bins * T);
    float *rows = g_new (float, (gsize) n_tok * qomni_audio_encoder_output_dim (enc));
    gboolean ok = TRUE;
    if (!warm)   /* pages the weights in */
      ok = qomni_mel_compute (mel, pcm, n, features, &error) &&
           qomni_audio_encoder_encode (enc, features, T, rows, &error);
    warm = TRUE;
    const double t0 = bench_now ();
    ok = ok && qomni_mel_compute (mel, pcm, n, features, &error);
    const double t1 = bench_now ();
    ok = ok && qomni_audio_encoder_encode (enc, features, T, rows, &error);
    const double t2 = bench_now ();
    if (!ok) {
      bench_skip (b, S, "encode", "%d s: %s", secs, error->message);
      g_clear_error (&error);
    } else {
      /* attention: each token sees the tokens of its window (n_window_infer frames) */
      const int win_tok = MAX (1, qomni_audio_encoder_n_tokens (enc, ac->n_window_infer));
      const double flops = 2.0 * macs * n_tok + 4.0 * ac->encoder_layers * (double) n_tok *
                           MIN (n_tok, win_tok) * ac->d_model;
      const double t_flops = peak > 0 ? flops / (peak * 1e9) : 0;
      const double t_bytes = bw > 0 ? bytes / (bw * 1e9) : 0;
      char basis[96] = "";
      if (t_flops >= t_bytes && t_flops > 0)
        g_snprintf (basis, sizeof basis, "%.3g GFLOP / %.4g GFLOP/s", flops / 1e9, peak);
      else if (t_bytes > 0)
        g_snprintf (basis, sizeof basis, "%.3g GB / %.4g GB/s", bytes / 1e9, bw);
      bench_figure (b, S, "mel features", "seconds", secs, (t1 - t0) * 1e3, "ms", 0, NULL);
      bench_figure (b, S, "encode", "seconds", secs, (t2 - t1) * 1e3, "ms",
                    MAX (t_flops, t_bytes) * 1e3, basis);
    }
    g_free (pcm);
    g_free (features);
    g_free (rows);
  }
  g_rand_free (rng);
  qomni_mel_free (mel);
  qomni_audio_encoder_free (enc);
}
