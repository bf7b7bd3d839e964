/* bench-vk — the full-size thinker on the Vulkan device with random weights made on the
 * GPU (no file): prefill tokens/s (on tensor cores and in float32 where the device has
 * cooperative matrices), decode tokens/s at batch 1 twice (the step recorded once and
 * replayed, then recorded anew every token as with QOMNI_VK_REPLAY=0), decode time against
 * the bytes one step reads, and the per-kernel timestamp tables of the decode steps (the
 * replayed ones) and one prefill.
 *
 *   bench-vk [--layers N] [--prefill N] [--decode N] [--bandwidth GBps]
 *            [--dtype bf16|q8_0|q4_0] [--no-profile]
 *   bench-vk --talker [--frames N] [--preset full|tiny] [--bandwidth GBps]
 *
 * Shapes are Qwen3-Omni-30B-A3B's thinker: hidden 2048, 48 layers, 32 q / 4 kv heads of
 * 128, 128 experts top-8 of width 768, vocab 152064; weights bf16 (~61 GB, the default),
 * Q8_0 (~32 GB) or Q4_0 (~17 GB), made on the GPU (fill_random, fill_random_blocks).
 * --talker: codec frames/s of the talker (20 MoE layers with a shared expert, codec head)
 * and the code predictor (5 dense layers, 15 passes per frame) at the preset's shapes:
 * greedy, sampled with the picks on the GPU (sample_pick; one submission per frame) and
 * sampled with each pass's logits read back to the CPU's sampler (QOMNI_GPU_SAMPLING=0).
 *
 *   bench-vk --audio-encoder [--reps N] [--layers N]
 *   bench-vk --vision [--reps N] [--layers N]
 *
 * --audio-encoder times the full-size audio encoder instead (the "full" preset: 32 layers
 * of width 1280, random bf16 weights made on the GPU): milliseconds per encode of 1 s and
 * 8 s of random mel features, each including the upload of the features and the read-back
 * of the rows, then the per-kernel table of one 8 s encode. --vision times the full-size
 * vision encoder (27 blocks of width 1152, DeepStack mergers, random bf16 weights): a
 * 448×448 image (28×28 patches -> 196 tokens) and one second of 640×360 video at 2 frames/s
 * (one temporal patch of 22×40 -> 220 tokens), each including the upload of pixels and
 * tables and the read-back of the rows (preprocessing is the CPU's: bench-vision). */
#include "audio-encoder-vk.h"
#include "vision-encoder-vk.h"
#include "code-predictor-vk.h"
#include "config.h"
#include "error.h"
#include "ops-cpu.h"
#include "sampler.h"
#include "thinker-vk.h"
#include "vk-device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A random bf16 matrix [rows, cols] in host memory, uniform with variance 1/cols. */
static QomniTensor
host_matrix (int rows, int cols, GRand *rng)
{
  guint16 *w = g_new (guint16, (size_t) rows * cols);
  const double a = sqrt (3.0 / cols);
  for (size_t i = 0; i < (size_t) rows * cols; i++)
    w[i] = qomni_f32_to_bf16 ((float) g_rand_double_range (rng, -a, a));
  return (QomniTensor) { .name = "random", .dtype = QOMNI_DTYPE_BF16, .ndim = 2,
                         .shape = { rows, cols }, .data = w,
                         .nbytes = sizeof (guint16) * (size_t) rows * cols };
}

/* Frames of the talker step as QomniTalker runs it on the GPU: the text projection of
 * one thinker row on the CPU (fc1 [I, Ht] + bias, SiLU, fc2 [H, I] + bias, bf16 weights),
 * that row plus the last frame's code embeddings through the talker and its codec head
 * (one submission, the 3072 logits back), c0 drawn on the CPU with the repetition penalty
 * and the suppression, then the code predictor's 15 passes (one submission, greedy or
 * sampled with the picks on the GPU; 15 with the CPU sampler). The sampled modes use the
 * same seeds, so the GPU picks' frames are compared with the CPU sampler's. */
static int
bench_talker (QomniVk *vk, const char *preset, int n_frames, double bw)
{
  GError *error = NULL;
  QomniConfig *cfg = qomni_config_preset (preset, &error);
  if (!cfg) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 1;
  }
  const QomniTalkerConfig *tc = &cfg->talker;
  const int n_prompt = 64, warm = 4;
  const int max_ctx = n_prompt + 3 * (n_frames + warm) + 16;
  const QomniVkStackNames names = { .prefix = "talker.model",
                                    .embed = "talker.model.codec_embedding.weight",
                                    .head = "talker.codec_head.weight" };
  gint64 t0 = g_get_monotonic_time ();
  QomniVkDecoder *tk = qomni_vk_decoder_new (vk, NULL, &tc->text, &names, QOMNI_DTYPE_BF16,
                                             max_ctx, n_prompt, &error);
  QomniVkCodePredictor *cp = tk ? qomni_vk_code_predictor_new (vk, NULL, tc, QOMNI_DTYPE_BF16,
                                                               &error)
                                : NULL;
  if (!cp) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    qomni_vk_decoder_free (tk);
    qomni_config_free (cfg);
    return 1;
  }
  const int H = tc->text.hidden_size, V = tc->text.vocab_size, G = tc->num_code_groups;
  const int cb = tc->code_predictor.vocab_size;
  printf ("device: %s; talker %d layers (%d experts top-%d, shared %d) + code predictor %d "
          "layers x %d passes, hidden %d, random bf16 weights made on the GPU in %.1f s; "
          "%.2f GiB allocated\n", qomni_vk_device_name (vk), tc->text.num_hidden_layers,
          tc->text.num_experts, tc->text.num_experts_per_tok,
          tc->text.shared_expert_intermediate_size, tc->code_predictor.num_hidden_layers, G - 1,
          H, (g_get_monotonic_time () - t0) * 1e-6, qomni_vk_allocated (vk) / 1073741824.0);

  GRand *rng = g_rand_new_with_seed (7);
  float *x = g_new (float, (size_t) n_prompt * H);
  for (size_t i = 0; i < (size_t) n_prompt * H; i++)
    x[i] = (float) g_rand_double_range (rng, -1, 1);
  int *pos = g_new (int, 3 * n_prompt);
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < n_prompt; i++)
      pos[a * n_prompt + i] = i;
  float *logits = g_new (float, V), *sum = g_new (float, H);
  const int Ht = cfg->thinker.text.hidden_size, I = tc->text.intermediate_size;
  QomniTensor fc1 = host_matrix (I, Ht, rng), fc2 = host_matrix (H, I, rng);
  float *b1 = g_new0 (float, I), *b2 = g_new0 (float, H), *mid = g_new (float, I);
  float *row = g_new (float, Ht), *proj = g_new (float, H);
  for (int i = 0; i < Ht; i++)
    row[i] = (float) g_rand_double_range (rng, -1, 1);
  int *history = g_new (int, max_ctx), *codes = g_new (int, G);
  int *frames[3] = { g_new (int, (size_t) G * (warm + n_frames)),
                     g_new (int, (size_t) G * (warm + n_frames)),
                     g_new (int, (size_t) G * (warm + n_frames)) };
  int p = n_prompt;
  const char *mode_name[3] = { "greedy (code predictor: 1 submission per frame)",
                               "sampled, GPU picks (code predictor: 1 submission per frame)",
                               "sampled, CPU sampler (code predictor: 15 submissions)" };
  for (int mode = 0; mode < 3; mode++) {
    QomniSamplerParams tp = { .temperature = mode ? 0.9f : 0.0f, .top_k = 50, .top_p = 1.0f,
                              .repetition_penalty = 1.05f, .seed = 1 };
    QomniSamplerParams cpp = { .temperature = mode ? 1.0f : 0.0f, .top_k = 50, .top_p = 0.8f,
                               .repetition_penalty = 1.0f, .seed = 2 };
    QomniSampler *st = qomni_sampler_new (&tp), *sc = qomni_sampler_new (&cpp);
    qomni_vk_code_predictor_set_gpu_sampling (cp, mode != 2);
    qomni_vk_decoder_reset (tk);
    p = n_prompt;
    if (!qomni_vk_decoder_forward (tk, x, n_prompt, pos, NULL, NULL, logits, NULL, &error)) {
      fprintf (stderr, "bench-vk: talker prompt: %s\n", error->message);
      return 1;
    }
    int n_hist = 0;
    double t_tk = 0, t_cp = 0, t_all = 0, t_proj = 0, rec0 = 0, sub0 = 0, rec, sub;
    for (int f = 0; f < warm + n_frames; f++) {
      if (f == warm) {
        t_tk = t_cp = t_all = t_proj = 0;
        qomni_vk_code_predictor_timing (cp, &rec0, &sub0);
      }
      gint64 a = g_get_monotonic_time ();
      if (f > 0) {
        /* the next input: the frame's code embeddings plus the projected text row */
        qomni_cpu_linear (mid, row, 1, &fc1, b1);
        qomni_cpu_silu (mid, I);
        qomni_cpu_linear (proj, mid, 1, &fc2, b2);
        t_proj += (g_get_monotonic_time () - a) * 1e-6;
        for (int h = 0; h < H; h++)
          sum[h] += proj[h];
        const int p3[3] = { p, p, p };
        if (!qomni_vk_decoder_forward (tk, sum, 1, p3, NULL, NULL, logits, NULL, &error)) {
          fprintf (stderr, "bench-vk: talker step: %s\n", error->message);
          return 1;
        }
        p++;
      }
      const int c0 = qomni_sampler_sample (st, logits, V, history, n_hist, cb, V,
                                           tc->codec_eos_id);
      history[n_hist++] = c0;
      gint64 b = g_get_monotonic_time ();
      if (!qomni_vk_code_predictor_run (cp, tk, f == 0 ? n_prompt - 1 : 0, c0, sc, codes, sum,
                                        &error)) {
        fprintf (stderr, "bench-vk: code predictor: %s\n", error->message);
        return 1;
      }
      codes[0] = c0;
      memcpy (frames[mode] + (size_t) G * f, codes, sizeof (int) * G);
      gint64 e = g_get_monotonic_time ();
      t_tk += (b - a) * 1e-6;
      t_cp += (e - b) * 1e-6;
      t_all += (e - a) * 1e-6;
    }
    const double per = t_all / n_frames;
    qomni_vk_code_predictor_timing (cp, &rec, &sub);
    const double bytes = qomni_vk_decoder_step_bytes (tk) + 2.0 * V * H
                         + qomni_vk_code_predictor_frame_bytes (cp);
    printf ("%s: %d frames, %.2f ms/frame (talker step %.2f ms, of which the CPU's text "
            "projection %.2f ms, + code predictor %.2f ms) = %.1f frames/s (%.2f x real time "
            "at 12.5 frames/s)\n", mode_name[mode], n_frames, per * 1e3, t_tk / n_frames * 1e3,
            t_proj / n_frames * 1e3, t_cp / n_frames * 1e3, 1.0 / per, 1.0 / per / 12.5);
    printf ("  code predictor per frame: %.2f ms recording on the CPU, %.2f ms submit + GPU\n",
            (rec - rec0) / n_frames * 1e3, (sub - sub0) / n_frames * 1e3);
    if (mode == 0)
      printf ("weights read per frame: %.3f GB -> %.0f GB/s effective, %.1f%% of %.0f GB/s\n",
              bytes * 1e-9, bytes / per * 1e-9, 100.0 * bytes / per * 1e-9 / bw, bw);
    if (mode == 2) {
      /* same seeds, same talker: the GPU picks should be the CPU sampler's choices, unless a
       * draw fell within ~1e-8 of a cumulative boundary (and then the frames part ways) */
      int differ = 0;
      for (size_t i = 0; i < (size_t) G * (warm + n_frames); i++)
        differ += frames[1][i] != frames[2][i];
      printf ("  sampled frames, GPU picks vs CPU sampler: %d of %d codes differ\n", differ,
              G * (warm + n_frames));
    }
    qomni_sampler_free (st);
    qomni_sampler_free (sc);
  }

  /* where the time goes: timestamps around every dispatch of a few greedy frames */
  qomni_vk_profile_enable (vk, TRUE);
  qomni_vk_profile_reset (vk);
  QomniSampler *greedy = qomni_sampler_new (&QOMNI_SAMPLER_PARAMS_GREEDY);
  const int n_prof = 4;
  for (int f = 0; f < n_prof && p < max_ctx; f++) {
    const int p3[3] = { p, p, p };
    qomni_vk_decoder_forward (tk, sum, 1, p3, NULL, NULL, logits, NULL, &error);
    p++;
    qomni_vk_code_predictor_run (cp, tk, 0, f, greedy, codes, sum, &error);
  }
  char title[96];
  snprintf (title, sizeof title, "talker + code predictor, %d greedy frames", n_prof);
  qomni_vk_profile_print (vk, title);
  /* and a few sampled ones, picks on the GPU */
  qomni_vk_profile_reset (vk);
  QomniSamplerParams cpp = { .temperature = 1.0f, .top_k = 50, .top_p = 0.8f,
                             .repetition_penalty = 1.0f, .seed = 3 };
  QomniSampler *sampled = qomni_sampler_new (&cpp);
  qomni_vk_code_predictor_set_gpu_sampling (cp, TRUE);
  for (int f = 0; f < n_prof && p < max_ctx; f++) {
    const int p3[3] = { p, p, p };
    qomni_vk_decoder_forward (tk, sum, 1, p3, NULL, NULL, logits, NULL, &error);
    p++;
    qomni_vk_code_predictor_run (cp, tk, 0, f, sampled, codes, sum, &error);
  }
  snprintf (title, sizeof title, "talker + code predictor, %d sampled frames (GPU picks)",
            n_prof);
  qomni_vk_profile_print (vk, title);
  qomni_sampler_free (sampled);
  qomni_vk_profile_enable (vk, FALSE);
  qomni_sampler_free (greedy);
  for (int m = 0; m < 3; m++)
    g_free (frames[m]);
  g_free ((gpointer) fc1.data);
  g_free ((gpointer) fc2.data);
  g_free (b1);
  g_free (b2);
  g_free (mid);
  g_free (row);
  g_free (proj);
  g_free (x);
  g_free (pos);
  g_free (logits);
  g_free (sum);
  g_free (history);
  g_free (codes);
  g_rand_free (rng);
  qomni_vk_code_predictor_free (cp);
  qomni_vk_decoder_free (tk);
  qomni_config_free (cfg);
  return 0;
}

static int
bench_audio_encoder (QomniVk *vk, int reps, int layers)
{
  GError *error = NULL;
  g_autoptr (QomniConfig) cfg = qomni_config_preset ("full", &error);
  if (!cfg) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 1;
  }
  if (layers > 0)   /* fewer layers: a smoke test on a slow device */
    cfg->thinker.audio.encoder_layers = layers;
  gint64 t0 = g_get_monotonic_time ();
  QomniVkAudioEncoder *enc = qomni_vk_audio_encoder_new (vk, NULL, cfg, QOMNI_DTYPE_BF16,
                                                         &error);
  if (!enc) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 1;
  }
  const QomniAudioConfig *ac = &cfg->thinker.audio;
  printf ("device: %s; audio encoder (%d layers, d_model %d, ffn %d), random bf16 weights "
          "made on the GPU in %.1f s; %.2f GiB allocated\n", qomni_vk_device_name (vk),
          ac->encoder_layers, ac->d_model, ac->encoder_ffn_dim,
          (g_get_monotonic_time () - t0) * 1e-6, qomni_vk_allocated (vk) / 1073741824.0);
  const int M = ac->num_mel_bins, OUT = qomni_vk_audio_encoder_output_dim (enc);
  const int seconds[] = { 1, 8 };
  GRand *rng = g_rand_new_with_seed (11);
  for (guint s = 0; s < G_N_ELEMENTS (seconds); s++) {
    const int T = 100 * seconds[s], A = qomni_vk_audio_encoder_n_tokens (enc, T);
    float *feat = g_new (float, (size_t) M * T), *out = g_new (float, (size_t) A * OUT);
    for (size_t i = 0; i < (size_t) M * T; i++)
      feat[i] = (float) g_rand_double_range (rng, -1.5, 1.0);
    double best = 1e9, sum = 0;
    for (int r = -1; r < reps; r++) {   /* r = −1 compiles the pipelines and warms up */
      t0 = g_get_monotonic_time ();
      if (!qomni_vk_audio_encoder_encode (enc, feat, T, out, &error)) {
        fprintf (stderr, "bench-vk: encode: %s\n", error->message);
        return 1;
      }
      const double dt = (g_get_monotonic_time () - t0) * 1e-6;
      if (r >= 0)
        sum += dt, best = MIN (best, dt);
    }
    printf ("audio encoder, %d s (%d mel frames -> %d rows): %.2f ms mean, %.2f ms best "
            "(%d runs)\n", seconds[s], T, A, sum / reps * 1e3, best * 1e3, reps);
    if (seconds[s] == 8) {
      qomni_vk_profile_enable (vk, TRUE);
      qomni_vk_profile_reset (vk);
      qomni_vk_audio_encoder_encode (enc, feat, T, out, &error);
      qomni_vk_profile_print (vk, "audio encoder, 8 s");
      qomni_vk_profile_enable (vk, FALSE);
    }
    g_free (feat);
    g_free (out);
  }
  g_rand_free (rng);
  qomni_vk_audio_encoder_free (enc);
  return 0;
}

static int
bench_vision (QomniVk *vk, int reps, int layers)
{
  GError *error = NULL;
  g_autoptr (QomniConfig) cfg = qomni_config_preset ("full", &error);
  if (!cfg) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 1;
  }
  QomniVisionConfig *vc = &cfg->thinker.vision;
  if (layers > 0) {   /* fewer blocks: a smoke test on a slow device */
    vc->depth = layers;
    vc->n_deepstack = 0;
    for (int i = 0; i < 8; i++)
      if (vc->deepstack_visual_indexes[i] < layers && i == vc->n_deepstack)
        vc->n_deepstack++;
  }
  gint64 t0 = g_get_monotonic_time ();
  QomniVkVisionEncoder *enc = qomni_vk_vision_encoder_new (vk, NULL, cfg, QOMNI_DTYPE_BF16,
                                                           &error);
  if (!enc) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 1;
  }
  const int D = vc->hidden_size, half = D / vc->num_heads / 2, OUT = vc->out_hidden_size;
  const int P = vc->in_channels * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
  printf ("device: %s; vision encoder (%d blocks, width %d, %d DeepStack mergers), random "
          "bf16 weights made on the GPU in %.1f s; %.2f GiB allocated\n",
          qomni_vk_device_name (vk), vc->depth, D, vc->n_deepstack,
          (g_get_monotonic_time () - t0) * 1e-6, qomni_vk_allocated (vk) / 1073741824.0);
  const struct { const char *what; int gh, gw; } inputs[] = {
    { "448x448 image", 28, 28 },
    { "1 s of 640x360 video at 2 fps", 22, 40 },
  };
  GRand *rng = g_rand_new_with_seed (13);
  for (guint s = 0; s < G_N_ELEMENTS (inputs); s++) {
    const int n = inputs[s].gh * inputs[s].gw, nt = n / 4;
    /* random pixels, position rows and angles: the time does not depend on the values */
    float *px = g_new (float, (size_t) n * P), *pos = g_new (float, (size_t) n * D);
    float *rope = g_new (float, (size_t) 2 * n * half);
    float *emb = g_new (float, (size_t) nt * OUT);
    float *deep = g_new (float, (size_t) MAX (vc->n_deepstack, 1) * nt * OUT);
    for (size_t i = 0; i < (size_t) n * P; i++)
      px[i] = (float) g_rand_double_range (rng, -1, 1);
    for (size_t i = 0; i < (size_t) n * D; i++)
      pos[i] = (float) g_rand_double_range (rng, -0.1, 0.1);
    for (size_t i = 0; i < (size_t) n * half; i++) {
      const double a = g_rand_double_range (rng, 0, 2 * G_PI);
      rope[i] = (float) cos (a);
      rope[(size_t) n * half + i] = (float) sin (a);
    }
    double best = 1e9, sum = 0;
    for (int r = -1; r < reps; r++) {   /* r = −1 compiles the pipelines and warms up */
      t0 = g_get_monotonic_time ();
      if (!qomni_vk_vision_encoder_encode (enc, px, n, n, pos, rope, emb, deep, &error)) {
        fprintf (stderr, "bench-vk: encode: %s\n", error->message);
        return 1;
      }
      const double dt = (g_get_monotonic_time () - t0) * 1e-6;
      if (r >= 0)
        sum += dt, best = MIN (best, dt);
    }
    printf ("vision encoder, %s (%d patches -> %d tokens): %.2f ms mean, %.2f ms best "
            "(%d runs)\n", inputs[s].what, n, nt, sum / reps * 1e3, best * 1e3, reps);
    if (s == 0) {
      qomni_vk_profile_enable (vk, TRUE);
      qomni_vk_profile_reset (vk);
      qomni_vk_vision_encoder_encode (enc, px, n, n, pos, rope, emb, deep, &error);
      qomni_vk_profile_print (vk, "vision encoder, 448x448 image");
      qomni_vk_profile_enable (vk, FALSE);
    }
    g_free (px);
    g_free (pos);
    g_free (rope);
    g_free (emb);
    g_free (deep);
  }
  g_rand_free (rng);
  qomni_vk_vision_encoder_free (enc);
  return 0;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  int layers = -1, n_prefill = 512, n_decode = 64, n_frames = 64, reps = 10;
  double bw = 3100.0;
  gboolean talker = FALSE, audio = FALSE, vision = FALSE;
  const char *preset = "full";
  QomniDType dtype = QOMNI_DTYPE_BF16;
  gboolean profile = TRUE;
  for (int i = 1; i < argc; i++) {
    const char *val = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp (argv[i], "--no-profile")) {
      profile = FALSE;
      continue;
    }
    if (!strcmp (argv[i], "--talker")) {
      talker = TRUE;
      continue;
    }
    if (!strcmp (argv[i], "--audio-encoder")) {
      audio = TRUE;
      continue;
    }
    if (!strcmp (argv[i], "--vision")) {
      vision = TRUE;
      continue;
    }
    if (!strcmp (argv[i], "--dtype")) {
      if (!strcmp (val, "bf16"))
        dtype = QOMNI_DTYPE_BF16;
      else if (!strcmp (val, "q8_0"))
        dtype = QOMNI_DTYPE_Q8_0;
      else if (!strcmp (val, "q4_0"))
        dtype = QOMNI_DTYPE_Q4_0;
      else {
        fprintf (stderr, "bench-vk: --dtype takes bf16, q8_0 or q4_0, not '%s'\n", val);
        return 2;
      }
    } else if (!strcmp (argv[i], "--reps"))
      reps = MAX (1, atoi (val));
    else if (!strcmp (argv[i], "--frames"))
      n_frames = MAX (atoi (val), 1);
    else if (!strcmp (argv[i], "--preset"))
      preset = val;
    else if (!strcmp (argv[i], "--layers"))
      layers = atoi (val);
    else if (!strcmp (argv[i], "--prefill"))
      n_prefill = atoi (val);
    else if (!strcmp (argv[i], "--decode"))
      n_decode = atoi (val);
    else if (!strcmp (argv[i], "--bandwidth"))
      bw = atof (val);
    else {
      fprintf (stderr, "bench-vk: unknown option %s\n", argv[i]);
      return 2;
    }
    i++;
  }
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    return 77;
  }
  if (audio || vision) {
    const int rc = audio ? bench_audio_encoder (vk, reps, layers)
                         : bench_vision (vk, reps, layers);
    qomni_vk_free (vk);
    return rc;
  }
  if (layers < 0)
    layers = 48;
  if (talker) {
    int rc = bench_talker (vk, preset, n_frames, bw);
    qomni_vk_free (vk);
    return rc;
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
  QomniVkThinker *t = qomni_vk_thinker_new (vk, NULL, &c, dtype, max_ctx,
                                            MAX (n_prefill, 1), &error);
  if (!t) {
    fprintf (stderr, "bench-vk: %s\n", error->message);
    qomni_vk_free (vk);
    return 1;
  }
  printf ("device: %s; %d layers, random %s weights made on the GPU in %.1f s; %.1f GiB "
          "allocated\n", qomni_vk_device_name (vk), layers, qomni_dtype_info (dtype)->name,
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
  qomni_vk_thinker_set_coopmat (t, FALSE);   /* the default, for the profiled prefill */

  /* decode: one submission per token; the id the GPU picked feeds the next step. Twice
   * from the same prompt: the step recorded once and replayed (the default), then recorded
   * anew every token (QOMNI_VK_REPLAY=0), so one run shows what the replay gains. */
  const int first = next;
  const double bytes = qomni_vk_thinker_decode_bytes (t);
  double *dt = g_new (double, n_decode);
  double mean_way[2] = { 0, 0 };
  int p = n_prefill;
  for (int way = 0; way < 2; way++) {
    qomni_vk_decoder_set_replay (t, way == 0);
    qomni_vk_decoder_truncate (t, n_prefill);
    p = n_prefill;
    next = first;
    for (int i = 0; i < 4; i++)   /* warm-up (and the replay's recording) */
      qomni_vk_thinker_decode (t, next, p++, NULL, &next, &error);
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
    mean_way[way] = mean;
    printf ("decode at batch 1 (context %d..%d), %s: %.2f ms/token mean (%.2f best), "
            "%.1f tokens/s\n", n_prefill, p,
            way == 0 ? "replayed step" : "step recorded every token", mean * 1e3, best * 1e3,
            1.0 / mean);
    printf ("  weights read per step: %.2f GB -> %.0f GB/s effective, %.1f%% of %.0f GB/s "
            "(floor %.2f ms)\n", bytes * 1e-9, bytes / mean * 1e-9,
            100.0 * bytes / mean * 1e-9 / bw, bw, bytes / (bw * 1e9) * 1e3);
  }
  printf ("decode: replay %.2fx the re-recorded step's tokens/s (%d replayed steps)\n",
          mean_way[1] / mean_way[0], qomni_vk_decoder_replayed (t));
  qomni_vk_decoder_set_replay (t, TRUE);

  /* where the time goes: timestamps around every dispatch of a few decode steps */
  if (!profile)
    goto done;
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
  snprintf (title, sizeof title, "prefill, %d tokens (float32 products)", n_prefill);
  qomni_vk_profile_print (vk, title);
done:
  g_free (dt);
  g_free (x);
  g_free (pos);
  g_rand_free (rng);
  qomni_vk_thinker_free (t);
  qomni_vk_free (vk);
  return 0;
}
