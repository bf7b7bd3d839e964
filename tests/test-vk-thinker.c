/* The thinker on the Vulkan path against transformers (tiny-omni fixture, float32 weights).
 * Layer outputs, final states and logits by NMSE ≤ 1e-9 (the CPU path is within 1e-4
 * normwise; the GPU differs from it only in summation order); the greedy tokens of
 * generate.sequences[68:76] exactly, sampled by the GPU's argmax. Prompt products run in
 * float32 for these checks; where the device has tensor cores (qomni_vk_has_coopmat) the
 * prompt runs again on them (fp16 operands) against the same references by NMSE ≤ 1e-5,
 * with the same first greedy token. Exit 77 without a device. */
#include "refs.h"
#include "config.h"
#include "error.h"
#include "positions.h"
#include "thinker.h"
#include "thinker-vk.h"

#include <stdio.h>
#include <string.h>

#define NMSE_TOL 1e-9
#define NMSE_TOL_COOPMAT 1e-5

static int failures;

static void
check_tol (const char *what, const float *a, const float *b, size_t n, double tol)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
    den += (double) b[i] * b[i];
  }
  double e = den > 0 ? num / den : num;
  gboolean ok = e <= tol;
  failures += !ok;
  printf ("%s %-36s nmse %.2e (max %.0e)\n", ok ? "ok  " : "FAIL", what, e, tol);
}

static void
check (const char *what, const float *a, const float *b, size_t n)
{
  check_tol (what, a, b, n, NMSE_TOL);
}

int
main (void)
{
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    return 77;
  }
  QomniWeights *w = refs_open ("tiny-omni");
  QomniWeights *refs = refs_open ("tiny-omni/refs.safetensors");
  g_autofree char *cfg_path = refs_path ("tiny-omni/config.json");
  QomniConfig *cfg = qomni_config_load (cfg_path, &error);
  g_assert_no_error (error);
  int n, n_seq;
  g_autofree int *ids = refs_ints (refs, "thinker.prompt_ids", &n);
  g_autofree int *seq = refs_ints (refs, "generate.sequences", &n_seq);
  const QomniTextConfig *tc = &cfg->thinker.text;
  const int H = tc->hidden_size, V = tc->vocab_size, L = tc->num_hidden_layers;

  /* embeddings, audio rows and 3-D positions come from the CPU thinker's helpers */
  QomniThinker *cpu = qomni_thinker_new (w, cfg, 128, &error);
  g_assert_no_error (error);
  g_autofree float *x = g_new (float, (size_t) n * H);
  qomni_thinker_embed (cpu, ids, n, x);
  g_assert_true (qomni_thinker_scatter (cpu, ids, n, cfg->thinker.audio_token_id,
                                        refs_f32 (refs, "audio.embeds", -1), 43, x, &error));
  g_autofree int *pos = g_new (int, 3 * n);
  int next_pos;
  g_assert_true (qomni_positions_build (&cfg->thinker, ids, n, NULL, 0, 0, pos, &next_pos,
                                        &error));

  QomniVkThinker *g = qomni_vk_thinker_new (vk, w, tc, QOMNI_DTYPE_F32, 128, 128, &error);
  g_assert_no_error (error);
  const gboolean has_cm = qomni_vk_thinker_set_coopmat (g, TRUE);
  qomni_vk_thinker_set_coopmat (g, FALSE);
  g_autofree float *layers = g_new (float, (size_t) L * n * H);
  g_autofree float *hidden = g_new (float, (size_t) n * H);
  g_autofree float *logits = g_new (float, V);
  int next = -1;
  qomni_vk_thinker_forward (g, x, n, pos, layers, hidden, logits, &next, &error);
  g_assert_no_error (error);
  for (int l = 0; l < L; l++) {
    g_autofree char *name = g_strdup_printf ("trace.thinker.model.layers.%d", l);
    check (name, layers + (size_t) l * n * H, refs_f32 (refs, name, (int64_t) n * H),
           (size_t) n * H);
  }
  check ("norm", hidden, refs_f32 (refs, "trace.thinker.model.norm", (int64_t) n * H),
         (size_t) n * H);
  check ("logits[last]", logits, refs_f32 (refs, "thinker.prefill_logits_last", V), V);

  int got[8];
  got[0] = next;
  for (int i = 1; i < 8; i++) {
    g_assert_true (qomni_vk_thinker_decode (g, got[i - 1], next_pos++, NULL, &got[i], &error));
    g_assert_no_error (error);
  }
  int agree = 0;
  for (int i = 0; i < 8; i++)
    agree += got[i] == seq[n + i];
  printf ("%s greedy tokens: %d of 8 agree with generate.sequences[68:76]\n",
          agree == 8 ? "ok  " : "FAIL", agree);
  failures += agree != 8;

  /* the prompt again on tensor cores */
  qomni_vk_thinker_reset (g);
  if (has_cm) {
    qomni_vk_thinker_set_coopmat (g, TRUE);
    qomni_vk_thinker_forward (g, x, n, pos, layers, hidden, logits, &next, &error);
    g_assert_no_error (error);
    g_autofree char *last = g_strdup_printf ("trace.thinker.model.layers.%d", L - 1);
    check_tol ("coopmat: last layer", layers + (size_t) (L - 1) * n * H,
               refs_f32 (refs, last, (int64_t) n * H), (size_t) n * H, NMSE_TOL_COOPMAT);
    check_tol ("coopmat: norm", hidden,
               refs_f32 (refs, "trace.thinker.model.norm", (int64_t) n * H), (size_t) n * H,
               NMSE_TOL_COOPMAT);
    check_tol ("coopmat: logits[last]", logits,
               refs_f32 (refs, "thinker.prefill_logits_last", V), V, NMSE_TOL_COOPMAT);
    printf ("%s coopmat: first greedy token %d (want %d)\n", next == seq[n] ? "ok  " : "FAIL",
            next, seq[n]);
    failures += next != seq[n];
  } else {
    printf ("not run: the prompt on tensor cores (no VK_NV_cooperative_matrix 16x8x16 fp16)\n");
  }
  printf ("%s\n", failures ? "FAILED" : "all passed");
  qomni_vk_thinker_free (g);
  qomni_thinker_free (cpu);
  qomni_config_free (cfg);
  qomni_weights_free (refs);
  qomni_weights_free (w);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
