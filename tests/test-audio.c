/* The log-mel front end and the AuT audio encoder on the CPU against transformers
 * (tiny-omni fixture, float32 reference), then audio → thinker end to end.
 * Tolerances: 1e-4 normwise relative error (max|a − b| / max|b|) on the mel features, on
 * every encoder stage and on the embeddings; token ids exact. */
#include "refs.h"
#include "audio-encoder.h"
#include "config.h"
#include "error.h"
#include "mel.h"
#include "sampler.h"
#include "thinker.h"

#include <string.h>
#include <time.h>

#define TOL 1e-4
#define N_WAVE 52800
#define N_MELS 128
#define T_REF 330
#define A_REF 43

typedef struct {
  QomniWeights *w, *refs;
  QomniConfig *cfg;
  int D_out;
} Fixture;

static Fixture fx;

static void
fixture_load (void)
{
  GError *error = NULL;
  fx.w = refs_open ("tiny-omni");
  fx.refs = refs_open ("tiny-omni/refs.safetensors");
  g_autofree char *cfg_path = refs_path ("tiny-omni/config.json");
  fx.cfg = qomni_config_load (cfg_path, &error);
  g_assert_no_error (error);
  fx.D_out = fx.cfg->thinker.audio.output_dim;
}

static QomniAudioEncoder *
encoder_new (void)
{
  GError *error = NULL;
  QomniAudioEncoder *enc = qomni_audio_encoder_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
  g_assert_nonnull (enc);
  return enc;
}

static gboolean
all_finite (const float *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return FALSE;
  return TRUE;
}

static void
test_mel (void)
{
  GError *error = NULL;
  const float *wave = refs_f32 (fx.refs, "audio.wave_16k", N_WAVE);
  const float *ref = refs_f32 (fx.refs, "audio.input_features", N_MELS * T_REF);
  g_assert_cmpint (qomni_mel_n_frames (N_WAVE), ==, T_REF);
  g_autoptr (QomniMel) m = qomni_mel_new (N_MELS);
  g_autofree float *feat = g_new (float, N_MELS * T_REF);
  g_assert_true (qomni_mel_compute (m, wave, N_WAVE, feat, &error));
  g_assert_no_error (error);
  assert_close ("input_features", feat, ref, N_MELS * T_REF, TOL);
}

typedef struct {
  int seen;
  int n_layers;
} TraceCheck;

static void
trace_check (const char *name, const float *data, const int64_t *shape, int ndim, gpointer user)
{
  TraceCheck *tc = user;
  g_autofree char *ref_name = g_strdup_printf ("trace.audio.audio_tower.%s", name);
  const QomniTensor *t = qomni_weights_find (fx.refs, ref_name);
  g_assert_nonnull (t);
  g_assert_cmpint (t->ndim, ==, ndim);
  for (int i = 0; i < ndim; i++)
    g_assert_cmpint (t->shape[i], ==, shape[i]);
  int64_t n = qomni_tensor_nelements (t);
  assert_close (ref_name, data, refs_f32 (fx.refs, ref_name, n), n, TOL);
  tc->seen++;
}

/* Every stage against the reference trace, from the reference's own mel features so that
 * the encoder is checked alone. */
static void
test_encoder_stages (void)
{
  GError *error = NULL;
  QomniAudioEncoder *enc = encoder_new ();
  g_assert_cmpint (qomni_audio_encoder_output_dim (enc), ==, fx.D_out);
  g_assert_cmpint (qomni_audio_encoder_n_tokens (enc, T_REF), ==, A_REF);
  const float *feat = refs_f32 (fx.refs, "audio.input_features", N_MELS * T_REF);
  TraceCheck tc = { 0, fx.cfg->thinker.audio.encoder_layers };
  qomni_audio_encoder_set_trace (enc, trace_check, &tc);
  g_autofree float *out = g_new (float, A_REF * fx.D_out);
  g_assert_true (qomni_audio_encoder_encode (enc, feat, T_REF, out, &error));
  g_assert_no_error (error);
  /* conv2d1..3, conv_out, the layers, ln_post, proj1, proj2 */
  g_assert_cmpint (tc.seen, ==, 4 + tc.n_layers + 3);
  assert_close ("audio.embeds", out, refs_f32 (fx.refs, "audio.embeds", A_REF * fx.D_out),
                A_REF * fx.D_out, TOL);

  /* Without the observer the result is the same. */
  qomni_audio_encoder_set_trace (enc, NULL, NULL);
  g_autofree float *out2 = g_new (float, A_REF * fx.D_out);
  g_assert_true (qomni_audio_encoder_encode (enc, feat, T_REF, out2, &error));
  g_assert_cmpmem (out, sizeof (float) * A_REF * fx.D_out, out2,
                   sizeof (float) * A_REF * fx.D_out);
  qomni_audio_encoder_free (enc);
}

/* Attention windows are independent: with n_window_infer = 200 the fixture's 330 frames
 * make windows of frames [0, 200) and [200, 330) (26 + 17 tokens). Encoding each part on
 * its own gives the same rows; the second part checks the zero-padded tail chunk. */
static void
test_encoder_windows (void)
{
  GError *error = NULL;
  QomniAudioEncoder *enc = encoder_new ();
  const float *feat = refs_f32 (fx.refs, "audio.input_features", N_MELS * T_REF);
  const float *ref = refs_f32 (fx.refs, "audio.embeds", A_REF * fx.D_out);
  const int split = fx.cfg->thinker.audio.n_window_infer;   /* 200 frames */
  const int parts[2][2] = { { 0, split }, { split, T_REF } };
  int row = 0;
  for (int p = 0; p < 2; p++) {
    const int T = parts[p][1] - parts[p][0];
    const int A = qomni_audio_encoder_n_tokens (enc, T);
    g_autofree float *sub = g_new (float, N_MELS * T);
    for (int f = 0; f < N_MELS; f++)
      memcpy (sub + f * T, feat + f * T_REF + parts[p][0], sizeof (float) * T);
    g_autofree float *out = g_new (float, A * fx.D_out);
    g_assert_true (qomni_audio_encoder_encode (enc, sub, T, out, &error));
    g_assert_no_error (error);
    assert_close ("window", out, ref + row * fx.D_out, A * fx.D_out, TOL);
    row += A;
  }
  g_assert_cmpint (row, ==, A_REF);
  qomni_audio_encoder_free (enc);
}

static void
test_n_tokens (void)
{
  QomniAudioEncoder *enc = encoder_new ();
  const int table[][2] = {
    { 330, 43 }, { 100, 13 }, { 1000, 130 }, { 320, 42 }, { 1, 1 }, { 99, 13 }, { 101, 14 },
    { 8, 1 }, { 9, 2 }, { 200, 26 }, { 0, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_cmpint (qomni_audio_encoder_n_tokens (enc, table[i][0]), ==, table[i][1]);
  g_assert_cmpint (qomni_mel_n_frames (0), ==, 0);
  g_assert_cmpint (qomni_mel_n_frames (159), ==, 0);
  g_assert_cmpint (qomni_mel_n_frames (160), ==, 1);
  g_assert_cmpint (qomni_mel_n_frames (52800), ==, 330);
  qomni_audio_encoder_free (enc);
}

/* mel → encoder → thinker: the greedy answer equals generate.sequences[68:76]. */
static void
test_end_to_end (void)
{
  GError *error = NULL;
  const float *wave = refs_f32 (fx.refs, "audio.wave_16k", N_WAVE);
  g_autoptr (QomniMel) m = qomni_mel_new (N_MELS);
  const int T = qomni_mel_n_frames (N_WAVE);
  g_autofree float *feat = g_new (float, N_MELS * T);
  g_assert_true (qomni_mel_compute (m, wave, N_WAVE, feat, &error));
  QomniAudioEncoder *enc = encoder_new ();
  const int A = qomni_audio_encoder_n_tokens (enc, T);
  g_autofree float *audio = g_new (float, A * fx.D_out);
  gint64 t0 = g_get_monotonic_time ();
  double c0 = (double) clock () / CLOCKS_PER_SEC;
  g_assert_true (qomni_audio_encoder_encode (enc, feat, T, audio, &error));
  g_assert_no_error (error);
  if (g_test_verbose ())
    g_printerr ("# encoder: %.1f ms wall, %.1f ms CPU for %.1f s of audio\n",
                (g_get_monotonic_time () - t0) / 1000.0,
                ((double) clock () / CLOCKS_PER_SEC - c0) * 1000.0, N_WAVE / 16000.0);
  assert_close ("audio.embeds from the wave", audio,
                refs_f32 (fx.refs, "audio.embeds", A_REF * fx.D_out), A_REF * fx.D_out, TOL);

  int n, n_seq;
  g_autofree int *ids = refs_ints (fx.refs, "thinker.prompt_ids", &n);
  g_autofree int *seq = refs_ints (fx.refs, "generate.sequences", &n_seq);
  g_assert_cmpint (n_seq, ==, n + 8);
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 128, &error);
  g_assert_no_error (error);
  const int V = qomni_thinker_vocab_size (t);
  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill (t, ids, n, audio, A, NULL, 0, logits, &error));
  g_assert_no_error (error);
  QomniSampler *s = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  for (int i = 0; i < 8; i++) {
    int id = qomni_sampler_sample (s, logits, V, NULL, 0, 0, 0, -1);
    g_assert_cmpint (id, ==, seq[n + i]);
    if (i < 7)
      g_assert_true (qomni_thinker_decode (t, id, logits, &error));
  }
  qomni_sampler_free (s);
  qomni_thinker_free (t);
  qomni_audio_encoder_free (enc);
}

static void
test_mel_bad_input (void)
{
  GError *error = NULL;
  g_autoptr (QomniMel) m = qomni_mel_new (N_MELS);
  float one = 0.5f, feat[N_MELS * 2];

  /* zero samples and one sample: no frame, a clear error */
  g_assert_false (qomni_mel_compute (m, &one, 0, feat, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (qomni_mel_compute (m, &one, 1, feat, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  /* 160..200 samples: shorter than the reflect padding, still one frame */
  float short_pcm[200];
  for (int i = 0; i < 200; i++)
    short_pcm[i] = sinf (i * 0.3f);
  g_assert_true (qomni_mel_compute (m, short_pcm, 160, feat, &error));
  g_assert_true (all_finite (feat, N_MELS));
  g_assert_true (qomni_mel_compute (m, short_pcm, 200, feat, &error));
  g_assert_true (all_finite (feat, N_MELS));

  /* NaN and ±Inf count as silence: the result is finite and equals the zeroed signal's */
  const float *wave = refs_f32 (fx.refs, "audio.wave_16k", N_WAVE);
  g_autofree float *bad = g_memdup2 (wave, sizeof (float) * N_WAVE);
  g_autofree float *zeroed = g_memdup2 (wave, sizeof (float) * N_WAVE);
  const int where[] = { 0, 1, 150, 4000, 4001, 30000, N_WAVE - 1 };
  for (guint i = 0; i < G_N_ELEMENTS (where); i++) {
    bad[where[i]] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
    zeroed[where[i]] = 0.0f;
  }
  /* Absurdly loud but finite samples: still finite features. */
  g_autofree float *loud = g_memdup2 (wave, sizeof (float) * N_WAVE);
  loud[20000] = 3e38f;
  loud[20001] = -3e38f;
  g_autofree float *f_loud = g_new (float, N_MELS * T_REF);
  g_assert_true (qomni_mel_compute (m, loud, N_WAVE, f_loud, &error));
  g_assert_true (all_finite (f_loud, N_MELS * T_REF));

  g_autofree float *f_bad = g_new (float, N_MELS * T_REF);
  g_autofree float *f_zero = g_new (float, N_MELS * T_REF);
  g_assert_true (qomni_mel_compute (m, bad, N_WAVE, f_bad, &error));
  g_assert_true (qomni_mel_compute (m, zeroed, N_WAVE, f_zero, &error));
  g_assert_true (all_finite (f_bad, N_MELS * T_REF));
  g_assert_cmpmem (f_bad, sizeof (float) * N_MELS * T_REF, f_zero,
                   sizeof (float) * N_MELS * T_REF);
}

/* A minute of digital silence: every feature is (log10(1e-10) + 4) / 4 = −1.5, and the
 * encoder gets through 60 chunks with its fixed scratch. */
static void
test_long_silence (void)
{
  GError *error = NULL;
  const int n = 60 * 16000, T = qomni_mel_n_frames (n);
  g_autofree float *pcm = g_new0 (float, n);
  g_autofree float *feat = g_new (float, (gsize) N_MELS * T);
  g_autoptr (QomniMel) m = qomni_mel_new (N_MELS);
  gint64 t0 = g_get_monotonic_time ();
  g_assert_true (qomni_mel_compute (m, pcm, n, feat, &error));
  for (int i = 0; i < N_MELS * T; i++)
    g_assert_cmpfloat (feat[i], ==, -1.5f);
  QomniAudioEncoder *enc = encoder_new ();
  const int A = qomni_audio_encoder_n_tokens (enc, T);
  g_assert_cmpint (A, ==, 780);
  g_autofree float *out = g_new (float, (gsize) A * fx.D_out);
  g_assert_true (qomni_audio_encoder_encode (enc, feat, T, out, &error));
  g_assert_no_error (error);
  g_assert_true (all_finite (out, (gsize) A * fx.D_out));
  const double secs = (g_get_monotonic_time () - t0) / 1e6;
  if (g_test_verbose ())
    g_printerr ("# 60 s of silence: mel + encoder in %.2f s\n", secs);
  g_assert_cmpfloat (secs, <, 60.0);
  qomni_audio_encoder_free (enc);
}

typedef struct {
  int64_t conv1_shape[4];
} ShapeSeen;

static void
trace_shape (const char *name, const float *data, const int64_t *shape, int ndim, gpointer user)
{
  ShapeSeen *s = user;
  if (strcmp (name, "conv2d1") == 0)
    memcpy (s->conv1_shape, shape, sizeof (int64_t) * 4);
}

/* Short and odd lengths: T = 1, 99 (one short chunk, no padding), 101 (a full chunk and a
 * one-frame tail padded to 100). */
static void
test_encoder_lengths (void)
{
  GError *error = NULL;
  QomniAudioEncoder *enc = encoder_new ();
  const int C = fx.cfg->thinker.audio.downsample_hidden_size;
  const float *ref = refs_f32 (fx.refs, "audio.input_features", N_MELS * T_REF);
  const struct { int T, tokens, chunks, w1; } cases[] = {
    { 1, 1, 1, 1 }, { 99, 13, 1, 50 }, { 101, 14, 2, 50 }, { 17, 3, 1, 9 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    const int T = cases[c].T;
    g_autofree float *feat = g_new (float, N_MELS * T);
    for (int f = 0; f < N_MELS; f++)
      memcpy (feat + f * T, ref + f * T_REF, sizeof (float) * T);
    const int A = qomni_audio_encoder_n_tokens (enc, T);
    g_assert_cmpint (A, ==, cases[c].tokens);
    ShapeSeen seen = { { 0 } };
    qomni_audio_encoder_set_trace (enc, trace_shape, &seen);
    g_autofree float *out = g_new (float, A * fx.D_out);
    g_assert_true (qomni_audio_encoder_encode (enc, feat, T, out, &error));
    g_assert_no_error (error);
    g_assert_true (all_finite (out, A * fx.D_out));
    g_assert_cmpint (seen.conv1_shape[0], ==, cases[c].chunks);
    g_assert_cmpint (seen.conv1_shape[1], ==, C);
    g_assert_cmpint (seen.conv1_shape[2], ==, N_MELS / 2);
    g_assert_cmpint (seen.conv1_shape[3], ==, cases[c].w1);
  }
  qomni_audio_encoder_set_trace (enc, NULL, NULL);

  /* no frames, and features that are not finite */
  float feat[N_MELS * 2], out[64 * 2];
  g_assert_false (qomni_audio_encoder_encode (enc, feat, 0, out, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  for (int i = 0; i < N_MELS * 2; i++)
    feat[i] = 0.0f;
  feat[N_MELS + 1] = NAN;
  g_assert_false (qomni_audio_encoder_encode (enc, feat, 2, out, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  qomni_audio_encoder_free (enc);
}

/* A checkpoint whose audio tower disagrees with the config fails with a GError. */
static void
test_encoder_bad_config (void)
{
  GError *error = NULL;
  QomniConfig cfg = *fx.cfg;
  cfg.thinker.audio.downsample_hidden_size += 1;
  g_assert_null (qomni_audio_encoder_new (fx.w, &cfg, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH);
  g_clear_error (&error);
  cfg = *fx.cfg;
  cfg.thinker.audio.n_window_infer = 10;
  g_assert_null (qomni_audio_encoder_new (fx.w, &cfg, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED);
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fixture_load ();
  g_test_add_func ("/audio/mel", test_mel);
  g_test_add_func ("/audio/encoder-stages", test_encoder_stages);
  g_test_add_func ("/audio/encoder-windows", test_encoder_windows);
  g_test_add_func ("/audio/n-tokens", test_n_tokens);
  g_test_add_func ("/audio/end-to-end", test_end_to_end);
  g_test_add_func ("/audio/mel-bad-input", test_mel_bad_input);
  g_test_add_func ("/audio/long-silence", test_long_silence);
  g_test_add_func ("/audio/encoder-lengths", test_encoder_lengths);
  g_test_add_func ("/audio/encoder-bad-config", test_encoder_bad_config);
  int rc = g_test_run ();
  qomni_config_free (fx.cfg);
  qomni_weights_free (fx.refs);
  qomni_weights_free (fx.w);
  return rc;
}
