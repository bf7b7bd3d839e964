/* bench-vk — the full-size thinker on the Vulkan device with random weights made on the
 * GPU (no file): prefill tokens/s (on tensor cores and in float32 where the device has
 * cooperative matrices), decode tokens/s at batch 1, decode time against the bytes one step
 * reads, and the per-kernel timestamp tables of the decode steps and one prefill.
 *
 *   bench-vk [--layers N] [--prefill N] [--decode N] [--bandwidth GBps]
 *
 * Shapes are Qwen3-Omni-30B-A3B's thinker: hidden 2048, 48 layers, 32 q / 4 kv heads of
 * 128, 128 experts top-8 of width 768, vocab 152064, weights bf16 (~61 GB). */
#include "error.h"
#include "thinker-vk.h"
#include "vk-device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  int layers = 48, n_prefill = 512, n_decode = 64;
  double bw = 3100.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp (argv[i], "--layers"))
      layers = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--prefill"))
      n_prefill = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--decode"))
      n_decode = atoi (argv[i + 1]);
    else if (!strcmp (argv[i], "--bandwidth"))
      bw = atof (argv[i + 1]);
  }
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 77;
  }
  QomniTextConfig c = {
    .vocab_size = 152064, .hidden_size = 2048, .num_hidden_layers = layers,
    .num_attention_heads = 32, .num_key_value_heads = 4, .head_dim = 128,
    .moe_intermediate_size = 768, .num_experts = 128, .num_experts_per_tok = 8,
    .norm_topk_prob = TRUE, .decoder_sparse_step = 1, .rms_norm_eps = 1e-6,
    .rope_theta = 1e6, .mrope_section = { 24, 20, 20 }, .mrope_interleaved = TRUE,
  };
  const int max_ctx = n_prefill + n_decode + 64;  /* + warm-up and profiled steps */
  gint64 t0 = g_get_monotonic_time ();
  QomniVkThinker *t = qomni_vk_thinker_new (vk, NULL, &c, QOMNI_DTYPE_BF16, max_ctx,
                                            MAX (n_prefill, 1), &error);
  if (!t) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    qomni_vk_free (vk);
    return 1;
  }
  printf ("device: %s; %d layers, random bf16 weights made on the GPU in %.1f s; %.1f GiB "
          "allocated\n", qomni_vk_device_name (vk), layers,
          (g_get_monotonic_time () - t0) * 1e-6, qomni_vk_allocated (vk) / 1073741824.0);

  /* prefill: random embeddings in, greedy token out */
  const int H = c.hidden_size;
  float *x = g_new (float, (size_t) n_prefill * H);
  GRand *rng = g_rand_new_with_seed (7);
  for (size_t i = 0; i < (size_t) n_prefill * H; i++)
    x[i] = (float) g_rand_double_range (rng, -1, 1);
  int *pos = g_new (int, 3 * n_prefill);
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < n_prefill; i++)
      pos[a * n_prefill + i] = i;
  int next = 0;
  const gboolean cm = qomni_vk_thinker_set_coopmat (t, TRUE);
  for (int way = cm ? 0 : 1; way < 2; way++) {   /* tensor cores first, then float32 */
    qomni_vk_thinker_set_coopmat (t, way == 0);
    double t_pre = 0;
    for (int rep = 0; rep < 2; rep++) {   /* the first compiles pipelines and warms up */
      qomni_vk_thinker_reset (t);
      t0 = g_get_monotonic_time ();
      if (!qomni_vk_thinker_forward (t, x, n_prefill, pos, NULL, NULL, NULL, &next, &error)) {
        fprintf (stderr, "bench-vk: prefill: %s\n", error->message);
        return 1;
      }
      t_pre = (g_get_monotonic_time () - t0) * 1e-6;
    }
    printf ("prefill %d tokens%s: %.1f ms, %.0f tokens/s\n", n_prefill,
            way == 0 ? " (tensor cores, fp16 operands)" : " (float32 products)", t_pre * 1e3,
            n_prefill / t_pre);
  }
  qomni_vk_thinker_set_coopmat (t, cm);

  /* decode: one submission per token; the id the GPU picked feeds the next step */
  int p = n_prefill;
  for (int i = 0; i < 4; i++)   /* warm-up */
    qomni_vk_thinker_decode (t, next, p++, NULL, &next, &error);
  double *dt = g_new (double, n_decode);
  for (int i = 0; i < n_decode; i++) {
    t0 = g_get_monotonic_time ();
    if (!qomni_vk_thinker_decode (t, next, p++, NULL, &next, &error)) {
      fprintf (stderr, "bench-vk: decode: %s\n", error->message);
      return 1;
    }
    dt[i] = (g_get_monotonic_time () - t0) * 1e-6;
  }
  double sum = 0, best = 1e9;
  for (int i = 0; i < n_decode; i++)
    sum += dt[i], best = MIN (best, dt[i]);
  const double mean = sum / n_decode;
  const double bytes = qomni_vk_thinker_decode_bytes (t);
  printf ("decode at batch 1 (context %d..%d): %.2f ms/token mean (%.2f best), %.1f tokens/s\n",
          n_prefill, p, mean * 1e3, best * 1e3, 1.0 / mean);
  printf ("weights read per step: %.2f GB -> %.0f GB/s effective, %.1f%% of %.0f GB/s "
          "(floor %.2f ms)\n", bytes * 1e-9, bytes / mean * 1e-9, 100.0 * bytes / mean * 1e-9 / bw,
          bw, bytes / (bw * 1e9) * 1e3);

  /* where the time goes: timestamps around every dispatch of a few decode steps */
  qomni_vk_profile_enable (vk, TRUE);
  qomni_vk_profile_reset (vk);
  const int n_prof = 8;
  for (int i = 0; i < n_prof; i++)
    qomni_vk_thinker_decode (t, next, p++, NULL, &next, &error);
  char title[96];
  snprintf (title, sizeof title, "decode, %d steps", n_prof);
  qomni_vk_profile_print (vk, title);
  qomni_vk_profile_reset (vk);
  qomni_vk_thinker_reset (t);
  qomni_vk_thinker_forward (t, x, n_prefill, pos, NULL, NULL, NULL, &next, &error);
  snprintf (title, sizeof title, "prefill, %d tokens%s", n_prefill,
            cm ? " (tensor cores)" : "");
  qomni_vk_profile_print (vk, title);
  g_free (dt);
  g_free (x);
  g_free (pos);
  g_rand_free (rng);
  qomni_vk_thinker_free (t);
  qomni_vk_free (vk);
  return 0;
}
