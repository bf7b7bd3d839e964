/* The thinker on the CPU against transformers (tiny-omni fixture, float32 reference).
 * Tolerance: 1e-4 normwise relative error on hidden states and logits; token ids exact. */
#include "refs.h"
#include "config.h"
#include "error.h"
#include "positions.h"
#include "sampler.h"
#include "thinker.h"

#include <string.h>

#define TOL 1e-4

static struct {
  QomniWeights *w, *refs;
  QomniConfig *cfg;
  RefsTiny tiny;
  int *ids, n;
} fx;

static void
fixture_load (void)
{
  refs_tiny_load (&fx.tiny);
  fx.w = fx.tiny.w;
  fx.refs = fx.tiny.refs;
  fx.cfg = fx.tiny.cfg;
  fx.ids = refs_ints (fx.refs, "thinker.prompt_ids", &fx.n);
  g_assert_cmpint (fx.n, ==, 68);
}

static void
test_positions (void)
{
  int n_ref;
  g_autofree int *ref = refs_ints (fx.refs, "thinker.position_ids", &n_ref);
  g_assert_cmpint (n_ref, ==, 3 * fx.n);
  g_autofree int *pos = g_new (int, 3 * fx.n);
  int next = 0;
  GError *error = NULL;
  g_assert_true (qomni_positions_build (&fx.cfg->thinker, fx.ids, fx.n, NULL, 0, 0, pos, &next,
                                        &error));
  g_assert_no_error (error);
  for (int i = 0; i < 3 * fx.n; i++)
    g_assert_cmpint (pos[i], ==, ref[i]);
  int n_delta;
  g_autofree int *delta = refs_ints (fx.refs, "thinker.rope_delta", &n_delta);
  g_assert_cmpint (next - fx.n, ==, delta[0]);
}

typedef struct {
  float *layers; /* [L, n, H] */
  int n, H;
} Trace;

static void
trace_hook (int layer, float *hidden, int row0, int n, gpointer user)
{
  Trace *tr = user;
  memcpy (tr->layers + ((gsize) layer * tr->n + row0) * tr->H, hidden,
          sizeof (float) * (gsize) n * tr->H);
}

static void
test_layers_and_logits (void)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int H = qomni_thinker_hidden_size (t), V = qomni_thinker_vocab_size (t), n = fx.n;
  const int L = fx.cfg->thinker.text.num_hidden_layers;

  g_autofree float *x = g_new (float, (gsize) n * H);
  qomni_thinker_embed (t, fx.ids, n, x);
  assert_close ("embed_tokens", x, refs_f32 (fx.refs, "trace.thinker.model.embed_tokens", n * H),
                n * H, 1e-7);

  const float *audio = refs_f32 (fx.refs, "audio.embeds", -1);
  g_assert_true (qomni_thinker_scatter (t, fx.ids, n, fx.cfg->thinker.audio_token_id, audio, 43,
                                        x, &error));
  g_autofree int *pos = g_new (int, 3 * n);
  int next;
  g_assert_true (qomni_positions_build (&fx.cfg->thinker, fx.ids, n, NULL, 0, 0, pos, &next,
                                        &error));
  Trace tr = { g_new (float, (gsize) L * n * H), n, H };
  qomni_thinker_set_layer_hook (t, trace_hook, &tr);
  g_assert_true (qomni_thinker_forward (t, x, pos, n, &error));
  g_assert_no_error (error);
  for (int l = 0; l < L; l++) {
    g_autofree char *name = g_strdup_printf ("trace.thinker.model.layers.%d", l);
    assert_close (name, tr.layers + (gsize) l * n * H, refs_f32 (fx.refs, name, n * H), n * H,
                  TOL);
  }
  assert_close ("norm", x, refs_f32 (fx.refs, "trace.thinker.model.norm", n * H), n * H, TOL);

  g_autofree float *logits = g_new (float, (gsize) 8 * V);
  qomni_thinker_logits (t, x, 8, logits);
  assert_close ("logits[0..7]", logits, refs_f32 (fx.refs, "thinker.prefill_logits_first8", 8 * V),
                8 * V, TOL);
  qomni_thinker_logits (t, x + (gsize) (n - 1) * H, 1, logits);
  assert_close ("logits[last]", logits, refs_f32 (fx.refs, "thinker.prefill_logits_last", V), V,
                TOL);
  g_free (tr.layers);
  qomni_thinker_free (t);
}

/* Greedy decode of 8 tokens reproduces generate.sequences[68:76]; then the same sequence
 * recomputed in one pass without the cache gives the same last logits. */
static void
test_greedy_and_cache (void)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 256, &error);
  g_assert_no_error (error);
  const int V = qomni_thinker_vocab_size (t), n = fx.n;
  const float *audio = refs_f32 (fx.refs, "audio.embeds", -1);
  int n_seq;
  g_autofree int *seq = refs_ints (fx.refs, "generate.sequences", &n_seq);
  g_assert_cmpint (n_seq, ==, n + 8);

  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill (t, fx.ids, n, audio, 43, NULL, 0, logits, &error));
  g_assert_no_error (error);
  QomniSampler *s = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  int got[8];
  for (int i = 0; i < 8; i++) {
    got[i] = qomni_sampler_sample (s, logits, V, NULL, 0, 0, 0, -1);
    g_assert_cmpint (got[i], ==, seq[n + i]);
    if (i < 7)
      g_assert_true (qomni_thinker_decode (t, got[i], logits, &error));
  }
  g_autofree float *cached = g_memdup2 (logits, sizeof (float) * V);

  /* Recompute prompt + 7 generated tokens from scratch. */
  qomni_thinker_reset (t);
  g_assert_true (qomni_thinker_prefill (t, seq, n + 7, audio, 43, NULL, 0, logits, &error));
  g_assert_no_error (error);
  assert_close ("cache vs recompute", cached, logits, V, 1e-5);
  qomni_sampler_free (s);
  qomni_thinker_free (t);
}

static void
test_bad_prompt (void)
{
  GError *error = NULL;
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 64, &error);
  g_assert_no_error (error);
  float *logits = g_new (float, qomni_thinker_vocab_size (t));
  /* audio rows disagree with the placeholders */
  g_assert_false (qomni_thinker_prefill (t, fx.ids, 68, NULL, 0, NULL, 0, logits, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* longer than the context */
  int ids[65] = { 0 };
  g_assert_false (qomni_thinker_prefill (t, ids, 65, NULL, 0, NULL, 0, logits, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* id outside the vocabulary */
  ids[3] = 999999;
  g_assert_false (qomni_thinker_prefill (t, ids, 4, NULL, 0, NULL, 0, logits, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_cmpint (qomni_thinker_n_past (t), ==, 0);
  g_free (logits);
  qomni_thinker_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fixture_load ();
  g_test_add_func ("/thinker/positions", test_positions);
  g_test_add_func ("/thinker/layers-and-logits", test_layers_and_logits);
  g_test_add_func ("/thinker/greedy-and-cache", test_greedy_and_cache);
  g_test_add_func ("/thinker/bad-prompt", test_bad_prompt);
  int rc = g_test_run ();
  g_free (fx.ids);
  refs_tiny_clear (&fx.tiny);
  return rc;
}
