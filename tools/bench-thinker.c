/* qomni bench — the thinker: prefill tokens/s at each prompt length and decode tokens/s
 * at each context length (batch 1, greedy).
 *
 * Floors: decode reads the attention matrices, the router, k of E experts, the lm_head and
 * the KV cache of the context once per token (bytes ÷ bandwidth); prefill does
 * 2 · multiply-adds per token · n plus the causal attention's 2 · n² · heads · head_dim per
 * layer (FLOPs ÷ peak), and reads every weight at least once (bytes ÷ bandwidth); its floor
 * is the larger of the two times. */
#include "bench.h"

#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <stdio.h>

#define S "thinker"

typedef struct {
  Bench *b;
  QomniThinker *t;
  const QomniTextConfig *tc;
  const char *where;
  int V;
  float *logits;
  double kv_bytes_per_pos;   /* K and V of every layer, f32 */
  double fill_rate;          /* tokens/s of the last prefill measured (to budget fills) */
} Run;

static int
argmax (const float *x, int n)
{
  int best = 0;
  for (int i = 1; i < n; i++)
    best = x[i] > x[best] ? i : best;
  return best;
}

static int *
prompt_ids (int n, int V)
{
  int *ids = g_new (int, n);
  for (int i = 0; i < n; i++)
    ids[i] = (int) ((i * 7919u + 13u) % (guint) MIN (V, 150000));
  return ids;
}

/* Runs n prompt tokens in pieces of at most 512 (positions continue across calls). */
static gboolean
fill (Run *r, int n, GError **error)
{
  g_autofree int *ids = prompt_ids (n, r->V);
  for (int done = 0; done < n;) {
    const int k = MIN (512, n - done);
    if (!qomni_thinker_prefill (r->t, ids + done, k, NULL, 0, NULL, 0, r->logits, error))
      return FALSE;
    done += k;
  }
  return TRUE;
}

static void
prefill (Run *r, int n)
{
  Bench *b = r->b;
  const QomniWeights *w = b->model->weights;
  GError *error = NULL;
  qomni_thinker_reset (r->t);
  const double t0 = bench_now ();
  if (!fill (r, n, &error)) {
    bench_skip (b, S, "prefill", "at %d tokens: %s", n, error->message);
    g_error_free (error);
    return;
  }
  const double dt = bench_now () - t0;
  r->fill_rate = n / dt;
  const QomniTextConfig *tc = r->tc;
  const double macs = bench_weight_macs (w, "thinker.model.", NULL, tc->num_experts_per_tok,
                                         tc->num_experts) +
                      bench_weight_macs (w, "thinker.lm_head", NULL, 0, 0) / n;  /* last row */
  const double flops = 2.0 * macs * n + 2.0 * tc->num_hidden_layers * (double) n * n *
                       tc->num_attention_heads * tc->head_dim;
  /* every expert is read once n · k ≥ E, fewer below */
  const double share = MIN (1.0, (double) n * tc->num_experts_per_tok / MAX (tc->num_experts, 1));
  const double bytes = bench_weight_bytes (w, "thinker.model.", NULL,
                                           (int) (share * tc->num_experts), tc->num_experts) +
                       bench_weight_bytes (w, "thinker.lm_head", NULL, 0, 0);
  const double peak = bench_peak (b, r->where), bw = bench_bandwidth (b, r->where);
  const double t_flops = peak > 0 ? flops / (peak * 1e9) : 0;
  const double t_bytes = bw > 0 ? bytes / (bw * 1e9) : 0;
  char basis[96] = "";
  if (t_flops >= t_bytes && t_flops > 0)
    g_snprintf (basis, sizeof basis, "%.3g GFLOP / %.4g GFLOP/s", flops / 1e9, peak);
  else if (t_bytes > 0)
    g_snprintf (basis, sizeof basis, "%.3g GB / %.4g GB/s", bytes / 1e9, bw);
  const double t_floor = MAX (t_flops, t_bytes);
  bench_figure (b, S, "prefill", "tokens", n, n / dt, "tokens/s", t_floor > 0 ? n / t_floor : 0,
                basis);
}

static void
decode (Run *r, int ctx)
{
  Bench *b = r->b;
  GError *error = NULL;
  const double eta = r->fill_rate > 0 ? ctx / r->fill_rate : 0;
  if (eta > b->fill_budget_s) {
    bench_skip (b, S, "decode", "context %d: filling it would take ~%.0f s at %.3g tokens/s "
                "(over --fill-budget %.0f s)", ctx, eta, r->fill_rate, b->fill_budget_s);
    return;
  }
  qomni_thinker_reset (r->t);
  const double t_fill = bench_now ();
  if (!fill (r, ctx, &error))
    goto fail;
  r->fill_rate = ctx / (bench_now () - t_fill);
  int next = argmax (r->logits, r->V);
  if (!qomni_thinker_decode (r->t, next, r->logits, &error))   /* warm-up */
    goto fail;
  const int n = b->decode_tokens;
  const double t0 = bench_now ();
  for (int i = 0; i < n; i++) {
    next = argmax (r->logits, r->V);
    if (!qomni_thinker_decode (r->t, next, r->logits, &error))
      goto fail;
  }
  const double dt = bench_now () - t0;
  const QomniWeights *w = b->model->weights;
  const double bytes = bench_weight_bytes (w, "thinker.model.", NULL,
                                           r->tc->num_experts_per_tok, r->tc->num_experts) +
                       bench_weight_bytes (w, "thinker.lm_head", NULL, 0, 0) +
                       r->kv_bytes_per_pos * (ctx + n / 2);
  const double bw = bench_bandwidth (b, r->where);
  char basis[96];
  g_snprintf (basis, sizeof basis, "%.3g GB/token / %.4g GB/s", bytes / 1e9, bw);
  bench_figure (b, S, "decode", "context", ctx, n / dt, "tokens/s", bw > 0 ? bw * 1e9 / bytes : 0,
                basis);
  return;
fail:
  bench_skip (b, S, "decode", "context %d: %s", ctx, error->message);
  g_error_free (error);
}

void
bench_run_thinker (Bench *b)
{
  bench_section (b, S);
  const QomniConfig *cfg = b->model->config;
  Run r = { .b = b, .tc = &cfg->thinker.text, .where = bench_thinker_where (b) };
  const QomniTextConfig *tc = r.tc;
  r.kv_bytes_per_pos = 2.0 * tc->num_hidden_layers * tc->num_key_value_heads * tc->head_dim * 4;

  /* the cache must hold the longest prompt and the longest context plus its decode steps;
   * contexts whose cache does not fit in memory are dropped here, with a reason */
  const double mem = (double) bench_available_memory () * 0.8;
  int max_ctx = 1;
  for (guint i = 0; i < b->prefill_sizes->len; i++)
    max_ctx = MAX (max_ctx, g_array_index (b->prefill_sizes, int, i));
  GArray *contexts = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < b->decode_contexts->len; i++) {
    const int c = g_array_index (b->decode_contexts, int, i);
    const int need = c + b->decode_tokens + 10;   /* + warm-up and profiled steps */
    if (mem > 0 && r.kv_bytes_per_pos * need > mem && !b->vk) {
      bench_skip (b, S, "decode", "context %d: its KV cache (%.1f GB) does not fit in the "
                  "%.1f GB of free memory", c, r.kv_bytes_per_pos * need / 1e9, mem / 0.8 / 1e9);
      continue;
    }
    g_array_append_val (contexts, c);
    max_ctx = MAX (max_ctx, need);
  }
  GError *error = NULL;
  const double t0 = bench_now ();
  r.t = bench_thinker_new (b, max_ctx, &error);
  if (!r.t) {
    bench_skip (b, S, "all", "%s", error->message);
    g_error_free (error);
    g_array_unref (contexts);
    return;
  }
  printf ("# thinker on %s: %d layers, cache of %d positions (made in %.1f s)\n", r.where,
          tc->num_hidden_layers, max_ctx, bench_now () - t0);
  r.V = qomni_thinker_vocab_size (r.t);
  r.logits = g_new (float, r.V);

  /* warm-up: the first call pages weights in (and compiles the GPU's pipelines) */
  qomni_thinker_reset (r.t);
  if (!fill (&r, MIN (8, max_ctx), &error)) {
    bench_skip (b, S, "all", "%s", error->message);
    g_clear_error (&error);
  } else {
    for (guint i = 0; i < b->prefill_sizes->len; i++)
      prefill (&r, g_array_index (b->prefill_sizes, int, i));
    if (r.fill_rate == 0 && contexts->len > 0) {  /* no prefill asked: measure a fill rate */
      const double t1 = bench_now ();
      qomni_thinker_reset (r.t);
      if (fill (&r, MIN (64, max_ctx), NULL))
        r.fill_rate = MIN (64, max_ctx) / (bench_now () - t1);
    }
    for (guint i = 0; i < contexts->len; i++)
      decode (&r, g_array_index (contexts, int, i));
#ifdef QOMNI_HAVE_VULKAN
    /* where a GPU decode step's time goes: timestamps around every dispatch of 8 steps
     * at the context the last decode left (printed, not in the JSON) */
    if (b->vk && qomni_thinker_n_past (r.t) + 8 < max_ctx) {
      qomni_vk_profile_enable (b->vk, TRUE);
      qomni_vk_profile_reset (b->vk);
      for (int i = 0; i < 8; i++)
        if (!qomni_thinker_decode (r.t, argmax (r.logits, r.V), r.logits, NULL))
          break;
      g_autofree char *title = g_strdup_printf ("decode, 8 steps from context %d",
                                                qomni_thinker_n_past (r.t) - 8);
      qomni_vk_profile_print (b->vk, title);
      qomni_vk_profile_enable (b->vk, FALSE);
    }
#endif
  }
  g_free (r.logits);
  qomni_thinker_free (r.t);
  g_array_unref (contexts);
}
