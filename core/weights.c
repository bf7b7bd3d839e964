/* qomni — weight store and safetensors reader.
 *
 * safetensors: 8 bytes little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data;
 * offsets count from the end of the header. Every number in the header is checked against
 * the file size before a pointer is formed, so a hostile file cannot make us read past it.
 */
#include "weights.h"
#include "error.h"
#include "gguf.h"

#include <json-glib/json-glib.h>
#include <string.h>

G_DEFINE_QUARK (qomni-error-quark, qomni_error)

struct _QomniWeights {
  char *dir;
  GHashTable *tensors;   /* name (owned by the QomniTensor) -> QomniTensor* */
  GPtrArray *mappings;   /* GMappedFile* */
  GStringChunk *strings; /* names and file paths */
  GPtrArray *buffers;    /* memory the store owns (weights made in memory) */
  guint serial;          /* qomni_weights_serial */
};

static void
tensor_free (gpointer p)
{
  g_free (p);
}

QomniWeights *
qomni_weights_new_empty (const char *dir)
{
  QomniWeights *w = g_new0 (QomniWeights, 1);
  w->dir = g_strdup (dir);
  w->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, tensor_free);
  w->mappings = g_ptr_array_new_with_free_func ((GDestroyNotify) g_mapped_file_unref);
  w->strings = g_string_chunk_new (4096);
  w->buffers = g_ptr_array_new_with_free_func (g_free);
  static gint next_serial;
  w->serial = (guint) g_atomic_int_add (&next_serial, 1) + 1;
  return w;
}

guint
qomni_weights_serial (const QomniWeights *w)
{
  return w->serial;
}

void
qomni_weights_free (QomniWeights *w)
{
  if (!w)
    return;
  g_hash_table_destroy (w->tensors);
  g_ptr_array_free (w->mappings, TRUE);
  g_ptr_array_free (w->buffers, TRUE);
  g_string_chunk_free (w->strings);
  g_free (w->dir);
  g_free (w);
}

const char *
qomni_weights_dir (const QomniWeights *w)
{
  return w->dir;
}

guint
qomni_weights_count (const QomniWeights *w)
{
  return g_hash_table_size (w->tensors);
}

void
qomni_weights_keep_mapping (QomniWeights *w, GMappedFile *mapped)
{
  g_ptr_array_add (w->mappings, g_mapped_file_ref (mapped));
}

void
qomni_weights_take_buffer (QomniWeights *w, gpointer data)
{
  g_ptr_array_add (w->buffers, data);
}

void
qomni_weights_add_tensor (QomniWeights *w, const QomniTensor *t)
{
  QomniTensor *copy = g_new (QomniTensor, 1);
  *copy = *t;
  copy->name = g_string_chunk_insert_const (w->strings, t->name);
  if (t->file)
    copy->file = g_string_chunk_insert_const (w->strings, t->file);
  g_hash_table_replace (w->tensors, (gpointer) copy->name, copy);
}

const QomniTensor *
qomni_weights_find (const QomniWeights *w, const char *name)
{
  return g_hash_table_lookup (w->tensors, name);
}

const QomniTensor *
qomni_weights_findf (const QomniWeights *w, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return qomni_weights_find (w, name);
}

const QomniTensor *
qomni_weights_get (const QomniWeights *w, GError **error, int ndim, const int64_t *shape,
                   const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);

  const QomniTensor *t = qomni_weights_find (w, name);
  if (!t) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "%s: tensor '%s' is missing from the checkpoint", w->dir, name);
    return NULL;
  }
  gboolean same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    char want[128], have[128];
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: tensor '%s' has shape %s, the config implies %s", t->file, name,
                 qomni_shape_string (t->ndim, t->shape, have, sizeof have),
                 qomni_shape_string (ndim, shape, want, sizeof want));
    return NULL;
  }
  switch (t->dtype) {
    case QOMNI_DTYPE_F32:
    case QOMNI_DTYPE_F16:
    case QOMNI_DTYPE_BF16:
    case QOMNI_DTYPE_Q8_0:
    case QOMNI_DTYPE_Q4_0:
      break;
    default:
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "%s: tensor '%s' is %s; a weight must be f32, f16, bf16, q8_0 or q4_0",
                   t->file, name, qomni_dtype_info (t->dtype)->name);
      return NULL;
  }
  return t;
}

float *
qomni_weights_get_f32 (const QomniWeights *w, GError **error, int64_t len, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const QomniTensor *t = qomni_weights_get (w, error, 1, (int64_t[]) { len }, "%s", name);
  if (!t)
    return NULL;
  float *out = g_new (float, MAX (len, 1));
  qomni_to_f32 (t->dtype, t->data, out, len);
  return out;
}

typedef struct {
  void (*fn) (const QomniTensor *, gpointer);
  gpointer user;
} ForeachData;

static void
foreach_cb (gpointer key, gpointer value, gpointer user)
{
  (void) key;
  ForeachData *d = user;
  d->fn (value, d->user);
}

void
qomni_weights_foreach (const QomniWeights *w, void (*fn) (const QomniTensor *, gpointer),
                       gpointer user)
{
  ForeachData d = { fn, user };
  g_hash_table_foreach (w->tensors, foreach_cb, &d);
}

/* Registers per-expert 2-D views of a fused [E, R, C] expert tensor. `which` names the
 * release's per-expert weight(s): gate_up splits its R rows in halves, gate first. */
static void
add_fused_expert_views (QomniWeights *w, const QomniTensor *t, const char *prefix,
                        gboolean gate_up)
{
  int64_t experts = t->shape[0], rows = t->shape[1], cols = t->shape[2];
  size_t per_expert = qomni_dtype_nbytes (t->dtype, rows * cols);
  for (int64_t e = 0; e < experts; e++) {
    const guint8 *base = (const guint8 *) t->data + (size_t) e * per_expert;
    QomniTensor v = { .dtype = t->dtype, .ndim = 2, .file = t->file };
    if (gate_up) {
      int64_t half = rows / 2;
      size_t half_bytes = qomni_dtype_nbytes (t->dtype, half * cols);
      const char *names[2] = { "gate_proj", "up_proj" };
      for (int k = 0; k < 2; k++) {
        g_autofree char *name = g_strdup_printf ("%s.%" G_GINT64_FORMAT ".%s.weight", prefix, e,
                                                 names[k]);
        v.name = name;
        v.shape[0] = half;
        v.shape[1] = cols;
        v.data = base + k * half_bytes;
        v.nbytes = half_bytes;
        qomni_weights_add_tensor (w, &v);
      }
    } else {
      g_autofree char *name = g_strdup_printf ("%s.%" G_GINT64_FORMAT ".down_proj.weight",
                                               prefix, e);
      v.name = name;
      v.shape[0] = rows;
      v.shape[1] = cols;
      v.data = base;
      v.nbytes = per_expert;
      qomni_weights_add_tensor (w, &v);
    }
  }
}

static void
expose_fused_experts (QomniWeights *w, const QomniTensor *t)
{
  static const char *const suffixes[] = {
    ".experts.gate_up_proj", ".experts.gate_up_proj.weight",
    ".experts.down_proj", ".experts.down_proj.weight",
  };
  if (t->ndim != 3)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    if (g_str_has_suffix (t->name, suffixes[i])) {
      const char *dot = strstr (suffixes[i], ".gate_up_proj") ? ".gate_up_proj" : ".down_proj";
      g_autofree char *prefix = g_strndup (t->name, strlen (t->name) - strlen (suffixes[i])
                                                    + strlen (".experts"));
      add_fused_expert_views (w, t, prefix, strcmp (dot, ".gate_up_proj") == 0);
      return;
    }
  }
}

static gboolean
json_get_uint (JsonNode *node, guint64 *out)
{
  if (!node || JSON_NODE_TYPE (node) != JSON_NODE_VALUE ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

gboolean
qomni_weights_add_safetensors (QomniWeights *w, const char *file, GError **error)
{
  GError *local = NULL;
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (file, FALSE, &local);
  if (!mapped) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot open weight file %s: %s", file,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (mapped);
  guint64 size = g_mapped_file_get_length (mapped);
  if (size < 8) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: not a safetensors file (%" G_GUINT64_FORMAT " bytes, shorter than its "
                 "8-byte header length)", file, size);
    return FALSE;
  }
  guint64 header_len = 0;
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8 || header_len > 100 * 1024 * 1024) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: safetensors header claims %" G_GUINT64_FORMAT " bytes but the file has "
                 "%" G_GUINT64_FORMAT " (truncated or not a safetensors file)", file, header_len,
                 size);
    return FALSE;
  }
  const guint8 *data = bytes + 8 + header_len;
  guint64 data_size = size - 8 - header_len;

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, (const char *) bytes + 8, (gssize) header_len, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: safetensors header is not JSON: %s",
                 file, local->message);
    g_error_free (local);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: safetensors header is not a JSON object", file);
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (obj);
  GPtrArray *fused = g_ptr_array_new ();
  gboolean ok = TRUE;
  for (GList *l = members; l && ok; l = l->next) {
    const char *name = l->data;
    if (strcmp (name, "__metadata__") == 0)
      continue;
    JsonNode *entry = json_object_get_member (obj, name);
    JsonObject *eo = JSON_NODE_HOLDS_OBJECT (entry) ? json_node_get_object (entry) : NULL;
    JsonNode *dtype_node = eo ? json_object_get_member (eo, "dtype") : NULL;
    JsonNode *shape_node = eo ? json_object_get_member (eo, "shape") : NULL;
    JsonNode *offs_node = eo ? json_object_get_member (eo, "data_offsets") : NULL;
    if (!dtype_node || !JSON_NODE_HOLDS_VALUE (dtype_node) ||
        json_node_get_value_type (dtype_node) != G_TYPE_STRING || !shape_node ||
        !JSON_NODE_HOLDS_ARRAY (shape_node) || !offs_node || !JSON_NODE_HOLDS_ARRAY (offs_node)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s': header entry lacks dtype, shape or data_offsets", file, name);
      ok = FALSE;
      break;
    }
    QomniTensor t = { .name = name, .file = file };
    const char *dtype_name = json_node_get_string (dtype_node);
    if (!qomni_dtype_from_safetensors (dtype_name, &t.dtype)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                   "%s: tensor '%s' has dtype %s, which qomni does not read", file, name,
                   dtype_name);
      ok = FALSE;
      break;
    }
    JsonArray *shape = json_node_get_array (shape_node);
    JsonArray *offs = json_node_get_array (offs_node);
    guint ndim = json_array_get_length (shape);
    if (ndim > QOMNI_MAX_DIMS || json_array_get_length (offs) != 2) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s': %u dimensions or malformed data_offsets", file, name, ndim);
      ok = FALSE;
      break;
    }
    t.ndim = (int) ndim;
    guint64 n = 1;
    for (guint i = 0; i < ndim; i++) {
      guint64 d;
      if (!json_get_uint (json_array_get_element (shape, i), &d) || d > (1ull << 40) ||
          (d && n > (1ull << 40) / d)) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                     "%s: tensor '%s': dimension %u is not a sane non-negative integer", file,
                     name, i);
        ok = FALSE;
        break;
      }
      t.shape[i] = (int64_t) d;
      n *= d;
    }
    if (!ok)
      break;
    guint64 begin, end;
    if (!json_get_uint (json_array_get_element (offs, 0), &begin) ||
        !json_get_uint (json_array_get_element (offs, 1), &end) || begin > end ||
        end > data_size) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s': data_offsets point past the end of the file (data section "
                   "is %" G_GUINT64_FORMAT " bytes; truncated file?)", file, name, data_size);
      ok = FALSE;
      break;
    }
    guint64 want = n * (guint64) qomni_dtype_info (t.dtype)->block_bytes;
    if (end - begin != want) {
      char shp[128];
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "%s: tensor '%s': %s %s needs %" G_GUINT64_FORMAT " bytes but its offsets "
                   "span %" G_GUINT64_FORMAT, file, name, dtype_name,
                   qomni_shape_string (t.ndim, t.shape, shp, sizeof shp), want, end - begin);
      ok = FALSE;
      break;
    }
    t.data = data + begin;
    t.nbytes = (size_t) want;
    qomni_weights_add_tensor (w, &t);
    if (t.ndim == 3 && strstr (name, ".experts."))
      g_ptr_array_add (fused, (gpointer) qomni_weights_find (w, name));
  }
  if (ok) {
    for (guint i = 0; i < fused->len; i++)
      expose_fused_experts (w, g_ptr_array_index (fused, i));
    qomni_weights_keep_mapping (w, mapped);
  }
  g_ptr_array_free (fused, TRUE);
  return ok;
}

static gboolean
load_index (QomniWeights *w, const char *index_path, GError **error)
{
  GError *local = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (!json_parser_load_from_mapped_file (parser, index_path, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: %s", index_path, local->message);
    g_error_free (local);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *map = NULL;
  if (root && JSON_NODE_HOLDS_OBJECT (root)) {
    JsonObject *o = json_node_get_object (root);
    if (json_object_has_member (o, "weight_map") &&
        JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "weight_map")))
      map = json_object_get_object_member (o, "weight_map");
  }
  if (!map) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: no \"weight_map\" object",
                 index_path);
    return FALSE;
  }
  /* Load each shard once, in name order so errors are deterministic. */
  g_autoptr (GHashTable) shards = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GList) names = json_object_get_members (map);
  for (GList *l = names; l; l = l->next) {
    JsonNode *n = json_object_get_member (map, l->data);
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: weight_map entry '%s' is not a file name", index_path,
                   (const char *) l->data);
      return FALSE;
    }
    const char *shard = json_node_get_string (n);
    if (strchr (shard, '/') || strcmp (shard, "..") == 0) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: shard name '%s' must be a plain file name", index_path, shard);
      return FALSE;
    }
    g_hash_table_add (shards, (gpointer) shard);
  }
  g_autoptr (GList) shard_list = g_hash_table_get_keys (shards);
  shard_list = g_list_sort (shard_list, (GCompareFunc) strcmp);
  for (GList *l = shard_list; l; l = l->next) {
    g_autofree char *path = g_build_filename (w->dir, l->data, NULL);
    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO,
                   "shard %s named by %s is missing", path, index_path);
      return FALSE;
    }
    if (!qomni_weights_add_safetensors (w, path, error))
      return FALSE;
  }
  /* The index is a promise: every tensor it names must be in the shard it names. */
  for (GList *l = names; l; l = l->next) {
    const QomniTensor *t = qomni_weights_find (w, l->data);
    const char *shard = json_object_get_string_member (map, l->data);
    if (!t || !g_str_has_suffix (t->file, shard)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                   "%s: tensor '%s' is listed in %s but not found in that shard", w->dir,
                   (const char *) l->data, shard);
      return FALSE;
    }
  }
  return TRUE;
}

QomniWeights *
qomni_weights_open (const char *path, GError **error)
{
  if (g_str_has_suffix (path, ".gguf") && !g_file_test (path, G_FILE_TEST_IS_DIR))
    return qomni_gguf_load_weights (path, error);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    QomniWeights *w = qomni_weights_new_empty (path);
    g_autofree char *index = g_build_filename (path, "model.safetensors.index.json", NULL);
    g_autofree char *single = g_build_filename (path, "model.safetensors", NULL);
    gboolean ok;
    if (g_file_test (index, G_FILE_TEST_EXISTS))
      ok = load_index (w, index, error);
    else if (g_file_test (single, G_FILE_TEST_EXISTS))
      ok = qomni_weights_add_safetensors (w, single, error);
    else {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO,
                   "%s has neither model.safetensors.index.json nor model.safetensors", path);
      ok = FALSE;
    }
    if (!ok) {
      qomni_weights_free (w);
      return NULL;
    }
    return w;
  }
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "model path %s does not exist", path);
    return NULL;
  }
  g_autofree char *dir = g_path_get_dirname (path);
  QomniWeights *w = qomni_weights_new_empty (dir);
  if (!qomni_weights_add_safetensors (w, path, error)) {
    qomni_weights_free (w);
    return NULL;
  }
  return w;
}
