/* qomni mkmodel — a random-weight checkpoint in the release layout (config.json,
 * sharded safetensors + index, tokenizer files), for tests, demos and benchmarks. */
#include "commands.h"
#include "checkpoint.h"
#include "config.h"
#include "random-weights.h"
#include "safetensors-write.h"
#include "tokenizer.h"

#include <glib.h>
#include <stdio.h>

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
  qomni_random_fill (spec, dtype, f->seed, dst, nbytes);
  f->done += nbytes;
  gint64 now = g_get_monotonic_time ();
  if (now - f->last_report > 2 * G_USEC_PER_SEC) {
    fprintf (stderr, "\rmkmodel: %.1f%% of %.2f GB", 100.0 * (double) f->done / (double) f->total,
             (double) f->total / 1e9);
    f->last_report = now;
  }
  return TRUE;
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
  gint64 seed = 1;
  double shard_gb = 4.0;
  GOptionEntry entries[] = {
    { "preset", 0, 0, G_OPTION_ARG_STRING, &preset, "tiny (the fixture's widths) or full (30B-A3B)", "NAME" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "random seed (default 1)", "S" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "bf16 (as released), f16 or f32", "T" },
    { "shard-gb", 0, 0, G_OPTION_ARG_DOUBLE, &shard_gb, "largest shard in GB (default 4)", "GB" },
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
