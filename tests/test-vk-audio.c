/* The audio encoder on the Vulkan path (tiny-omni fixture, float32 weights).
 *
 * Against transformers: audio.embeds from the reference's own mel features within 1e-4
 * normwise relative error (max|a − b| / max|b|), the CPU test's tolerance. Against the CPU
 * encoder, which matches the reference: NMSE ≤ 1e-9 (the GPU differs from it only in
 * summation order and in erf by A&S 7.1.26, |error| < 1.5e-7) for lengths of one frame,
 * part of a chunk, exactly a chunk, one frame more, several windows, and more windows than
 * one pass of the layers takes (WINDOWS_PER_PASS in audio-encoder-vk.c), and for random
 * checkpoints with bf16 and Q8_0 matrices (Q8_0: NMSE ≤ 1e-3, the CPU quantizes activations
 * to int8). A second encoder of the store shares the weights (it adds at least the
 * tower's bytes less than one of another store) and gives the same rows bit for bit, also
 * after the first is freed. Bad input gives an error. Exit 77 without a device. */
#include "refs.h"
#include "audio-encoder.h"
#include "checkpoint.h"
#include "config.h"
#include "random-weights.h"
#include "error.h"
#include "vk-device.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define REL_TOL 1e-4
#define NMSE_TOL 1e-9
#define Q8_ACT_TOL 1e-3   /* GPU f32 activations vs the CPU's int8 ones */
#define N_MELS 128
#define T_REF 330
#define A_REF 43

static int failures;

static void
report (const char *what, double e, double tol, const char *kind)
{
  gboolean ok = e <= tol;
  failures += !ok;
  printf ("%s %-40s %s %.2e (max %.0e)\n", ok ? "ok  " : "FAIL", what, kind, e, tol);
}

static void
sum_tower_bytes (const QomniTensor *t, gpointer user)
{
  if (g_str_has_prefix (t->name, "thinker.audio_tower."))
    *(uint64_t *) user += t->nbytes;
}

static void
trace_nop (const char *name, const float *data, const int64_t *shape, int ndim, gpointer user)
{
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  RefsTiny fx;
  refs_tiny_load (&fx);
  QomniAudioEncoder *gpu = qomni_audio_encoder_new_on (fx.w, fx.cfg, vk, &error);
  g_assert_no_error (error);
  g_assert_true (qomni_audio_encoder_on_gpu (gpu));
  QomniAudioEncoder *cpu = qomni_audio_encoder_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
  g_assert_false (qomni_audio_encoder_on_gpu (cpu));
  const int D = qomni_audio_encoder_output_dim (gpu);
  g_assert_cmpint (qomni_audio_encoder_n_tokens (gpu, T_REF), ==, A_REF);

  /* the reference: 330 frames, 4 chunks (the last zero-padded from 30), 2 windows */
  const float *feat = refs_f32 (fx.refs, "audio.input_features", N_MELS * T_REF);
  const float *ref = refs_f32 (fx.refs, "audio.embeds", (int64_t) A_REF * D);
  g_autofree float *out = g_new (float, (gsize) A_REF * D);
  g_assert_true (qomni_audio_encoder_encode (gpu, feat, T_REF, out, &error));
  g_assert_no_error (error);
  report ("audio.embeds vs reference", rel_error (out, ref, (int64_t) A_REF * D), REL_TOL,
          "rel");

  /* lengths against the CPU, on random features of the mel's range */
  GRand *rng = g_rand_new_with_seed (77);
  const int lengths[] = { 1, 7, 99, 100, 101, 250, 330, 3333 };
  for (guint i = 0; i < G_N_ELEMENTS (lengths); i++) {
    const int T = lengths[i], A = qomni_audio_encoder_n_tokens (cpu, T);
    g_autofree float *f = g_new (float, (gsize) N_MELS * T);
    for (gsize j = 0; j < (gsize) N_MELS * T; j++)
      f[j] = (float) g_rand_double_range (rng, -1.5, 1.0);
    g_autofree float *a = g_new (float, (gsize) A * D), *b = g_new (float, (gsize) A * D);
    g_assert_true (qomni_audio_encoder_encode (cpu, f, T, a, &error));
    g_assert_true (qomni_audio_encoder_encode (gpu, f, T, b, &error));
    g_assert_no_error (error);
    char name[64];
    snprintf (name, sizeof name, "T=%d (%d tokens) vs CPU", T, A);
    report (name, nmse (b, a, (int64_t) A * D), NMSE_TOL, "nmse");
  }
  g_rand_free (rng);

  /* the stored dtypes the GPU takes as they are: random tiny-width checkpoints with bf16
   * and Q8_0 matrices (a quantized GGUF), GPU against CPU over the same weights */
  {
    g_autoptr (QomniConfig) tiny = qomni_config_preset ("tiny", &error);
    g_assert_no_error (error);
    g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (tiny, QOMNI_PART_AUDIO);
    const QomniDType dts[] = { QOMNI_DTYPE_BF16, QOMNI_DTYPE_Q8_0 };
    const int T = 250, A = qomni_audio_encoder_n_tokens (cpu, T);
    g_autofree float *f = g_new (float, (gsize) N_MELS * T);
    for (gsize j = 0; j < (gsize) N_MELS * T; j++)
      f[j] = (float) sin (0.37 * (double) j) - 0.25f;
    for (guint d = 0; d < G_N_ELEMENTS (dts); d++) {
      QomniWeights *rw = qomni_random_weights (specs, dts[d], 3, 0, &error);
      g_assert_no_error (error);
      QomniAudioEncoder *c = qomni_audio_encoder_new (rw, tiny, &error);
      QomniAudioEncoder *g = qomni_audio_encoder_new_on (rw, tiny, vk, &error);
      g_assert_no_error (error);
      g_autofree float *a = g_new (float, (gsize) A * D), *b = g_new (float, (gsize) A * D);
      g_assert_true (qomni_audio_encoder_encode (c, f, T, a, &error));
      g_assert_true (qomni_audio_encoder_encode (g, f, T, b, &error));
      g_assert_no_error (error);
      char name[64];
      snprintf (name, sizeof name, "%s matrices, T=%d vs CPU", qomni_dtype_info (dts[d])->name,
                T);
      /* Q8_0: the CPU quantizes each product's activations to int8 as well (llama.cpp's
       * scheme), the GPU keeps them f32: 1/254 relative rounding per element, NMSE of a
       * few 1e-4 through the stack (measured 1.7e-4) */
      report (name, nmse (b, a, (int64_t) A * D),
              dts[d] == QOMNI_DTYPE_Q8_0 ? Q8_ACT_TOL : NMSE_TOL, "nmse");
      qomni_audio_encoder_free (g);
      qomni_audio_encoder_free (c);
      qomni_weights_free (rw);
    }
  }

  /* a second encoder of the same store shares the first's weights: it adds less than an
   * encoder of another store (the same files opened again) by at least the store's
   * thinker.audio_tower bytes, and encodes bit for bit as the first, also once the first
   * is freed */
  {
    uint64_t tower = 0;
    qomni_weights_foreach (fx.w, sum_tower_bytes, &tower);
    QomniWeights *w2 = refs_open ("tiny-omni");
    uint64_t m = qomni_vk_allocated (vk);
    QomniAudioEncoder *same = qomni_audio_encoder_new_on (fx.w, fx.cfg, vk, &error);
    g_assert_no_error (error);
    const uint64_t g_same = qomni_vk_allocated (vk) - m;
    m = qomni_vk_allocated (vk);
    QomniAudioEncoder *other = qomni_audio_encoder_new_on (w2, fx.cfg, vk, &error);
    g_assert_no_error (error);
    const uint64_t g_other = qomni_vk_allocated (vk) - m;
    g_autofree float *a = g_new (float, (gsize) A_REF * D);
    g_autofree float *b = g_new (float, (gsize) A_REF * D);
    g_autofree float *c = g_new (float, (gsize) A_REF * D);
    g_assert_true (qomni_audio_encoder_encode (gpu, feat, T_REF, a, &error));
    g_assert_true (qomni_audio_encoder_encode (same, feat, T_REF, b, &error));
    qomni_audio_encoder_free (gpu);
    g_assert_true (qomni_audio_encoder_encode (same, feat, T_REF, c, &error));
    const size_t bytes = sizeof (float) * (size_t) A_REF * D;
    const gboolean equal = memcmp (a, b, bytes) == 0 && memcmp (a, c, bytes) == 0;
    const gboolean ok = g_other >= g_same + tower && equal;
    printf ("%s a second encoder of the store: +%" G_GUINT64_FORMAT " B, of another store +%"
            G_GUINT64_FORMAT " B (the tower: %" G_GUINT64_FORMAT " B); rows %s\n",
            ok ? "ok  " : "FAIL", g_same, g_other, tower, equal ? "equal" : "differ");
    failures += !ok;
    gpu = same;
    qomni_audio_encoder_free (other);
    qomni_weights_free (w2);
  }

  /* bad input: no frames, a NaN, tracing (the stages stay on the GPU) */
  g_autofree float *bad = g_memdup2 (feat, sizeof (float) * N_MELS * 10);
  gboolean ok = !qomni_audio_encoder_encode (gpu, bad, 0, out, &error)
                && g_error_matches (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  bad[5 * 10 + 3] = NAN;
  ok = ok && !qomni_audio_encoder_encode (gpu, bad, 10, out, &error)
       && g_error_matches (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  qomni_audio_encoder_set_trace (gpu, trace_nop, NULL);
  ok = ok && !qomni_audio_encoder_encode (gpu, feat, T_REF, out, &error)
       && g_error_matches (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  printf ("%s bad input refused with an error\n", ok ? "ok  " : "FAIL");
  failures += !ok;

  printf ("%s\n", failures ? "FAILED" : "all passed");
  qomni_audio_encoder_free (gpu);
  qomni_audio_encoder_free (cpu);
  refs_tiny_clear (&fx);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
