/* qomni bench — speed of every stage on this machine, on a given model or on random
 * weights made in memory (no file needed), with each figure beside its hardware floor.
 * Prints a table as it measures and, with --json, the same figures as JSON. Asserts
 * nothing about speed.
 *
 * The sections live in tools/bench-*.c (bench.h lists them); this file reads the options,
 * makes the model and the device, measures the hardware figures and runs the sections. */
#include "commands.h"
#include "bench.h"
#include "checkpoint.h"
#include "error.h"
#include "ops-cpu.h"
#include "random-weights.h"
#include "tokenizer.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <glib.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* "128,512,2048" → ints, each ≥ 1. */
static GArray *
parse_list (const char *text, const char *option, GError **error)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (int));
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (int i = 0; parts[i]; i++) {
    char *end = NULL;
    const gint64 v = g_ascii_strtoll (g_strstrip (parts[i]), &end, 10);
    if (!*parts[i] || *end || v < 1 || v > G_MAXINT / 2) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "%s: '%s' is not a list of positive numbers", option, text);
      g_array_unref (a);
      return NULL;
    }
    int x = (int) v;
    g_array_append_val (a, x);
  }
  return a;
}

static const struct {
  const char *name;
  BenchSections bit;
  void (*run) (Bench *b);
  QomniParts parts;   /* the weights it needs */
} sections[] = {
  { "thinker", BENCH_THINKER, bench_run_thinker, QOMNI_PART_THINKER_TEXT },
  { "encoder", BENCH_ENCODER, bench_run_encoder, QOMNI_PART_AUDIO },
  { "talker", BENCH_TALKER, bench_run_talker, QOMNI_PART_TALKER },
  { "vocoder", BENCH_VOCODER, bench_run_vocoder, QOMNI_PART_CODE2WAV },
  { "pipeline", BENCH_PIPELINE, bench_run_pipeline,
    QOMNI_PART_THINKER_TEXT | QOMNI_PART_AUDIO | QOMNI_PART_TALKER | QOMNI_PART_CODE2WAV },
  { "streams", BENCH_STREAMS, bench_run_streams,
    QOMNI_PART_THINKER_TEXT | QOMNI_PART_AUDIO | QOMNI_PART_TALKER | QOMNI_PART_CODE2WAV },
};

static gboolean
parse_only (const char *text, BenchSections *out, GError **error)
{
  *out = 0;
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (int i = 0; parts[i]; i++) {
    guint k = 0;
    while (k < G_N_ELEMENTS (sections) && g_strcmp0 (g_strstrip (parts[i]), sections[k].name))
      k++;
    if (k == G_N_ELEMENTS (sections)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "--only: unknown section '%s' (thinker, encoder, talker, vocoder, pipeline, "
                   "streams)", parts[i]);
      return FALSE;
    }
    *out |= sections[k].bit;
  }
  return TRUE;
}

/* The tensors random weights are made for: those of `parts`, and the thinker's token
 * embeddings for the talker (it embeds the tts tokens with them) when the thinker's
 * other tensors are not asked for. (transfer full) */
static GPtrArray *
random_specs (const QomniConfig *cfg, QomniParts parts)
{
  GPtrArray *specs = qomni_checkpoint_layout (cfg, parts);
  if ((parts & QOMNI_PART_TALKER) && !(parts & QOMNI_PART_THINKER_TEXT)) {
    GPtrArray *thinker = qomni_checkpoint_layout (cfg, QOMNI_PART_THINKER_TEXT);
    for (guint i = 0; i < thinker->len; i++) {
      QomniTensorSpec *s = g_ptr_array_index (thinker, i);
      if (g_str_equal (s->name, "thinker.model.embed_tokens.weight"))
        g_ptr_array_add (specs, g_ptr_array_steal_index (thinker, i--));
    }
    g_ptr_array_unref (thinker);
  }
  return specs;
}

/* Bytes the random weights of `parts` take in `dtype`. */
static double
random_bytes (const QomniConfig *cfg, QomniParts parts, QomniDType dtype)
{
  g_autoptr (GPtrArray) specs = random_specs (cfg, parts);
  const QomniDTypeInfo *qi = qomni_dtype_info (dtype);
  double total = 0;
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    const gboolean matrix = s->ndim == 2 && s->shape[1] % qi->block_elems == 0;
    total += qomni_dtype_nbytes (matrix ? dtype : QOMNI_DTYPE_F32, n);
  }
  return total;
}

/* The model of random weights for the sections asked; sections whose weights do not fit
 * in memory are dropped from *run with a reason. */
static QomniModel *
random_model (Bench *b, const char *preset, int layers, QomniDType dtype, BenchSections *run,
              GError **error)
{
  QomniConfig *cfg = qomni_config_preset (preset, error);
  if (!cfg)
    return NULL;
  if (layers > 0)
    cfg->thinker.text.num_hidden_layers = MIN (layers, cfg->thinker.text.num_hidden_layers);
  const double avail = (double) bench_available_memory () * 0.9;
  QomniParts parts = 0;
  for (guint i = 0; i < G_N_ELEMENTS (sections); i++) {
    if (!(*run & sections[i].bit))
      continue;
    const double need = random_bytes (cfg, parts | sections[i].parts, dtype);
    if (avail > 0 && need > avail) {
      bench_skip (b, sections[i].name, "all", "its random weights (%.1f GB in all with the "
                  "sections before it) do not fit in the %.1f GB of free memory; try --layers "
                  "or --quant q4_0", need / 1e9, avail / 0.9 / 1e9);
      *run &= ~sections[i].bit;
      continue;
    }
    parts |= sections[i].parts;
  }
  g_autofree char *tok_dir = qomni_tokenizer_find_shipped_dir ();
  QomniTokenizer *tok = tok_dir ? qomni_tokenizer_load (tok_dir, error) : NULL;
  if (!tok) {
    if (!tok_dir)
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "the shipped tokenizer was not found");
    qomni_config_free (cfg);
    return NULL;
  }
  g_autoptr (GPtrArray) specs = random_specs (cfg, parts);
  const double t0 = bench_now ();
  QomniWeights *w = parts ? qomni_random_weights (specs, dtype, 1,
                                                  b->huge_pages ? QOMNI_RANDOM_WEIGHTS_HUGE_PAGES
                                                                : QOMNI_RANDOM_WEIGHTS_DEFAULT,
                                                  error)
                          : qomni_weights_new_empty ("(no weights)");
  if (!w) {
    qomni_tokenizer_free (tok);
    qomni_config_free (cfg);
    return NULL;
  }
  printf ("# random %s weights, %s matrices: %.2f GB made in %.1f s\n", preset,
          qomni_dtype_info (dtype)->name, random_bytes (cfg, parts, dtype) / 1e9,
          bench_now () - t0);
  return qomni_model_new (b->model_desc, cfg, w, tok);
}

static gboolean
open_device (Bench *b, GError **error)
{
  if (!g_strcmp0 (b->device, "cpu"))
    return TRUE;
  if (!g_str_has_prefix (b->device, "vulkan")) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "--device: '%s' is not cpu, vulkan or vulkan:N", b->device);
    return FALSE;
  }
#ifdef QOMNI_HAVE_VULKAN
  int index = -1;
  if (b->device[6] == ':')
    index = atoi (b->device + 7);
  else if (b->device[6]) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "--device: '%s' is not cpu, vulkan or vulkan:N", b->device);
    return FALSE;
  }
  b->vk = qomni_vk_new (index, error);
  if (b->vk)
    printf ("# device: %s\n", qomni_vk_device_name (b->vk));
  return b->vk != NULL;
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "qomni was built without Vulkan");
  return FALSE;
#endif
}

#ifndef QOMNI_HAVE_GST_BENCH
static void
no_gstreamer (Bench *b, const char *section)
{
  bench_skip (b, section, "all", "qomni was built without GStreamer (gstreamer-app)");
}

void
bench_run_pipeline (Bench *b)
{
  no_gstreamer (b, "pipeline");
}

void
bench_run_streams (Bench *b)
{
  no_gstreamer (b, "streams");
}
#endif

int
qomni_cmd_bench (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *preset = NULL, *quant = NULL, *device = NULL;
  g_autofree char *only = NULL, *json_path = NULL;
  g_autofree char *prefill = NULL, *contexts = NULL, *audio = NULL, *chunks = NULL;
  g_autofree char *streams = NULL, *desc = NULL;
  int layers = 0, n_prompt = 0, n_decode = 16, threads = 0, max_tokens = 32, max_frames = 50;
  int left_context = 25, pipeline_chunk = 4;
  gboolean small_pages = FALSE;
  double bandwidth = 0, peak = 0, fill_budget = 120, question = 2;
  GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "a checkpoint folder or .gguf file", "PATH" },
    { "random", 0, 0, G_OPTION_ARG_STRING, &preset, "random weights made in memory: full (default) or tiny", "SHAPE" },
    { "preset", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &preset, "same as --random", "SHAPE" },
    { "quant", 0, 0, G_OPTION_ARG_STRING, &quant, "matrix dtype of random weights: bf16 (default), q8_0, q4_0, f16, f32", "T" },
    { "dtype", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &quant, "same as --quant", "T" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "keep only N thinker layers (to fit in memory)", "N" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device, "cpu (default), vulkan or vulkan:N", "DEV" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "sections: thinker,encoder,talker,vocoder,pipeline,streams (default: all)", "LIST" },
    { "prefill", 0, 0, G_OPTION_ARG_STRING, &prefill, "prefill lengths (128,512,2048)", "LIST" },
    { "prompt", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &n_prompt, "one prefill length", "N" },
    { "context", 0, 0, G_OPTION_ARG_STRING, &contexts, "decode contexts (128,2048,16384)", "LIST" },
    { "decode", 0, 0, G_OPTION_ARG_INT, &n_decode, "tokens timed at each decode context (16)", "N" },
    { "fill-budget", 0, 0, G_OPTION_ARG_DOUBLE, &fill_budget, "longest time to fill a decode context (120 s)", "S" },
    { "audio", 0, 0, G_OPTION_ARG_STRING, &audio, "encoder audio lengths in seconds (1,8)", "LIST" },
    { "chunks", 0, 0, G_OPTION_ARG_STRING, &chunks, "Code2Wav chunk sizes in frames (4,16,50)", "LIST" },
    { "left-context", 0, 0, G_OPTION_ARG_INT, &left_context, "Code2Wav left context frames (25)", "N" },
    { "max-tokens", 0, 0, G_OPTION_ARG_INT, &max_tokens, "answer length in the pipelines (32)", "N" },
    { "max-frames", 0, 0, G_OPTION_ARG_INT, &max_frames, "codec frames of an answer (50 = 4 s)", "N" },
    { "pipeline-chunk", 0, 0, G_OPTION_ARG_INT, &pipeline_chunk, "qomnivocoder chunk-frames in the pipelines (4)", "N" },
    { "question", 0, 0, G_OPTION_ARG_DOUBLE, &question, "seconds of the question pushed (2)", "S" },
    { "streams", 0, 0, G_OPTION_ARG_STRING, &streams, "simultaneous pipelines (1,4,8)", "LIST" },
    { "bandwidth", 0, 0, G_OPTION_ARG_DOUBLE, &bandwidth, "GPU memory bandwidth for the floors", "GB/s" },
    { "peak-gflops", 0, 0, G_OPTION_ARG_DOUBLE, &peak, "peak GFLOP/s for the floors (GPU; CPU: measured)", "G" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all)", "N" },
    { "no-huge-pages", 0, 0, G_OPTION_ARG_NONE, &small_pages, "do not ask for transparent huge pages for random weights", NULL },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &json_path, "also write the figures as JSON (- for stdout; the table then goes to stderr)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_option_context_set_summary (ctx, "Measures the thinker, the audio encoder, the talker, "
                                "Code2Wav and the elements end to end, each beside its "
                                "hardware floor.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  Bench b = { .decode_tokens = n_decode };
  BenchSections run = BENCH_ALL;
  QomniDType dtype = QOMNI_DTYPE_BF16;
  gboolean ok = g_option_context_parse (ctx, &argc, &argv, &error);
  if (ok && quant && !parse_dtype (quant, &dtype))
    g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "--quant: unknown '%s'", quant);
  else if (ok && model_path && preset)
    g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "give --model or --random, not both");
  else if (ok && (n_decode < 1 || max_tokens < 1 || max_frames < 1 || left_context < 0 ||
                  pipeline_chunk < 1 || question <= 0 || n_prompt < 0))
    g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "--decode, --max-tokens, --max-frames, --pipeline-chunk and --question must "
                 "be positive");
  else if (ok && only)
    parse_only (only, &run, &error);
  if (!error && ok) {
    g_autofree char *def_prefill = n_prompt > 0 ? g_strdup_printf ("%d", n_prompt) : NULL;
    (void) ((b.prefill_sizes = parse_list (prefill ? prefill : def_prefill ? def_prefill : "128,512,2048",
                                   "--prefill", &error)) &&
    (b.decode_contexts = parse_list (contexts ? contexts : "128,2048,16384", "--context",
                                     &error)) &&
    (b.audio_seconds = parse_list (audio ? audio : "1,8", "--audio", &error)) &&
    (b.chunk_sizes = parse_list (chunks ? chunks : "4,16,50", "--chunks", &error)) &&
    (b.streams = parse_list (streams ? streams : "1,4,8", "--streams", &error)));
  }
  int rc = 0;
  if (!ok || error) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    g_error_free (error);
    rc = 2;
    goto out;
  }
  b.decode_tokens = n_decode;
  b.fill_budget_s = fill_budget;
  b.max_tokens = max_tokens;
  b.max_frames = max_frames;
  b.left_context = left_context;
  b.pipeline_chunk = pipeline_chunk;
  b.question_s = question;
  b.gpu_bandwidth_gbs = bandwidth;
  b.gpu_peak_gflops = peak;
  b.device = device ? device : "cpu";
  b.huge_pages = !small_pages;
  b.report = bench_report_new ();
  if (threads > 0)
    omp_set_num_threads (threads);

  /* --json -: JSON alone on stdout, everything else on stderr */
  int json_fd = -1;
  if (json_path && g_str_equal (json_path, "-")) {
    fflush (stdout);
    json_fd = dup (STDOUT_FILENO);
    dup2 (STDERR_FILENO, STDOUT_FILENO);
  }

  if (!open_device (&b, &error)) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    rc = 2;
    goto done;
  }
  b.cpu_bandwidth_gbs = bench_measure_cpu_bandwidth ();
  b.cpu_peak_gflops = bench_measure_cpu_peak_gflops ();
  if (peak <= 0 && !b.vk)
    b.gpu_peak_gflops = 0;
  printf ("# CPU: %d threads, read bandwidth %.1f GB/s, f32 FMA peak %.0f GFLOP/s (measured)\n",
          qomni_cpu_threads (), b.cpu_bandwidth_gbs, b.cpu_peak_gflops);
  if (b.vk && (bandwidth <= 0 || peak <= 0))
    printf ("# GPU floors need --bandwidth GB/s and --peak-gflops G (not measured)\n");

  if (model_path) {
    desc = g_strdup (model_path);
    b.model_desc = desc;
    b.model = qomni_model_load (model_path, &error);
    if (b.model && layers > 0) {
      QomniTextConfig *tc = &b.model->config->thinker.text;
      tc->num_hidden_layers = MIN (layers, tc->num_hidden_layers);
    }
  } else {
    desc = g_strdup_printf ("random %s %s%s", preset ? preset : "full",
                            qomni_dtype_info (dtype)->name, layers > 0 ? " (layers cut)" : "");
    b.model_desc = desc;
    b.random = TRUE;
    b.model = random_model (&b, preset ? preset : "full", layers, dtype, &run, &error);
  }
  if (!b.model) {
    fprintf (stderr, "qomni bench: %s\n", error->message);
    rc = 1;
    goto done;
  }
  printf ("# model: %s, %d thinker layers; thinker on %s, encoder on %s, talker on %s, "
          "vocoder on %s\n", b.model_desc, b.model->config->thinker.text.num_hidden_layers,
          bench_thinker_where (&b), bench_encoder_where (&b), bench_talker_where (&b),
          bench_code2wav_where (&b));
  for (guint i = 0; i < G_N_ELEMENTS (sections); i++)
    if (run & sections[i].bit)
      sections[i].run (&b);

  if (json_path) {
    g_autofree char *json = bench_report_json (&b);
    if (json_fd >= 0) {
      fflush (stdout);
      FILE *f = fdopen (json_fd, "w");
      fprintf (f, "%s\n", json);
      fclose (f);
      json_fd = -1;
    } else if (!g_file_set_contents (json_path, json, -1, &error)) {
      fprintf (stderr, "qomni bench: %s\n", error->message);
      rc = 1;
    }
  }
done:
  if (json_fd >= 0)
    close (json_fd);
  g_clear_error (&error);
  qomni_model_unref (b.model);
#ifdef QOMNI_HAVE_VULKAN
  if (b.vk)
    qomni_vk_free (b.vk);
#endif
  bench_report_free (b.report);
out:
  g_clear_pointer (&b.prefill_sizes, g_array_unref);
  g_clear_pointer (&b.decode_contexts, g_array_unref);
  g_clear_pointer (&b.audio_seconds, g_array_unref);
  g_clear_pointer (&b.chunk_sizes, g_array_unref);
  g_clear_pointer (&b.streams, g_array_unref);
  return rc;
}
