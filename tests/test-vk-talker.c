/* The talker and the code predictor on Vulkan, on the tiny fixture (float32 reference):
 *  - through the common QomniTalker calls, greedy as the reference ran: the prompt and step
 *    input rows within 1e-4 normwise relative error of generate.talker_prefill_embeds /
 *    talker_step_embeds, and generate.codec_frames exactly;
 *  - sampled with the reference's defaults and a seed: the same frames as the CPU talker,
 *    with the code predictor's picks on the GPU (sample_pick, counted by the profiler) and
 *    with its logits read back to the CPU's sampler (QOMNI_GPU_SAMPLING=0); the GPU's
 *    probabilities may differ from expf's by an ulp, which changes a pick only for a draw
 *    within ~1e-8 of a cumulative boundary (test-vk-ops counts those; none here);
 *  - the decoder stacks alone against decoder.c: the talker's (MoE + sigmoid-gated shared
 *    expert, M-RoPE) and the code predictor's (dense SwiGLU, 1-D RoPE) final-normed hidden
 *    states over a prompt and two decode rows, NMSE ≤ 1e-9;
 *  - `qomni generate --device vulkan --speak --print-codes`: the frames of the CPU run.
 * Exits 77 (meson SKIP) where no Vulkan device exists. */
#include "refs.h"
#include "decoder.h"
#include "error.h"
#include "sampler.h"
#include "talker.h"
#include "thinker.h"
#include "thinker-vk.h"
#include "vk-device.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define TOL 1e-4
#define N_GEN 8

static RefsTiny fx;
static QomniVk *vk;
static int *ids, n_ids, Ht, n_answer;
static float *embed, *hidden;   /* thinker hs[0] of prompt + answer, hs[accept] of the prompt */
static int failures;

typedef struct {
  float *dst;
  int layer, n, H;
} Capture;

static void
capture_hook (int layer, float *h, int row0, int n, gpointer user)
{
  Capture *cap = user;
  if (layer == cap->layer && row0 + n <= cap->n)
    memcpy (cap->dst + (gsize) row0 * cap->H, h, sizeof (float) * (gsize) n * cap->H);
}

/* The thinker on the CPU as the reference ran it (greedy, 8 tokens): the talker's inputs. */
static void
run_thinker (void)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int V = qomni_thinker_vocab_size (t), n = n_ids;
  Ht = qomni_thinker_hidden_size (t);
  n_answer = N_GEN - 1;
  embed = g_new (float, (gsize) (n + n_answer) * Ht);
  hidden = g_new (float, (gsize) n * Ht);
  const float *audio = refs_f32 (fx.refs, "audio.embeds", -1);
  qomni_thinker_embed (t, ids, n, embed);
  g_assert_true (qomni_thinker_scatter (t, ids, n, fx.cfg->thinker.audio_token_id, audio, 43,
                                        embed, &error));
  Capture cap = { hidden, fx.cfg->talker.accept_hidden_layer - 1, n, Ht };
  qomni_thinker_set_layer_hook (t, capture_hook, &cap);
  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill (t, ids, n, audio, 43, NULL, 0, logits, &error));
  qomni_thinker_set_layer_hook (t, NULL, NULL);
  QomniSampler *s = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  for (int i = 0; i < n_answer; i++) {
    int id = qomni_sampler_sample (s, logits, V, NULL, 0, 0, 0, -1);
    qomni_thinker_embed (t, &id, 1, embed + (gsize) (n + i) * Ht);
    g_assert_true (qomni_thinker_decode (t, id, logits, &error));
  }
  qomni_sampler_free (s);
  qomni_thinker_free (t);
}

static void
input_hook (const float *rows, int n, int H, gpointer user)
{
  g_array_append_vals (user, rows, (guint) n * H);
}

/* Frames [G, F] codebook-major of a whole-answer run; inputs (when not NULL) gets every
 * row fed to the talker decoder. */
static int *
talk (QomniVk *dev, const QomniTalkerOptions *opt, GArray *inputs, int *F)
{
  GError *error = NULL;
  QomniTalker *t = qomni_talker_new_on (fx.w, fx.cfg, 256, dev, &error);
  g_assert_no_error (error);
  g_assert_true (qomni_talker_on_gpu (t) == (dev != NULL));
  if (inputs)
    qomni_talker_set_input_hook (t, input_hook, inputs);
  int *codes = NULL;
  g_assert_true (qomni_talker_generate (t, ids, n_ids, embed, hidden, n_answer, NULL, 0, opt,
                                        &codes, F, &error));
  g_assert_no_error (error);
  double ts, cps;
  qomni_talker_timing (t, &ts, &cps);
  printf ("talker on the %s: %d frames, talker %.3f s, code predictor %.3f s\n",
          dev ? "GPU" : "CPU", *F, ts, cps);
  qomni_talker_free (t);
  return codes;
}

static void
test_reference (void)
{
  const int H = fx.cfg->talker.text.hidden_size, G = fx.cfg->talker.num_code_groups;
  QomniTalkerOptions opt;
  qomni_talker_options_init (&opt, fx.cfg);
  qomni_talker_options_greedy (&opt);
  opt.speaker_codec_id = qomni_config_speaker_id (fx.cfg, "ethan");
  opt.max_frames = 20;   /* the reference's 20 talker steps: 19 complete frames */
  GArray *in = g_array_new (FALSE, FALSE, sizeof (float));
  int F = 0;
  g_autofree int *codes = talk (vk, &opt, in, &F);
  const float *pre = refs_f32 (fx.refs, "generate.talker_prefill_embeds", 63 * H);
  const float *steps = refs_f32 (fx.refs, "generate.talker_step_embeds", 19 * H);
  g_assert_cmpuint (in->len, >=, (63 + 19) * H);
  const float *got = (const float *) in->data;
  const double e_pre = rel_error (got, pre, 63 * H);
  const double e_steps = rel_error (got + 63 * H, steps, 19 * H);
  printf ("talker inputs vs reference: prompt %.3g, steps %.3g (tolerance %.0e)\n", e_pre,
          e_steps, TOL);
  failures += e_pre > TOL || e_steps > TOL;
  int n_ref;
  g_autofree int *ref = refs_ints (fx.refs, "generate.codec_frames", &n_ref);
  g_assert_cmpint (n_ref, ==, G * 19);
  int wrong = 0;
  for (int q = 0; q < G; q++)
    for (int f = 0; f < 19 && f < F; f++)
      wrong += codes[q * F + f] != ref[q * 19 + f];
  printf ("codec frames vs reference: %d frames, %d codes differ\n", F, wrong);
  failures += F < 19 || wrong > 0;
  g_array_free (in, TRUE);
}

/* Codes that differ between two runs, or -1 when their frame counts do. */
static int
codes_differ (const int *a, int Fa, const int *b, int Fb, int G)
{
  int wrong = Fa == Fb ? 0 : -1;
  for (int i = 0; wrong >= 0 && i < G * Fb; i++)
    wrong += a[i] != b[i];
  return wrong;
}

static void
test_sampled (void)
{
  const int G = fx.cfg->talker.num_code_groups;
  QomniTalkerOptions opt;
  qomni_talker_options_init (&opt, fx.cfg);
  opt.talker.seed = 7;
  opt.max_frames = 8;
  int Fg = 0, Fc = 0, Fr = 0;
  /* the picks on the GPU; the profiler counts the sample_pick dispatches */
  qomni_vk_profile_enable (vk, TRUE);
  qomni_vk_profile_reset (vk);
  g_autofree int *gpu = talk (vk, &opt, NULL, &Fg);
  const guint64 picks = qomni_vk_profile_calls (vk, QOMNI_VK_PIPE_SAMPLE_PICK);
  const guint64 argmaxes = qomni_vk_profile_calls (vk, QOMNI_VK_PIPE_ARGMAX);
  /* the fallback: each pass's logits to the CPU's sampler */
  qomni_vk_profile_reset (vk);
  g_setenv ("QOMNI_GPU_SAMPLING", "0", TRUE);
  g_autofree int *readback = talk (vk, &opt, NULL, &Fr);
  g_unsetenv ("QOMNI_GPU_SAMPLING");
  const guint64 picks_off = qomni_vk_profile_calls (vk, QOMNI_VK_PIPE_SAMPLE_PICK);
  qomni_vk_profile_enable (vk, FALSE);
  g_autofree int *cpu = talk (NULL, &opt, NULL, &Fc);
  const int wrong = codes_differ (gpu, Fg, cpu, Fc, G);
  const int wrong_rb = codes_differ (readback, Fr, cpu, Fc, G);
  printf ("sampled frames, GPU vs CPU: %d and %d frames, %d codes differ (GPU picks: %"
          G_GUINT64_FORMAT " sample_pick dispatches, %" G_GUINT64_FORMAT " argmax)\n", Fg, Fc,
          wrong, picks, argmaxes);
  printf ("sampled frames, CPU sampler on GPU logits vs CPU: %d frames, %d codes differ "
          "(%" G_GUINT64_FORMAT " sample_pick dispatches)\n", Fr, wrong_rb, picks_off);
  failures += Fg != Fc || wrong != 0 || Fc == 0 || Fr != Fc || wrong_rb != 0 || picks_off;
  if (qomni_vk_has_float64 (vk)) {
    /* every frame's G − 1 passes picked on the GPU (when the device has timestamps) */
    const gboolean timed = picks + argmaxes > 0;
    if (!timed)
      printf ("note: %s has no timestamps: the sample_pick dispatches are not counted\n",
              qomni_vk_device_name (vk));
    failures += timed && picks != (guint64) Fg * (G - 1);
  }
}

/* A stack on both: a prompt of n rows then two single rows, random inputs of unit scale. */
static void
test_stack (const char *what, const QomniTextConfig *tc, const QomniVkStackNames *names, int n)
{
  GError *error = NULL;
  const int H = tc->hidden_size, total = n + 2;
  QomniDecoder *cpu = qomni_decoder_new (fx.w, tc, names->prefix, 64, 64, &error);
  g_assert_no_error (error);
  QomniVkDecoder *gpu = qomni_vk_decoder_new (vk, fx.w, tc, names, QOMNI_DTYPE_BF16, 64, 64,
                                              &error);
  g_assert_no_error (error);
  GRand *rng = g_rand_new_with_seed (5);
  g_autofree float *x = g_new (float, (gsize) total * H);
  g_autofree float *ref = g_new (float, (gsize) total * H);
  g_autofree float *got = g_new (float, (gsize) total * H);
  for (int i = 0; i < total * H; i++)
    x[i] = ref[i] = (float) g_rand_double_range (rng, -1, 1);
  g_autofree int *pos = g_new (int, 3 * total);
  for (int i = 0; i < total; i++) {
    /* distinct axes where there are any, to exercise the M-RoPE sections */
    pos[i] = i;
    pos[total + i] = i / 2;
    pos[2 * total + i] = i / 3;
  }
  int spans[3][2] = { { 0, n }, { n, 1 }, { n + 1, 1 } };
  for (int s = 0; s < 3; s++) {
    const int r0 = spans[s][0], len = spans[s][1];
    g_autofree int *p = g_new (int, 3 * len);
    for (int a = 0; a < 3; a++)
      memcpy (p + a * len, pos + a * total + r0, sizeof (int) * len);
    g_assert_true (qomni_decoder_forward (cpu, ref + (gsize) r0 * H, len, p, NULL, NULL,
                                          &error));
    g_assert_true (qomni_vk_decoder_forward (gpu, x + (gsize) r0 * H, len, p, NULL,
                                             got + (gsize) r0 * H, NULL, NULL, &error));
    g_assert_no_error (error);
  }
  const double e = nmse (got, ref, (gsize) total * H);
  printf ("%s stack, %d prompt rows + 2 decode rows, GPU vs CPU hidden states: NMSE %.3g "
          "(bound 1e-9)\n", what, n, e);
  failures += !(e <= 1e-9);
  g_rand_free (rng);
  qomni_vk_decoder_free (gpu);
  qomni_decoder_free (cpu);
}

/* The "codes:" lines of a --print-codes run, as one string per frame. */
static GPtrArray *
cli_frames (const char *device, const char *wav)
{
  g_autofree char *model = refs_path ("tiny-omni");
  const char *argv[] = { g_getenv ("QOMNI_BIN"), "generate", "--model", model, "--prompt",
                         "What is this?", "--greedy", "--max-tokens", "6", "--speak", wav,
                         "--max-frames", "6", "--print-codes", "--device", device, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  GError *error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("qomni generate --device %s failed: %s", device, err);
  GPtrArray *frames = g_ptr_array_new_with_free_func (g_free);
  for (const char *p = out; (p = strstr (p, "codes:")); p++) {
    const char *end = strchr (p, '\n');
    g_ptr_array_add (frames, g_strndup (p, end ? (gsize) (end - p) : strlen (p)));
  }
  return frames;
}

static void
test_cli (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qomni-vk-talker-XXXXXX", NULL);
  g_autofree char *wav = g_build_filename (dir, "answer.wav", NULL);
  GPtrArray *gpu = cli_frames ("vulkan", wav);
  GPtrArray *cpu = cli_frames ("cpu", wav);
  int differ = 0;
  for (guint i = 0; i < MIN (gpu->len, cpu->len); i++)
    differ += strcmp (gpu->pdata[i], cpu->pdata[i]) != 0;
  printf ("qomni generate --speak: %u frames on vulkan, %u on cpu, %d differ\n", gpu->len,
          cpu->len, differ);
  failures += gpu->len != 6 || cpu->len != 6 || differ;
  g_unlink (wav);
  g_rmdir (dir);
  g_ptr_array_free (gpu, TRUE);
  g_ptr_array_free (cpu, TRUE);
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  GError *error = NULL;
  vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  refs_tiny_load (&fx);
  ids = refs_ints (fx.refs, "thinker.prompt_ids", &n_ids);
  run_thinker ();

  const QomniVkStackNames talker = { .prefix = "talker.model" };
  const QomniVkStackNames cp = { .prefix = "talker.code_predictor.model" };
  test_stack ("talker", &fx.cfg->talker.text, &talker, 9);
  /* a prompt short enough for the decode kernels (fused norms, split attention) */
  test_stack ("talker", &fx.cfg->talker.text, &talker, 3);
  test_stack ("code predictor", &fx.cfg->talker.code_predictor, &cp, 2);
  test_reference ();
  test_sampled ();
  test_cli ();

  printf ("%s: %d failures\n", failures ? "FAIL" : "PASS", failures);
  g_free (embed);
  g_free (hidden);
  g_free (ids);
  refs_tiny_clear (&fx);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
