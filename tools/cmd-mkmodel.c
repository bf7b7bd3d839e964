/* qomni mkmodel — a random-weight checkpoint in the release layout (config.json,
 * sharded safetensors + index, tokenizer files), for tests, demos and benchmarks. */
#include "commands.h"
#include "checkpoint.h"
#include "config.h"
#include "error.h"
#include "gguf.h"
#include "quant.h"
#include "random-weights.h"
#include "safetensors-write.h"
#include "tokenizer.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  guint64 seed;
  guint64 done, total;
  gint64 last_report;
} Fill;

static gboolean
fill_random (const QomniTensorSpec *spec, QomniDType dtype, void *dst, gsize nbytes,
             gpointer user, GError **error)
{
  Fill *f = user;
  if (dst) {
    qomni_random_fill (spec, dtype, f->seed, dst, nbytes);
    f->done += nbytes;
  }
  gint64 now = g_get_monotonic_time ();
  if (now - f->last_report > 2 * G_USEC_PER_SEC) {
    fprintf (stderr, "\rmkmodel: %.1f%% of %.2f GB", 100.0 * (double) f->done / (double) f->total,
             (double) f->total / 1e9);
    f->last_report = now;
  }
  return TRUE;
}

/* The dtype a tensor gets in a quantized file: 2-D matrices whose rows hold whole blocks,
 * as qomni convert chooses; norms, biases, routers, gates and convolutions stay f32. */
static QomniDType
gguf_dtype (const QomniTensorSpec *s, QomniDType quant)
{
  const int64_t cols = s->shape[s->ndim - 1];
  const int64_t n = s->ndim == 2 ? s->shape[0] * cols : 0;
  if (s->ndim != 2 || n < 4096 || cols % qomni_dtype_info (quant)->block_elems != 0 ||
      g_str_has_suffix (s->name, ".mlp.gate.weight") ||
      g_str_has_suffix (s->name, "shared_expert_gate.weight"))
    return QOMNI_DTYPE_F32;
  return quant;
}

/* A random checkpoint as one GGUF file, quantized as it is made: each tensor is generated
 * in f32, encoded and written before the next, so memory holds one tensor at a time. */
static gboolean
write_gguf (const char *path, const QomniConfig *config, GPtrArray *specs, QomniDType quant,
            guint32 file_type, const char *preset, Fill *fill, GError **error)
{
  g_autofree char *json = qomni_config_to_json (config);
  g_autofree char *name = g_strdup_printf ("qwen3-omni-random-%s", preset);
  QomniGgufWriter *w = qomni_gguf_writer_new ();
  qomni_gguf_writer_set_model_metadata (w, name, file_type, json, strlen (json), config);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    int expert;
    char *gname = qomni_gguf_name_from_release (s->name, &expert);
    if (!gname || expert >= 0) {
      /* experts one by one under their release names (the loader reads both forms) */
      g_free (gname);
      gname = g_strdup (s->name);
    }
    g_ptr_array_add (names, gname);
    qomni_gguf_writer_add_tensor (w, gname, gguf_dtype (s, quant), s->ndim, s->shape);
  }
  gboolean ok = qomni_gguf_writer_begin (w, path, error);
  for (guint i = 0; ok && i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    const QomniDType dt = gguf_dtype (s, quant);
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    const gsize nbytes = qomni_dtype_nbytes (dt, n);
    void *data = g_try_malloc (MAX (nbytes, 1));
    float *f32 = qomni_dtype_info (dt)->block_elems > 1 ? g_try_new (float, n) : NULL;
    if (!data || (qomni_dtype_info (dt)->block_elems > 1 && !f32)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "out of memory making %s", s->name);
      ok = FALSE;
    } else if (f32) {
      const int64_t cols = s->shape[s->ndim - 1], rows = n / cols;
      const size_t row_bytes = qomni_dtype_nbytes (dt, cols);
      qomni_random_fill (s, QOMNI_DTYPE_F32, fill->seed, f32, (gsize) n * sizeof (float));
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; r++) {
        guint8 *dst = (guint8 *) data + (size_t) r * row_bytes;
        if (dt == QOMNI_DTYPE_Q8_0)
          qomni_quantize_row_q8_0_ref (f32 + r * cols, (QomniBlockQ8_0 *) dst, cols);
        else
          qomni_quantize_row_q4_0_ref (f32 + r * cols, (QomniBlockQ4_0 *) dst, cols);
      }
    } else {
      qomni_random_fill (s, dt, fill->seed, data, nbytes);
    }
    if (ok)
      ok = qomni_gguf_writer_write_tensor (w, data, nbytes, error);
    g_free (f32);
    g_free (data);
    fill->done += nbytes;
    fill_random (s, dt, NULL, 0, fill, NULL);
  }
  if (ok)
    ok = qomni_gguf_writer_finish (w, error);
  qomni_gguf_writer_free (w);
  g_ptr_array_unref (names);
  return ok;
}

static gboolean
copy_file (const char *src_dir, const char *dst_dir, const char *name, GError **error)
{
  g_autofree char *src = g_build_filename (src_dir, name, NULL);
  g_autofree char *dst = g_build_filename (dst_dir, name, NULL);
  g_autofree char *data = NULL;
  gsize len;
  return g_file_get_contents (src, &data, &len, error) &&
         g_file_set_contents (dst, data, (gssize) len, error);
}

int
qomni_cmd_mkmodel (int argc, char **argv)
{
  g_autofree char *preset = g_strdup ("tiny");
  g_autofree char *dtype_name = g_strdup ("bf16");
  g_autofree char *quant_name = NULL;
  gint64 seed = 1;
  double shard_gb = 4.0;
  GOptionEntry entries[] = {
    { "preset", 0, 0, G_OPTION_ARG_STRING, &preset, "tiny (the fixture's widths) or full (30B-A3B)", "NAME" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "random seed (default 1)", "S" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "bf16 (as released), f16 or f32", "T" },
    { "shard-gb", 0, 0, G_OPTION_ARG_DOUBLE, &shard_gb, "largest shard in GB (default 4)", "GB" },
    { "quant", 0, 0, G_OPTION_ARG_STRING, &quant_name, "write one GGUF file instead, matrices in q8_0, q4_0, bf16, f16 or f32", "TYPE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("OUT_DIR");
  g_option_context_set_summary (ctx, "Writes a random-weight Qwen3-Omni checkpoint in the "
                                "release layout.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc != 2) {
    fprintf (stderr, "qomni mkmodel: %s\n", error ? error->message : "give one output folder");
    g_clear_error (&error);
    return 2;
  }
  QomniDType dtype;
  if (g_strcmp0 (dtype_name, "bf16") == 0)
    dtype = QOMNI_DTYPE_BF16;
  else if (g_strcmp0 (dtype_name, "f16") == 0)
    dtype = QOMNI_DTYPE_F16;
  else if (g_strcmp0 (dtype_name, "f32") == 0)
    dtype = QOMNI_DTYPE_F32;
  else {
    fprintf (stderr, "qomni mkmodel: --dtype must be bf16, f16 or f32\n");
    return 2;
  }
  const char *out = argv[1];
  QomniDType quant = QOMNI_DTYPE_Q8_0;
  guint32 file_type = 7;
  const gboolean gguf = quant_name || g_str_has_suffix (out, ".gguf");
  if (gguf && !qomni_gguf_parse_file_type (quant_name ? quant_name : "q8_0", &quant, &file_type)) {
    fprintf (stderr, "qomni mkmodel: --quant must be q8_0, q4_0, bf16, f16 or f32\n");
    return 2;
  }
  g_autoptr (QomniConfig) config = qomni_config_preset (preset, &error);
  if (!config) {
    fprintf (stderr, "qomni mkmodel: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (config, QOMNI_PART_ALL);
  Fill fill = { (guint64) seed, 0, 0, g_get_monotonic_time () };
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= s->shape[d];
    fill.total += qomni_dtype_nbytes (dtype, n);
  }
  if (gguf) {
    if (!write_gguf (out, config, specs, quant, file_type, preset, &fill, &error)) {
      fprintf (stderr, "\nqomni mkmodel: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
    fprintf (stderr, "%smkmodel: wrote %s (%u tensors, preset %s, %s, seed %" G_GINT64_FORMAT
             ")\n", fill.total > (guint64) 1e9 ? "\n" : "", out, specs->len, preset,
             quant_name ? quant_name : "q8_0", seed);
    return 0;
  }
  g_autofree char *json = qomni_config_to_json (config);
  g_autofree char *cfg_path = g_build_filename (out, "config.json", NULL);
  g_autofree char *tok_dir = qomni_tokenizer_find_shipped_dir ();
  gboolean ok = qomni_safetensors_write_checkpoint (out, specs, dtype,
                                                    (guint64) (shard_gb * 1e9), fill_random,
                                                    &fill, &error) &&
                g_file_set_contents (cfg_path, json, -1, &error);
  if (ok && !tok_dir) {
    fprintf (stderr, "qomni mkmodel: warning: the shipped tokenizer was not found; the model "
             "folder has no tokenizer files\n");
  } else if (ok) {
    ok = copy_file (tok_dir, out, "vocab.json", &error) &&
         copy_file (tok_dir, out, "merges.txt", &error) &&
         copy_file (tok_dir, out, "tokenizer_config.json", &error);
  }
  if (!ok) {
    fprintf (stderr, "\nqomni mkmodel: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  fprintf (stderr, "%smkmodel: wrote %s (%u tensors, %.3f GB, preset %s, seed %" G_GINT64_FORMAT
           ")\n", fill.total > (guint64) 1e9 ? "\n" : "", out, specs->len, (double) fill.total / 1e9,
           preset, seed);
  return 0;
}
