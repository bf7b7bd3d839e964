/* qomni bench — speed of the thinker on this machine's CPU, with random weights made in
 * memory (no file needed): prefill tokens/s, decode tokens/s, and the weight bytes a decode
 * step reads as an effective bandwidth. Prints figures; asserts nothing. */
#include "commands.h"
#include "checkpoint.h"
#include "ops-cpu.h"
#include "random-weights.h"
#include "thinker.h"

#include <glib.h>
#include <omp.h>
#include <stdio.h>

static gboolean
parse_dtype (const char *name, QomniDType *out)
{
  static const struct { const char *name; QomniDType t; } table[] = {
    { "f32", QOMNI_DTYPE_F32 }, { "f16", QOMNI_DTYPE_F16 }, { "bf16", QOMNI_DTYPE_BF16 },
    { "q8_0", QOMNI_DTYPE_Q8_0 }, { "q4_0", QOMNI_DTYPE_Q4_0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (g_strcmp0 (name, table[i].name) == 0) {
      *out = table[i].t;
      return TRUE;
    }
  return FALSE;
}

/* Weight bytes one decode step reads: every attention matrix, the router, k experts,
 * one embedding row and the whole lm_head. */
static double
decode_bytes (const QomniTextConfig *c, QomniDType dt)
{
  const double H = c->hidden_size, hd = c->head_dim;
  const double attn = H * hd * (2.0 * c->num_attention_heads + 2.0 * c->num_key_value_heads);
  const double experts = 3.0 * H * c->moe_intermediate_size * c->num_experts_per_tok;
  const double per_elem = (double) qomni_dtype_info (dt)->block_bytes /
                          qomni_dtype_info (dt)->block_elems;
  /* qomni_random_weights makes every 2-D tensor, the router too, in the matrix dtype */
  const double router = H * c->num_experts * per_elem;
  return c->num_hidden_layers * ((attn + experts) * per_elem + router) +
         (double) c->vocab_size * H * per_elem + H * per_elem;
}

int
qomni_cmd_bench (int argc, char **argv)
{
  g_autofree char *preset = g_strdup ("full"), *dtype_name = g_strdup ("bf16");
  int layers = 0, n_prompt = 128, n_decode = 16, threads = 0;
  gboolean small_pages = FALSE;
  GOptionEntry entries[] = {
    { "preset", 0, 0, G_OPTION_ARG_STRING, &preset, "model shape: full (default) or tiny", "NAME" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "use only N decoder layers (to fit in memory)", "N" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "matrix dtype: bf16, f16, f32, q8_0, q4_0", "T" },
    { "prompt", 0, 0, G_OPTION_ARG_INT, &n_prompt, "prefill length (128)", "N" },
    { "decode", 0, 0, G_OPTION_ARG_INT, &n_decode, "tokens to decode (16)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all)", "N" },
    { "no-huge-pages", 0, 0, G_OPTION_ARG_NONE, &small_pages,
      "do not ask for transparent huge pages for the weights", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_summary (ctx, "Measures the thinker on the CPU with random weights made "
                                "in memory.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  QomniDType dtype;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) ||
      !parse_dtype (dtype_name, &dtype) || n_prompt < 1 || n_decode < 1) {
    fprintf (stderr, "qomni bench: %s\n", error ? error->message : "bad --dtype, --prompt or --decode");
    g_clear_error (&error);
    return 2;
  }
  if (threads > 0)
    omp_set_num_threads (threads);
  g_autoptr (QomniConfig) cfg = qomni_config_preset (preset, &error);
  if (!cfg) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  QomniTextConfig *tc = &cfg->thinker.text;
  if (layers > 0)
    tc->num_hidden_layers = MIN (layers, tc->num_hidden_layers);
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (cfg, QOMNI_PART_THINKER_TEXT);
  gint64 t0 = g_get_monotonic_time ();
  QomniWeights *w = qomni_random_weights (specs, dtype, 1,
                                         small_pages ? QOMNI_RANDOM_WEIGHTS_DEFAULT
                                                     : QOMNI_RANDOM_WEIGHTS_HUGE_PAGES,
                                         &error);
  QomniThinker *t = w ? qomni_thinker_new (w, cfg, n_prompt + n_decode + 1, &error) : NULL;
  if (!t) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    g_error_free (error);
    qomni_weights_free (w);
    return 1;
  }
  const int V = qomni_thinker_vocab_size (t);
  printf ("thinker %s, %d layers, %s matrices, %d threads (weights made in %.1f s, %s)\n",
          preset, tc->num_hidden_layers, dtype_name, qomni_cpu_threads (),
          (double) (g_get_monotonic_time () - t0) / 1e6,
          small_pages ? "small pages" : "huge pages advised");

  g_autofree int *ids = g_new (int, n_prompt);
  for (int i = 0; i < n_prompt; i++)
    ids[i] = (int) ((i * 7919u + 13u) % 150000u);
  g_autofree float *logits = g_new (float, V);
  t0 = g_get_monotonic_time ();
  gboolean ok = qomni_thinker_prefill (t, ids, n_prompt, NULL, 0, NULL, 0, logits, &error);
  const double prefill_s = (double) (g_get_monotonic_time () - t0) / 1e6;
  t0 = g_get_monotonic_time ();
  for (int i = 0; ok && i < n_decode; i++) {
    int best = 0;
    for (int v = 1; v < V; v++)
      best = logits[v] > logits[best] ? v : best;
    ok = qomni_thinker_decode (t, best, logits, &error);
  }
  const double decode_s = (double) (g_get_monotonic_time () - t0) / 1e6;
  if (!ok) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    g_error_free (error);
  } else {
    const double bytes = decode_bytes (tc, dtype);
    printf ("prefill: %d tokens in %.1f ms = %.1f tokens/s\n", n_prompt, prefill_s * 1e3,
            n_prompt / prefill_s);
    printf ("decode:  %d tokens in %.1f ms = %.2f tokens/s (%.1f ms/token)\n", n_decode,
            decode_s * 1e3, n_decode / decode_s, decode_s * 1e3 / n_decode);
    printf ("decode reads %.3f GB of weights per token = %.1f GB/s effective\n", bytes / 1e9,
            bytes * n_decode / decode_s / 1e9);
  }
  qomni_thinker_free (t);
  qomni_weights_free (w);
  return ok ? 0 : 1;
}
