/* The thinker on Vulkan through the common QomniThinker calls (what qomni generate
 * --device vulkan and the elements use), on the tiny fixture: the reference's 8 greedy
 * tokens, with and without layer observers; and the talker's states (hs[0] and
 * hs[accept_hidden_layer] of every prompt position) equal to the CPU's within NMSE 1e-10.
 * The prompt's products run in float32 (QOMNI_VK_COOPMAT=0): test-vk-thinker checks the
 * tensor-core prompt at its own bound. Exits 77 (meson SKIP) where no Vulkan device exists. */
#include "refs.h"
#include "error.h"
#include "sampler.h"
#include "thinker.h"
#include "vk-device.h"

#include <stdio.h>
#include <string.h>

static RefsTiny fx;
static int *ids, n_ids;

typedef struct {
  GArray *embed, *hidden;
} States;

static void
capture (const float *embed, const float *hidden, int n, gpointer user)
{
  States *s = user;
  const int H = fx.cfg->thinker.text.hidden_size;
  g_array_append_vals (s->embed, embed, (guint) n * H);
  g_array_append_vals (s->hidden, hidden, (guint) n * H);
}

/* Prefill + 8 greedy tokens; states captured when s is not NULL. */
static void
run (QomniVk *vk, States *s, int *out)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new_on (fx.w, fx.cfg, 128, vk, &error);
  g_assert_no_error (error);
  g_assert_true (qomni_thinker_on_gpu (t) == (vk != NULL));
  if (s)
    qomni_thinker_set_state_fn (t, fx.cfg->talker.accept_hidden_layer, capture, s);
  const int V = qomni_thinker_vocab_size (t);
  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill (t, ids, n_ids, refs_f32 (fx.refs, "audio.embeds", -1),
                                        43, NULL, 0, logits, &error));
  g_assert_no_error (error);
  QomniSampler *smp = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  for (int i = 0; i < 8; i++) {
    out[i] = qomni_sampler_sample (smp, logits, V, NULL, 0, 0, 0, -1);
    if (i < 7)
      g_assert_true (qomni_thinker_decode (t, out[i], logits, &error));
  }
  qomni_sampler_free (smp);
  qomni_thinker_free (t);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  g_setenv ("QOMNI_VK_COOPMAT", "0", TRUE);
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  refs_tiny_load (&fx);
  ids = refs_ints (fx.refs, "thinker.prompt_ids", &n_ids);
  int n_seq;
  g_autofree int *seq = refs_ints (fx.refs, "generate.sequences", &n_seq);

  int plain[8], observed[8], cpu[8];
  run (vk, NULL, plain);
  const int H = fx.cfg->thinker.text.hidden_size;
  States gs = { g_array_new (FALSE, FALSE, sizeof (float)), g_array_new (FALSE, FALSE, sizeof (float)) };
  States cs = { g_array_new (FALSE, FALSE, sizeof (float)), g_array_new (FALSE, FALSE, sizeof (float)) };
  run (vk, &gs, observed);
  run (NULL, &cs, cpu);
  int failures = 0;
  for (int i = 0; i < 8; i++) {
    if (plain[i] != seq[n_ids + i] || observed[i] != seq[n_ids + i] || cpu[i] != seq[n_ids + i]) {
      printf ("token %d: vulkan %d, vulkan observed %d, cpu %d, reference %d\n", i, plain[i],
              observed[i], cpu[i], seq[n_ids + i]);
      failures++;
    }
  }
  /* the prompt and the 7 fed tokens, on both */
  g_assert_cmpuint (gs.embed->len, ==, (guint) (n_ids + 7) * H);
  g_assert_cmpuint (cs.embed->len, ==, gs.embed->len);
  const double e_embed = nmse ((float *) gs.embed->data, (float *) cs.embed->data, gs.embed->len);
  const double e_hidden = nmse ((float *) gs.hidden->data, (float *) cs.hidden->data, gs.hidden->len);
  printf ("states vulkan vs cpu: hs[0] NMSE %.3g, hs[accept] NMSE %.3g (bound 1e-10)\n", e_embed,
          e_hidden);
  failures += e_embed > 1e-10 || e_hidden > 1e-10;
  printf ("%s: %d failures\n", failures ? "FAIL" : "PASS", failures);
  g_array_free (gs.embed, TRUE);
  g_array_free (gs.hidden, TRUE);
  g_array_free (cs.embed, TRUE);
  g_array_free (cs.hidden, TRUE);
  g_free (ids);
  refs_tiny_clear (&fx);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
