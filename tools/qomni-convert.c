/* qomni convert — a Hugging Face checkpoint folder to one GGUF file.
 *
 *   qomni convert --model HF_DIR --quant q8_0|q4_0|bf16|f32 [--keep COMPONENT=TYPE ...] OUT.gguf
 *
 * Streaming: the input stays memory-mapped and is read one tensor (and within a tensor, a
 * few MiB of rows) at a time; the writer is told every tensor's shape and type first and
 * then gets the data in order. Memory use is a few MiB whatever the model size.
 *
 * Which tensors are quantized: 2-D weight matrices whose rows are a multiple of 32 elements.
 * Kept f32: 1-D tensors (norms, biases, scales), tensors of other ranks (convolutions), the
 * MoE routers (mlp.gate) and shared-expert gates, whose outputs pick experts and are
 * sensitive, and anything smaller than --min-elements (4096). A 2-D tensor that the target
 * block type cannot hold (rows not a multiple of 32) keeps its 16-bit source type.
 * --keep COMPONENT=TYPE overrides the target for the tensors under a name prefix such as
 * thinker.audio_tower, thinker.visual, thinker.model, thinker.lm_head, talker,
 * talker.code_predictor or code2wav; the longest matching prefix wins.
 */
#include "commands.h"

#include "config.h"
#include "error.h"
#include "gguf.h"
#include "quant.h"
#include "weights.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MIN_ELEMENTS_DEFAULT 4096
#define CHUNK_ELEMENTS (1 << 20)   /* rows converted per step: about 4 MiB of f32 */
#define PROGRESS_INTERVAL_US (2 * G_USEC_PER_SEC)

typedef struct {
  char *prefix;
  QomniDType dtype;
  guint matched;
} Keep;

/* One tensor of the output: a source tensor, or E experts stacked as [E, rows, cols]. */
typedef struct {
  char *gguf_name;
  const char *release_name;          /* of the first source, for the type rules */
  QomniDType dtype;
  int ndim;
  int64_t shape[QOMNI_MAX_DIMS];
  GPtrArray *sources;                /* const QomniTensor *, in expert order */
} OutTensor;

static void
out_tensor_clear (gpointer p)
{
  OutTensor *o = p;
  g_free (o->gguf_name);
  if (o->sources)
    g_ptr_array_unref (o->sources);
}

typedef struct {
  const char *model_dir;
  const char *out_path;
  QomniDType target;
  guint32 file_type;
  Keep *keeps;
  guint n_keeps;
  gint64 min_elements;
  gboolean quiet;
  /* progress */
  guint64 total_bytes;
  guint64 done_bytes;
  gint64 start_us;
  gint64 last_report_us;
} Convert;

static gboolean
is_float (QomniDType d)
{
  return d == QOMNI_DTYPE_F32 || d == QOMNI_DTYPE_F16 || d == QOMNI_DTYPE_BF16 ||
         d == QOMNI_DTYPE_Q8_0 || d == QOMNI_DTYPE_Q4_0;
}

static gboolean
has_prefix_at_dot (const char *name, const char *prefix)
{
  gsize n = strlen (prefix);
  return strncmp (name, prefix, n) == 0 && (name[n] == '.' || name[n] == '\0');
}

/* The type rules of the header comment. */
static QomniDType
choose_dtype (Convert *c, const char *name, const QomniTensor *t)
{
  if (!is_float (t->dtype))
    return t->dtype;
  QomniDType target = c->target;
  Keep *best = NULL;
  for (guint i = 0; i < c->n_keeps; i++)
    if (has_prefix_at_dot (name, c->keeps[i].prefix) &&
        (!best || strlen (c->keeps[i].prefix) > strlen (best->prefix)))
      best = &c->keeps[i];
  if (best) {
    target = best->dtype;
    best->matched++;
  }
  if (t->ndim != 2 || g_str_has_suffix (name, ".mlp.gate.weight") ||
      g_str_has_suffix (name, ".shared_expert_gate.weight") ||
      qomni_tensor_nelements (t) < c->min_elements)
    return QOMNI_DTYPE_F32;
  if (t->shape[1] % qomni_dtype_info (target)->block_elems != 0)
    return t->dtype == QOMNI_DTYPE_BF16 || t->dtype == QOMNI_DTYPE_F16 ? t->dtype
                                                                        : QOMNI_DTYPE_F32;
  return target;
}

static void
collect_cb (const QomniTensor *t, gpointer user)
{
  /* transformers v5 fused experts are also exposed as per-expert views: convert the views. */
  if (t->ndim == 3 && strstr (t->name, ".experts.") &&
      (g_str_has_suffix (t->name, "gate_up_proj") || g_str_has_suffix (t->name, "down_proj") ||
       g_str_has_suffix (t->name, "gate_up_proj.weight") ||
       g_str_has_suffix (t->name, ".experts.down_proj.weight")))
    return;
  g_ptr_array_add (user, (gpointer) t);
}

/* Input order: file, then position in it, so the input is read front to back. */
static gint
source_order (gconstpointer a, gconstpointer b)
{
  const QomniTensor *x = *(const QomniTensor *const *) a, *y = *(const QomniTensor *const *) b;
  int f = g_strcmp0 (x->file, y->file);
  if (f)
    return f;
  return x->data < y->data ? -1 : x->data > y->data ? 1 : strcmp (x->name, y->name);
}

/* A stack of experts is usable when experts 0..E-1 are all there, alike in type and shape. */
static gboolean
stack_complete (GPtrArray *members)
{
  const QomniTensor *first = members->len ? g_ptr_array_index (members, 0) : NULL;
  if (!first || first->ndim != 2)
    return FALSE;
  for (guint e = 0; e < members->len; e++) {
    const QomniTensor *t = g_ptr_array_index (members, e);
    if (!t || t->dtype != first->dtype || t->shape[0] != first->shape[0] ||
        t->shape[1] != first->shape[1])
      return FALSE;
  }
  return TRUE;
}

static GArray *
plan (Convert *c, const QomniWeights *w, GError **error)
{
  g_autoptr (GPtrArray) sources = g_ptr_array_new ();
  qomni_weights_foreach (w, collect_cb, sources);
  g_ptr_array_sort (sources, source_order);

  /* Pass 1: gather each expert stack's members by expert index. */
  g_autoptr (GHashTable) stacks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) g_ptr_array_unref);
  for (guint i = 0; i < sources->len; i++) {
    const QomniTensor *t = g_ptr_array_index (sources, i);
    int e;
    char *gname = qomni_gguf_name_from_release (t->name, &e);
    if (e < 0) {
      g_free (gname);
      continue;
    }
    GPtrArray *members = g_hash_table_lookup (stacks, gname);
    if (!members) {
      members = g_ptr_array_new ();
      g_hash_table_insert (stacks, g_strdup (gname), members);
    }
    if ((guint) e >= members->len)
      g_ptr_array_set_size (members, e + 1);
    g_ptr_array_index (members, e) = (gpointer) t;
    g_free (gname);
  }

  /* Pass 2: one output tensor per source, or per complete stack at its first member. */
  GArray *out = g_array_new (FALSE, TRUE, sizeof (OutTensor));
  g_array_set_clear_func (out, out_tensor_clear);
  g_autoptr (GHashTable) emitted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < sources->len; i++) {
    const QomniTensor *t = g_ptr_array_index (sources, i);
    int e;
    g_autofree char *gname = qomni_gguf_name_from_release (t->name, &e);
    GPtrArray *members = e >= 0 ? g_hash_table_lookup (stacks, gname) : NULL;
    OutTensor o = { 0 };
    if (members && stack_complete (members)) {
      if (g_hash_table_contains (emitted, gname))
        continue;
      g_hash_table_add (emitted, g_strdup (gname));
      const QomniTensor *first = g_ptr_array_index (members, 0);
      o.gguf_name = g_strdup (gname);
      o.release_name = first->name;
      o.ndim = 3;
      o.shape[0] = members->len;
      o.shape[1] = first->shape[0];
      o.shape[2] = first->shape[1];
      o.sources = g_ptr_array_ref (members);
      o.dtype = choose_dtype (c, first->name, first);
    } else {
      /* A member of a partial stack is written alone under its release name. */
      o.gguf_name = e < 0 && gname ? g_strdup (gname) : g_strdup (t->name);
      o.release_name = t->name;
      o.ndim = t->ndim;
      memcpy (o.shape, t->shape, sizeof o.shape);
      o.sources = g_ptr_array_new ();
      g_ptr_array_add (o.sources, (gpointer) t);
      o.dtype = choose_dtype (c, t->name, t);
    }
    guint32 ggml;
    if (!qomni_gguf_ggml_type (o.dtype, &ggml)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                   "%s: tensor '%s' is %s, which GGUF cannot store", t->file, t->name,
                   qomni_dtype_info (o.dtype)->name);
      out_tensor_clear (&o);
      g_array_unref (out);
      return NULL;
    }
    for (guint k = 0; k < o.sources->len; k++)
      c->total_bytes += ((const QomniTensor *) g_ptr_array_index (o.sources, k))->nbytes;
    g_array_append_val (out, o);
  }

  for (guint i = 0; i < c->n_keeps; i++) {
    if (!c->keeps[i].matched) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "--keep %s: no tensor of %s has a name under '%s'", c->keeps[i].prefix,
                   c->model_dir, c->keeps[i].prefix);
      g_array_unref (out);
      return NULL;
    }
  }
  return out;
}

/* ---- converting rows ---- */

static void
encode_f32 (const float *x, void *y, int64_t n)
{
  memcpy (y, x, (size_t) n * sizeof (float));
}

static void
encode_f16 (const float *x, void *y, int64_t n)
{
  uint16_t *h = y;
  for (int64_t i = 0; i < n; i++)
    h[i] = qomni_f32_to_f16 (x[i]);
}

static void
encode_bf16 (const float *x, void *y, int64_t n)
{
  uint16_t *h = y;
  for (int64_t i = 0; i < n; i++)
    h[i] = qomni_f32_to_bf16 (x[i]);
}

static void
encode_q8_0 (const float *x, void *y, int64_t n)
{
  qomni_quantize_row_q8_0_ref (x, y, n);
}

static void
encode_q4_0 (const float *x, void *y, int64_t n)
{
  qomni_quantize_row_q4_0_ref (x, y, n);
}

static void (*const encoders[QOMNI_DTYPE_COUNT]) (const float *, void *, int64_t) = {
  [QOMNI_DTYPE_F32] = encode_f32,
  [QOMNI_DTYPE_F16] = encode_f16,
  [QOMNI_DTYPE_BF16] = encode_bf16,
  [QOMNI_DTYPE_Q8_0] = encode_q8_0,
  [QOMNI_DTYPE_Q4_0] = encode_q4_0,
};

static void
report (Convert *c, const char *name, gboolean last)
{
  gint64 now = g_get_monotonic_time ();
  if (c->quiet || (!last && now - c->last_report_us < PROGRESS_INTERVAL_US))
    return;
  c->last_report_us = now;
  double pct = c->total_bytes ? 100.0 * (double) c->done_bytes / (double) c->total_bytes : 100.0;
  double secs = (double) (now - c->start_us) / G_USEC_PER_SEC;
  gboolean tty = isatty (fileno (stderr));
  fprintf (stderr, "%sconverting: %5.1f %% (%.2f of %.2f GB read, %.0f s)%s%s%s",
           tty ? "\r" : "", pct, (double) c->done_bytes / 1e9, (double) c->total_bytes / 1e9,
           secs, last ? "" : "  ", last ? "" : name, tty && !last ? "\033[K" : "\n");
  if (tty && last)
    fputc ('\n', stderr);
}

/* Streams one source tensor into the current output tensor, a chunk of rows at a time. */
static gboolean
write_source (Convert *c, QomniGgufWriter *w, const QomniTensor *t, QomniDType dtype,
              GError **error)
{
  if (t->dtype == dtype) {
    /* Same type: copy in slices, so progress moves during a multi-GB tensor. */
    for (size_t at = 0; at < t->nbytes; at += 64 << 20) {
      size_t n = MIN ((size_t) 64 << 20, t->nbytes - at);
      if (!qomni_gguf_writer_write (w, (const guint8 *) t->data + at, n, error))
        return FALSE;
      c->done_bytes += n;
      report (c, t->name, FALSE);
    }
    return TRUE;
  }
  g_assert (is_float (t->dtype) && encoders[dtype]);
  int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1;
  int64_t rows = cols ? qomni_tensor_nelements (t) / cols : 0;
  size_t src_row = qomni_dtype_nbytes (t->dtype, cols);
  size_t dst_row = qomni_dtype_nbytes (dtype, cols);
  int64_t chunk = MAX (1, CHUNK_ELEMENTS / MAX (cols, 1));
  g_autofree float *tmp = g_new (float, (size_t) (MIN (chunk, rows) * cols) + 1);
  g_autofree guint8 *buf = g_malloc ((size_t) MIN (chunk, rows) * dst_row + 1);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    int64_t nr = MIN (chunk, rows - r0);
    const guint8 *src = (const guint8 *) t->data + (size_t) r0 * src_row;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nr; r++) {
      qomni_to_f32 (t->dtype, src + (size_t) r * src_row, tmp + r * cols, cols);
      encoders[dtype] (tmp + r * cols, buf + (size_t) r * dst_row, cols);
    }
    if (!qomni_gguf_writer_write (w, buf, (size_t) nr * dst_row, error))
      return FALSE;
    c->done_bytes += (size_t) nr * src_row;
    report (c, t->name, FALSE);
  }
  return TRUE;
}

/* A value at a dotted path of the config JSON, or NULL. */
static gboolean
convert (Convert *c, GError **error)
{
  g_autofree char *config_path = g_build_filename (c->model_dir, "config.json", NULL);
  g_autofree char *json = NULL;
  gsize json_len = 0;
  GError *local = NULL;
  if (!g_file_get_contents (config_path, &json, &json_len, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot read %s: %s", config_path,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  g_autoptr (QomniConfig) cfg = qomni_config_load_from_data (json, (gssize) json_len,
                                                             config_path, error);
  if (!cfg)
    return FALSE;
  QomniWeights *w = qomni_weights_open (c->model_dir, error);
  if (!w)
    return FALSE;
  gboolean ok = FALSE;
  GArray *out = plan (c, w, error);
  g_autoptr (QomniGgufWriter) gw = qomni_gguf_writer_new ();
  if (!out)
    goto done;
  char *model_name = g_path_get_basename (c->model_dir);
  qomni_gguf_writer_set_model_metadata (gw, model_name, c->file_type, json, json_len, cfg);
  g_free (model_name);
  for (guint i = 0; i < out->len; i++) {
    OutTensor *o = &g_array_index (out, OutTensor, i);
    qomni_gguf_writer_add_tensor (gw, o->gguf_name, o->dtype, o->ndim, o->shape);
  }
  if (!qomni_gguf_writer_begin (gw, c->out_path, error))
    goto done;
  c->start_us = c->last_report_us = g_get_monotonic_time ();
  for (guint i = 0; i < out->len; i++) {
    OutTensor *o = &g_array_index (out, OutTensor, i);
    for (guint k = 0; k < o->sources->len; k++)
      if (!write_source (c, gw, g_ptr_array_index (o->sources, k), o->dtype, error))
        goto done;
    if (!qomni_gguf_writer_end_tensor (gw, error))
      goto done;
  }
  if (!qomni_gguf_writer_finish (gw, error))
    goto done;
  report (c, "", TRUE);
  if (!c->quiet)
    fprintf (stderr, "wrote %s: %u tensors\n", c->out_path, out->len);
  ok = TRUE;
done:
  if (out)
    g_array_unref (out);
  g_clear_pointer (&gw, qomni_gguf_writer_free);   /* before the input is unmapped */
  qomni_weights_free (w);
  return ok;
}

int
qomni_cmd_convert (int argc, char **argv)
{
  g_autofree char *model = NULL, *quant = NULL;
  g_auto (GStrv) keeps = NULL;
  gint min_elements = MIN_ELEMENTS_DEFAULT;
  gboolean quiet = FALSE;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Hugging Face checkpoint folder", "DIR" },
    { "quant", 'q', 0, G_OPTION_ARG_STRING, &quant, "q8_0, q4_0, bf16, f16 or f32", "TYPE" },
    { "keep", 'k', 0, G_OPTION_ARG_STRING_ARRAY, &keeps,
      "type for the tensors under a name prefix, e.g. code2wav=bf16 (repeatable)",
      "COMPONENT=TYPE" },
    { "min-elements", 0, 0, G_OPTION_ARG_INT, &min_elements,
      "tensors with fewer elements stay f32 (default 4096)", "N" },
    { "quiet", 0, 0, G_OPTION_ARG_NONE, &quiet, "no progress on stderr", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("OUT.gguf");
  g_option_context_set_summary (ctx, "Convert a Hugging Face Qwen3-Omni checkpoint to GGUF.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("qomni convert: %s\n", error->message);
    return 2;
  }
  if (!model || !quant || argc != 2) {
    g_printerr ("qomni convert: need --model DIR, --quant TYPE and one OUT.gguf\n");
    return 2;
  }
  Convert c = { .model_dir = model, .out_path = argv[1], .min_elements = min_elements,
                .quiet = quiet };
  if (!qomni_gguf_parse_file_type (quant, &c.target, &c.file_type)) {
    g_printerr ("qomni convert: unknown --quant %s (q8_0, q4_0, bf16, f16, f32)\n", quant);
    return 2;
  }
  c.n_keeps = keeps ? g_strv_length (keeps) : 0;
  g_autofree Keep *keep_list = g_new0 (Keep, c.n_keeps + 1);
  c.keeps = keep_list;
  for (guint i = 0; i < c.n_keeps; i++) {
    char *eq = strchr (keeps[i], '=');
    if (!eq || eq == keeps[i] || !qomni_gguf_parse_file_type (eq + 1, &keep_list[i].dtype, NULL)) {
      g_printerr ("qomni convert: --keep %s: expected COMPONENT=TYPE with TYPE one of q8_0, "
                  "q4_0, bf16, f16, f32\n", keeps[i]);
      return 2;
    }
    *eq = '\0';
    keep_list[i].prefix = keeps[i];
  }
  if (!convert (&c, &error)) {
    g_printerr ("qomni convert: %s\n", error->message);
    return 1;
  }
  return 0;
}
