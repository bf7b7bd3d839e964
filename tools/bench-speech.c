/* qomni bench — speech: the talker with its code predictor (codec frames/s) and Code2Wav
 * (real-time factor per chunk size).
 *
 * The talker is fed random thinker rows after a real chat prompt, 16 answer rows and then
 * the end of the text, and runs until codec EOS or --max-frames.
 * Floor of a frame: the talker's decoder step (attention, k of E experts, the shared
 * expert, codec head, text projection) plus the code predictor's 15 passes over its layers
 * and its 15 heads read once (bytes ÷ bandwidth).
 * Code2Wav decodes the same random frames in chunks of C with --left-context frames before
 * each; its floor (convolution FLOPs) is not computed. */
#include "bench.h"
#include "error.h"
#include "tokenizer.h"

#include <stdio.h>

void
bench_run_talker (Bench *b)
{
  const char *S = "talker";
  bench_section (b, S);
  const QomniConfig *cfg = b->model->config;
  if (!cfg->talker.present) {
    bench_skip (b, S, "all", "the model has no talker");
    return;
  }
  GError *error = NULL;
  const double t_new = bench_now ();
  QomniTalker *t = bench_talker_new (b, 4096, &error);
  if (!t) {
    bench_skip (b, S, "all", "%s", error->message);
    g_error_free (error);
    return;
  }
  const int Ht = qomni_talker_thinker_hidden_size (t);
  printf ("# talker on %s (made in %.1f s)\n", bench_talker_where (b), bench_now () - t_new);

  g_autoptr (QomniChat) chat = qomni_chat_new ();
  qomni_chat_begin (chat, "user");
  qomni_chat_text (chat, "Tell me about the sea.");
  qomni_chat_end (chat);
  qomni_chat_assistant_prompt (chat);
  int n = 0;
  g_autofree int *ids = qomni_chat_tokenize (chat, b->model->tokenizer, &n, &error);
  const int n_text = 16;
  float *rows = g_new (float, (gsize) (n + n_text) * Ht);
  GRand *rng = g_rand_new_with_seed (5);
  for (gsize i = 0; i < (gsize) (n + n_text) * Ht; i++)
    rows[i] = (float) g_rand_double_range (rng, -0.05, 0.05);
  g_rand_free (rng);

  QomniTalkerOptions opt;
  qomni_talker_options_init (&opt, cfg);
  opt.max_frames = b->max_frames;
  int codes[64];
  int frames = 0;
  double dt = 0;
  gboolean ok = ids && qomni_talker_start (t, ids, n, rows, rows, NULL, 0, &opt, &error);
  if (ok) {
    for (int i = 0; i < n_text; i++)
      qomni_talker_push_text (t, rows + (gsize) (n + i) * Ht);
    qomni_talker_end_text (t);
    const double t0 = bench_now ();
    QomniTalkerStatus st;
    while ((st = qomni_talker_step (t, codes, &error)) == QOMNI_TALKER_FRAME)
      frames++;
    dt = bench_now () - t0;
    ok = st == QOMNI_TALKER_DONE;
  }
  if (!ok) {
    bench_skip (b, S, "frames", "%s", error ? error->message : "the talker stopped early");
    g_clear_error (&error);
  } else if (frames == 0) {
    bench_skip (b, S, "frames", "the talker made no frame (codec EOS at once)");
  } else {
    const QomniWeights *w = b->model->weights;
    const QomniTextConfig *tt = &cfg->talker.text;
    const double bytes =
      bench_weight_bytes (w, "talker.model.", NULL, tt->num_experts_per_tok, tt->num_experts) +
      bench_weight_bytes (w, "talker.codec_head", NULL, 0, 0) +
      bench_weight_bytes (w, "talker.text_projection", NULL, 0, 0) +
      (cfg->talker.num_code_groups - 1) *
        bench_weight_bytes (w, "talker.code_predictor.model.", "embed", 0, 0) +
      bench_weight_bytes (w, "talker.code_predictor.lm_head", NULL, 0, 0);
    const double bw = bench_bandwidth (b, bench_talker_where (b));
    char basis[96];
    g_snprintf (basis, sizeof basis, "%.3g GB/frame / %.4g GB/s", bytes / 1e9, bw);
    double talker_s, cp_s;
    qomni_talker_timing (t, &talker_s, &cp_s);
    bench_figure (b, S, "talker + code predictor", "frames", frames, frames / dt, "frames/s",
                  bw > 0 ? bw * 1e9 / bytes : 0, basis);
    bench_figure (b, S, "talker decoder", NULL, 0, talker_s / frames * 1e3, "ms/frame", 0, NULL);
    bench_figure (b, S, "code predictor", NULL, 0, cp_s / frames * 1e3, "ms/frame", 0, NULL);
    /* a frame is 80 ms of speech */
    bench_figure (b, S, "real-time factor", NULL, 0, dt / (frames * 0.08), "x", 0, NULL);
  }
  g_free (rows);
  qomni_talker_free (t);
}

void
bench_run_vocoder (Bench *b)
{
  const char *S = "vocoder";
  bench_section (b, S);
  const QomniConfig *cfg = b->model->config;
  if (!cfg->code2wav.present) {
    bench_skip (b, S, "all", "the model has no code2wav");
    return;
  }
  GError *error = NULL;
  QomniCode2Wav *c = bench_code2wav_new (b, &error);
  if (!c) {
    bench_skip (b, S, "all", "%s", error->message);
    g_error_free (error);
    return;
  }
  const int Q = qomni_code2wav_num_quantizers (c), K = qomni_code2wav_codebook_size (c);
  const int spf = qomni_code2wav_samples_per_frame (c);
  int n_frames = b->max_frames;
  for (guint i = 0; i < b->chunk_sizes->len; i++)
    n_frames = MAX (n_frames, g_array_index (b->chunk_sizes, int, i));
  int *codes = g_new (int, (gsize) Q * n_frames);
  GRand *rng = g_rand_new_with_seed (9);
  for (gsize i = 0; i < (gsize) Q * n_frames; i++)
    codes[i] = g_rand_int_range (rng, 0, K);
  g_rand_free (rng);
  float *wav = NULL;
  int n_samples = 0;
  /* warm-up: one small chunk pages the weights in and sizes the scratch */
  gboolean ok = qomni_code2wav_decode (c, codes, MIN (4, n_frames), &wav, &n_samples, &error);
  g_clear_pointer (&wav, g_free);
  for (guint i = 0; ok && i < b->chunk_sizes->len; i++) {
    const int chunk = g_array_index (b->chunk_sizes, int, i);
    /* the first packet: one chunk alone */
    double t0 = bench_now ();
    ok = qomni_code2wav_chunked_decode (c, codes, chunk, chunk, b->left_context, &wav,
                                        &n_samples, &error);
    const double first = bench_now () - t0;
    g_clear_pointer (&wav, g_free);
    t0 = bench_now ();
    ok = ok && qomni_code2wav_chunked_decode (c, codes, n_frames, chunk, b->left_context, &wav,
                                              &n_samples, &error);
    const double dt = bench_now () - t0;
    g_clear_pointer (&wav, g_free);
    if (ok && n_samples > 0) {
      bench_figure (b, S, "first chunk", "chunk", chunk, first * 1e3, "ms", 0, NULL);
      bench_figure (b, S, "real-time factor", "chunk", chunk, dt / (n_samples / 24000.0), "x",
                    0, NULL);
    }
  }
  if (!ok) {
    bench_skip (b, S, "chunks", "%s", error->message);
    g_error_free (error);
  }
  printf ("# vocoder: %d random frames (%.2f s of audio), left context %d\n", n_frames,
          n_frames * spf / 24000.0, b->left_context);
  g_free (codes);
  qomni_code2wav_free (c);
}
