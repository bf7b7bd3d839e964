/* Speech out on the CPU against transformers (tiny-omni fixture, float32 reference):
 * talker prompt and step inputs, codec frames, Code2Wav (whole, chunked, streamed, and its
 * stages). Tolerance: 1e-4 normwise relative error on floats; codes exact. */
#include "refs.h"
#include "code2wav.h"
#include "config.h"
#include "error.h"
#include "positions.h"
#include "sampler.h"
#include "talker.h"
#include "thinker.h"

#include <string.h>
#include <time.h>

#define TOL 1e-4
#define N_GEN 8

typedef struct {
  QomniWeights *w, *refs;
  QomniConfig *cfg;
  int *ids, n;
  /* thinker states: hs[0] for the prompt and the 7 fed answer tokens, hs[accept] for the
   * prompt */
  float *embed, *hidden;
  int n_answer, Ht;
  QomniCode2Wav *c2w;
} Fixture;

static Fixture fx;

typedef struct {
  float *dst;
  int layer, n, H;
} Capture;

static void
capture_hook (int layer, float *hidden, int row0, int n, gpointer user)
{
  Capture *cap = user;
  if (layer == cap->layer && row0 + n <= cap->n)
    memcpy (cap->dst + (gsize) row0 * cap->H, hidden, sizeof (float) * (gsize) n * cap->H);
}

/* Runs the thinker as the reference did (greedy, 8 new tokens) and keeps what the talker
 * needs: hs[k] is the output of layer k − 1. */
static void
run_thinker (void)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int H = qomni_thinker_hidden_size (t), V = qomni_thinker_vocab_size (t), n = fx.n;
  fx.Ht = H;
  fx.n_answer = N_GEN - 1;
  fx.embed = g_new (float, (gsize) (n + fx.n_answer) * H);
  fx.hidden = g_new (float, (gsize) n * H);
  const float *audio = refs_f32 (fx.refs, "audio.embeds", -1);
  qomni_thinker_embed (t, fx.ids, n, fx.embed);
  g_assert_true (qomni_thinker_scatter (t, fx.ids, n, fx.cfg->thinker.audio_token_id, audio, 43,
                                        fx.embed, &error));
  Capture cap = { fx.hidden, fx.cfg->talker.accept_hidden_layer - 1, n, H };
  qomni_thinker_set_layer_hook (t, capture_hook, &cap);
  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill (t, fx.ids, n, audio, 43, NULL, 0, logits, &error));
  g_assert_no_error (error);
  qomni_thinker_set_layer_hook (t, NULL, NULL);
  int n_seq;
  g_autofree int *seq = refs_ints (fx.refs, "generate.sequences", &n_seq);
  QomniSampler *s = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  for (int i = 0; i < N_GEN; i++) {
    int id = qomni_sampler_sample (s, logits, V, NULL, 0, 0, 0, -1);
    g_assert_cmpint (id, ==, seq[n + i]);
    if (i < N_GEN - 1) {  /* the final token is never fed */
      qomni_thinker_embed (t, &id, 1, fx.embed + (gsize) (n + i) * H);
      g_assert_true (qomni_thinker_decode (t, id, logits, &error));
    }
  }
  qomni_sampler_free (s);
  qomni_thinker_free (t);
}

static void
fixture_load (void)
{
  GError *error = NULL;
  RefsTiny tiny;
  refs_tiny_load (&tiny);
  fx.w = tiny.w;
  fx.refs = tiny.refs;
  fx.cfg = tiny.cfg;
  fx.ids = refs_ints (fx.refs, "thinker.prompt_ids", &fx.n);
  run_thinker ();
  fx.c2w = qomni_code2wav_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
}

/* The reference settings: talker greedy with repetition penalty 1.05, code predictor
 * greedy, speaker ethan, 20 talker steps (the 20th c0 never got its residual codebooks,
 * so 19 complete frames are compared). */
static void
reference_options (QomniTalkerOptions *opt)
{
  qomni_talker_options_init (opt, fx.cfg);
  qomni_talker_options_greedy (opt);
  opt->speaker_codec_id = qomni_config_speaker_id (fx.cfg, "ethan");
  g_assert_cmpint (opt->speaker_codec_id, ==, 2302);
  opt->max_frames = 20;
}

typedef struct {
  GArray *rows;  /* floats */
  int n_calls, first_n;
} Inputs;

static void
input_hook (const float *rows, int n, int H, gpointer user)
{
  Inputs *in = user;
  if (in->n_calls++ == 0)
    in->first_n = n;
  g_array_append_vals (in->rows, rows, (guint) n * H);
}

static void
test_talker (void)
{
  GError *error = NULL;
  QomniTalker *t = qomni_talker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int H = fx.cfg->talker.text.hidden_size, G = qomni_talker_groups (t);
  Inputs in = { g_array_new (FALSE, FALSE, sizeof (float)), 0, 0 };
  qomni_talker_set_input_hook (t, input_hook, &in);
  QomniTalkerOptions opt;
  reference_options (&opt);
  int *codes = NULL, F = 0;
  clock_t c0 = clock ();
  g_assert_true (qomni_talker_generate (t, fx.ids, fx.n, fx.embed, fx.hidden, fx.n_answer, NULL,
                                        0, &opt, &codes, &F, &error));
  g_assert_no_error (error);
  const double cpu = (double) (clock () - c0) / CLOCKS_PER_SEC;

  const float *pre = refs_f32 (fx.refs, "generate.talker_prefill_embeds", 63 * H);
  const float *steps = refs_f32 (fx.refs, "generate.talker_step_embeds", 19 * H);
  g_assert_cmpint (in.first_n, ==, 63);
  g_assert_cmpint (in.n_calls, >=, 20);
  const float *got = (const float *) in.rows->data;
  assert_close ("talker_prefill_embeds", got, pre, 63 * H, TOL);
  assert_close ("talker_step_embeds", got + 63 * H, steps, 19 * H, TOL);

  int n_ref;
  g_autofree int *ref = refs_ints (fx.refs, "generate.codec_frames", &n_ref);
  g_assert_cmpint (n_ref, ==, G * 19);
  g_assert_cmpint (F, >=, 19);
  for (int q = 0; q < G; q++)
    for (int f = 0; f < 19; f++)
      if (codes[q * F + f] != ref[q * 19 + f])
        g_error ("codec frame %d codebook %d: %d, reference %d", f, q, codes[q * F + f],
                 ref[q * 19 + f]);

  double ts, cps;
  qomni_talker_timing (t, &ts, &cps);
  const double speech_s = F * 0.08;
  g_printerr ("# talker: %d frames (%.2f s of speech): talker %.3f s, code predictor %.3f s "
              "wall (%.3f s CPU for both); per second of speech: talker %.3f s, code "
              "predictor %.3f s\n", F, speech_s, ts, cps, cpu, ts / speech_s, cps / speech_s);
  g_free (codes);
  g_array_free (in.rows, TRUE);
  qomni_talker_free (t);
}

/* Rows pushed one at a time between steps give the frames of the all-at-once run; the
 * talker asks for text instead of running ahead of the thinker. Greedy, and sampled with
 * the reference's defaults (the seeds make both runs draw the same numbers). */
static void
test_talker_streaming (gconstpointer sampled)
{
  GError *error = NULL;
  QomniTalker *t = qomni_talker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int G = qomni_talker_groups (t), Ht = fx.Ht;
  QomniTalkerOptions opt;
  reference_options (&opt);
  if (sampled) {
    qomni_talker_options_init (&opt, fx.cfg);
    opt.talker.seed = 7;
    opt.max_frames = 40;
  }
  g_autofree int *whole = NULL;
  int F_whole = 0;
  g_assert_true (qomni_talker_generate (t, fx.ids, fx.n, fx.embed, fx.hidden, fx.n_answer, NULL,
                                        0, &opt, &whole, &F_whole, &error));

  /* the prompt only: the thinker has not produced anything yet */
  g_assert_true (qomni_talker_start (t, fx.ids, fx.n, fx.embed, fx.hidden, NULL, 0, &opt,
                                     &error));
  int codes[32];
  g_assert_cmpint (qomni_talker_step (t, codes, &error), ==, QOMNI_TALKER_NEED_TEXT);
  int pushed = 0, F = 0, need = 0;
  for (;;) {
    QomniTalkerStatus st = qomni_talker_step (t, codes, &error);
    g_assert_cmpint (st, !=, QOMNI_TALKER_ERROR);
    if (st == QOMNI_TALKER_DONE)
      break;
    if (st == QOMNI_TALKER_NEED_TEXT) {
      need++;
      if (pushed < fx.n_answer) {
        qomni_talker_push_text (t, fx.embed + (gsize) (fx.n + pushed++) * Ht);
      } else {
        qomni_talker_end_text (t);
      }
      continue;
    }
    g_assert_cmpint (F, <, F_whole);
    for (int q = 0; q < G; q++)
      g_assert_cmpint (codes[q], ==, whole[q * F_whole + F]);
    F++;
  }
  g_assert_cmpint (F, ==, F_whole);
  g_assert_cmpint (F, >, 0);
  /* one wait before the prompt, one per answer row after it, one for the end */
  g_assert_cmpint (need, ==, fx.n_answer + 1);
  qomni_talker_free (t);
}

typedef struct {
  gboolean seen[8];
  gboolean inject;  /* replace each stage's output by the reference's */
  double tol;
} StageCheck;

static void
trace_check (const char *stage, float *x, int T, int C, gpointer user)
{
  StageCheck *sc = user;
  g_autofree char *name = g_strdup_printf ("trace.code2wav.%s", stage);
  const QomniTensor *rt = qomni_weights_find (fx.refs, name);
  if (!rt)
    return;
  /* the reference is channel-major [C, T] (pre_transformer: [T, C]) */
  const gboolean time_major = g_str_equal (stage, "pre_transformer");
  const float *r = rt->data;
  g_assert_cmpint (qomni_tensor_nelements (rt), ==, (int64_t) T * C);
  g_autofree float *got = g_new (float, (gsize) T * C);
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++)
      got[time_major ? (gsize) t * C + c : (gsize) c * T + t] = x[(gsize) t * C + c];
  g_autofree char *what = g_strdup_printf ("%s (%s)", name,
                                           sc->inject ? "from the reference input" : "end to end");
  assert_close (what, got, r, (int64_t) T * C, sc->tol);
  if (g_str_has_prefix (stage, "decoder."))
    sc->seen[atoi (stage + 8)] = TRUE;
  if (sc->inject)
    for (int t = 0; t < T; t++)
      for (int c = 0; c < C; c++)
        x[(gsize) t * C + c] = r[time_major ? (gsize) t * C + c : (gsize) c * T + t];
}

/* Code2Wav of the tiny fixture amplifies rounding noise: with random weights the signal
 * grows to ±92 before the clamp and float32 differences of ~7e-7 after the
 * pre-transformer grow ~100× through the four decoder blocks. So every stage is checked
 * twice: fed the reference's input (1e-5: the stage itself is exact) and end to end
 * (STAGE_TOL). The clamped waveform is compared with WAV_TOL: its samples are ±1 while the
 * pre-clamp noise is ~6e-5 of ±92. */
#define STAGE_TOL 5e-4
#define WAV_TOL 1e-2

static void
test_code2wav (void)
{
  GError *error = NULL;
  int n_codes;
  g_autofree int *codes = refs_ints (fx.refs, "code2wav.codes", &n_codes);
  g_assert_cmpint (n_codes, ==, 16 * 40);
  g_assert_cmpint (qomni_code2wav_samples_per_frame (fx.c2w), ==, 1920);
  g_assert_cmpint (qomni_code2wav_trim (fx.c2w), ==, 555);
  float *wav;
  int n;
  for (int inject = 1; inject >= 0; inject--) {
    StageCheck sc = { { FALSE }, inject, inject ? 1e-5 : STAGE_TOL };
    qomni_code2wav_set_trace (fx.c2w, trace_check, &sc);
    g_assert_true (qomni_code2wav_decode (fx.c2w, codes, 40, &wav, &n, &error));
    qomni_code2wav_set_trace (fx.c2w, NULL, NULL);
    g_assert_no_error (error);
    for (int i = 0; i <= 6; i++)
      g_assert_true (sc.seen[i]);
    g_assert_cmpint (n, ==, 76245);
    if (inject)
      assert_close ("code2wav.wav (clamp of the reference decoder.6)", wav,
                    refs_f32 (fx.refs, "code2wav.wav", n), n, 1e-7);
    g_free (wav);
  }
  clock_t c0 = clock ();
  gint64 w0 = g_get_monotonic_time ();
  g_assert_true (qomni_code2wav_decode (fx.c2w, codes, 40, &wav, &n, &error));
  const double wall = (g_get_monotonic_time () - w0) / 1e6;
  const double cpu = (double) (clock () - c0) / CLOCKS_PER_SEC;
  g_assert_no_error (error);
  assert_close ("code2wav.wav", wav, refs_f32 (fx.refs, "code2wav.wav", n), n, WAV_TOL);
  g_printerr ("# code2wav: 40 frames (3.2 s of speech) in %.3f s wall, %.3f s CPU: %.3f s "
              "CPU per second of speech\n", wall, cpu, cpu / 3.2);
  g_free (wav);

  g_assert_true (qomni_code2wav_chunked_decode (fx.c2w, codes, 40, 16, 5, &wav, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 75135);
  const float *ref16 = refs_f32 (fx.refs, "code2wav.wav_chunked_16_5", n);
  assert_close ("code2wav.wav_chunked_16_5", wav, ref16, n, WAV_TOL);
  g_autofree float *chunked = g_memdup2 (wav, sizeof (float) * n);
  g_free (wav);

  /* streamed frame by frame: the same samples */
  QomniCode2WavStream *s = qomni_code2wav_stream_new (fx.c2w, 16, 5, &error);
  g_assert_no_error (error);
  g_autofree float *all = g_new (float, 75135);
  int done = 0;
  for (int f = 0; f <= 40; f++) {
    int frame[16];
    for (int q = 0; q < 16; q++)
      frame[q] = codes[q * 40 + (f < 40 ? f : 0)];
    float *part;
    int np;
    if (f < 40)
      g_assert_true (qomni_code2wav_stream_push (s, frame, &part, &np, &error));
    else
      g_assert_true (qomni_code2wav_stream_finish (s, &part, &np, &error));
    g_assert_no_error (error);
    g_assert_cmpint (done + np, <=, 75135);
    if (np)
      memcpy (all + done, part, sizeof (float) * np);
    done += np;
    g_free (part);
  }
  g_assert_cmpint (done, ==, 75135);
  assert_close ("streamed 16/5 vs chunked 16/5", all, chunked, done, 0.0);
  qomni_code2wav_stream_free (s);
}

static void
test_waveform (void)
{
  GError *error = NULL;
  /* the talker test checks that it reproduces these frames exactly */
  int n_ref;
  g_autofree int *frames = refs_ints (fx.refs, "generate.codec_frames", &n_ref);
  g_assert_cmpint (n_ref, ==, 16 * 19);
  const int n_talker_frames = 19;
  float *wav;
  int n;
  clock_t c0 = clock ();
  g_assert_true (qomni_code2wav_chunked_decode (fx.c2w, frames, n_talker_frames, 300, 25,
                                                &wav, &n, &error));
  const double cpu = (double) (clock () - c0) / CLOCKS_PER_SEC;
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 35925);
  assert_close ("generate.wav_24k", wav, refs_f32 (fx.refs, "generate.wav_24k", n), n, WAV_TOL);
  g_printerr ("# code2wav: %d frames in %.3f s CPU: %.3f s CPU per second of speech\n",
              n_talker_frames, cpu, cpu / (n_talker_frames * 0.08));
  g_free (wav);
}

static void
test_bad_input (void)
{
  GError *error = NULL;
  int n_codes;
  g_autofree int *codes = refs_ints (fx.refs, "code2wav.codes", &n_codes);
  float *wav = (float *) 1;
  int n = -1;
  /* a code outside the codebook */
  codes[3 * 40 + 7] = 2048;
  g_assert_false (qomni_code2wav_decode (fx.c2w, codes, 40, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (wav);
  g_assert_false (qomni_code2wav_chunked_decode (fx.c2w, codes, 40, 16, 5, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  codes[3 * 40 + 7] = -1;
  QomniCode2WavStream *s = qomni_code2wav_stream_new (fx.c2w, 4, 2, &error);
  int frame[16] = { 0 };
  frame[15] = 99999;
  g_assert_false (qomni_code2wav_stream_push (s, frame, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_cmpint (qomni_code2wav_stream_pending (s), ==, 0);
  /* finishing an empty stream is fine and yields nothing */
  g_assert_true (qomni_code2wav_stream_finish (s, &wav, &n, &error));
  g_assert_null (wav);
  g_assert_cmpint (n, ==, 0);
  qomni_code2wav_stream_free (s);
  /* zero frames: an error for a single call, an empty waveform when chunked */
  g_assert_false (qomni_code2wav_decode (fx.c2w, codes, 0, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_true (qomni_code2wav_chunked_decode (fx.c2w, codes, 0, 16, 5, &wav, &n, &error));
  g_assert_null (wav);
  g_assert_cmpint (n, ==, 0);
  g_assert_false (qomni_code2wav_chunked_decode (fx.c2w, codes, 40, 0, 5, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  /* talker: no assistant header, unknown speaker, step before start */
  QomniTalker *t = qomni_talker_new (fx.w, fx.cfg, 128, &error);
  g_assert_no_error (error);
  int out[16];
  g_assert_cmpint (qomni_talker_step (t, out, &error), ==, QOMNI_TALKER_ERROR);
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  QomniTalkerOptions opt;
  reference_options (&opt);
  g_assert_false (qomni_talker_start (t, fx.ids, fx.n - 3, fx.embed, fx.hidden, NULL, 0, &opt,
                                      &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (qomni_talker_start (t, fx.ids, fx.n, fx.embed, NULL, NULL, 0, &opt, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  opt.speaker_codec_id = 100000;
  g_assert_false (qomni_talker_start (t, fx.ids, fx.n, fx.embed, fx.hidden, NULL, 0, &opt,
                                      &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* the thinker said nothing: no frames, no crash */
  reference_options (&opt);
  g_assert_true (qomni_talker_start (t, fx.ids, fx.n, fx.embed, fx.hidden, NULL, 0, &opt,
                                     &error));
  qomni_talker_end_text (t);
  g_assert_cmpint (qomni_talker_step (t, out, &error), ==, QOMNI_TALKER_DONE);
  /* a context that fills up ends the utterance instead of failing */
  opt.max_frames = 0;
  g_assert_true (qomni_talker_start (t, fx.ids, fx.n, fx.embed, fx.hidden, NULL, 0, &opt,
                                     &error));
  qomni_talker_push_text (t, fx.embed + (gsize) fx.n * fx.Ht);
  qomni_talker_end_text (t);
  int F = 0;
  QomniTalkerStatus st;
  while ((st = qomni_talker_step (t, out, &error)) == QOMNI_TALKER_FRAME)
    F++;
  g_assert_no_error (error);
  g_assert_cmpint (st, ==, QOMNI_TALKER_DONE);
  g_assert_cmpint (F, <=, 128 - 63 + 1);
  qomni_talker_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fixture_load ();
  g_test_add_func ("/speech/talker", test_talker);
  g_test_add_data_func ("/speech/talker-streaming/greedy", NULL, test_talker_streaming);
  g_test_add_data_func ("/speech/talker-streaming/sampled", GINT_TO_POINTER (1),
                        test_talker_streaming);
  g_test_add_func ("/speech/code2wav", test_code2wav);
  g_test_add_func ("/speech/waveform", test_waveform);
  g_test_add_func ("/speech/bad-input", test_bad_input);
  int rc = g_test_run ();
  qomni_code2wav_free (fx.c2w);
  g_free (fx.embed);
  g_free (fx.hidden);
  g_free (fx.ids);
  qomni_config_free (fx.cfg);
  qomni_weights_free (fx.refs);
  qomni_weights_free (fx.w);
  return rc;
}
