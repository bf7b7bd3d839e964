/* The replayed decode step (recorded once, only its input buffer written per token) against
 * the step recorded anew every token: two decoders with the same weights decode the same
 * tokens in lockstep, one replaying (qomni_vk_decoder_set_replay TRUE) and one not, and
 * every token's logits must be bit-identical (memcmp; tolerance zero) and their greedy
 * tokens equal. The stack is the tiny fixture thinker's shape (MoE, q/k norms, M-RoPE) with
 * random Q8_0 weights and a 512-token vocabulary: the fixture's 152064-row head takes
 * seconds per token on lavapipe, and this test compares two GPU paths with each other.
 * Covered: the first 32 positions (one attention chunk, where the replaying decoder still
 * records), then up to position 100 (the live chunk count grows by one every 32 keys while
 * the recorded grid stays at the whole cache's), steps that ask for the token only and
 * steps that ask for logits too (two recorded commands), and after a reset a 70-row prompt
 * followed by replayed steps (the recorded commands outlive a reset). The span change past
 * 4096 keys is covered op by op in test-vk-ops (attn-split dyn m=5000): a prompt that long
 * takes minutes on lavapipe. Exit 77 without a device. */
#include "refs.h"
#include "config.h"
#include "error.h"
#include "thinker-vk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_CTX 400

static int failures;

/* One step on both decoders; logits compared when want_logits, tokens always. */
static void
step (QomniVkThinker *a, QomniVkThinker *b, int id, int V, gboolean want_logits,
      float *la, float *lb, int *next)
{
  GError *error = NULL;
  const int pos = qomni_vk_thinker_n_past (a);
  int na = -1, nb = -2;
  g_assert_true (qomni_vk_thinker_decode (a, id, pos, want_logits ? la : NULL, &na, &error));
  g_assert_no_error (error);
  g_assert_true (qomni_vk_thinker_decode (b, id, pos, want_logits ? lb : NULL, &nb, &error));
  g_assert_no_error (error);
  gboolean ok = na == nb;
  if (want_logits)
    ok &= memcmp (la, lb, sizeof (float) * V) == 0;
  if (!ok) {
    double mx = 0;
    for (int i = 0; want_logits && i < V; i++)
      mx = MAX (mx, fabs ((double) la[i] - lb[i]));
    printf ("FAIL position %d: replayed token %d, recorded %d, max |Δlogit| %.3g\n", pos, na,
            nb, mx);
    failures++;
  }
  *next = na;
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
  g_autofree char *cfg_path = refs_path ("tiny-omni/config.json");
  QomniConfig *cfg = qomni_config_load (cfg_path, &error);
  g_assert_no_error (error);
  QomniTextConfig tc = cfg->thinker.text;
  tc.vocab_size = 512;
  const int H = tc.hidden_size, V = tc.vocab_size;
  const QomniVkStackNames names = { .prefix = "thinker.model", .embed = "embed", .head = "head" };
  QomniVkThinker *a = qomni_vk_decoder_new (vk, NULL, &tc, &names, QOMNI_DTYPE_Q8_0, MAX_CTX,
                                            512, &error);
  g_assert_no_error (error);
  QomniVkThinker *b = qomni_vk_decoder_new (vk, NULL, &tc, &names, QOMNI_DTYPE_Q8_0, MAX_CTX,
                                            512, &error);
  g_assert_no_error (error);
  qomni_vk_decoder_set_replay (a, TRUE);
  qomni_vk_decoder_set_replay (b, FALSE);
  g_autofree float *la = g_new (float, V), *lb = g_new (float, V);

  /* from an empty cache: greedy tokens, every fifth step asking for the token only */
  int id = 97, steps = 0;
  for (int i = 0; i < 100; i++, steps++)
    step (a, b, id, V, i % 5 != 4, la, lb, &id);
  const int replayed = qomni_vk_decoder_replayed (a);
  printf ("%s positions 0–99: %d of %d steps replayed (want %d), %d recorded\n",
          replayed == 100 - 32 && qomni_vk_decoder_replayed (b) == 0 ? "ok  " : "FAIL",
          replayed, steps, 100 - 32, qomni_vk_decoder_replayed (b));
  failures += replayed != 100 - 32 || qomni_vk_decoder_replayed (b) != 0;

  /* after a reset: a prompt (random rows), then replayed steps */
  const int n = 70;
  g_autofree float *x = g_new (float, (size_t) n * H);
  g_autofree int *pos = g_new (int, 3 * n);
  GRand *rng = g_rand_new_with_seed (7);
  for (size_t i = 0; i < (size_t) n * H; i++)
    x[i] = (float) g_rand_double_range (rng, -1, 1);
  for (int i = 0; i < 3 * n; i++)
    pos[i] = i % n;
  g_rand_free (rng);
  qomni_vk_thinker_reset (a);
  qomni_vk_thinker_reset (b);
  g_assert_true (qomni_vk_thinker_forward (a, x, n, pos, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  g_assert_true (qomni_vk_thinker_forward (b, x, n, pos, NULL, NULL, NULL, &id, &error));
  g_assert_no_error (error);
  const int before = qomni_vk_decoder_replayed (a);
  for (int i = 0; i < 12; i++)
    step (a, b, id, V, i != 6, la, lb, &id);
  const int r2 = qomni_vk_decoder_replayed (a) - before;
  printf ("%s positions %d–%d: %d of 12 steps replayed\n", r2 == 12 ? "ok  " : "FAIL", n,
          n + 11, r2);
  failures += r2 != 12;

  printf ("%s\n", failures ? "FAILED" : "all passed: logits bit-identical at every step");
  qomni_vk_thinker_free (a);
  qomni_vk_thinker_free (b);
  qomni_config_free (cfg);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
