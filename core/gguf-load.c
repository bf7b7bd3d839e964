/* qomni — a GGUF file as a weight store, and the model config it carries.
 *
 * The model code asks for tensors by their release names whatever the file format, so the
 * GGUF names are translated here (gguf-names.c) and llama.cpp's stacked experts become
 * per-expert 2-D views: expert e of a [E, R, C] tensor is its e-th contiguous slice.
 */
#include "gguf.h"

#include <json-glib/json-glib.h>
#include "error.h"

#include <string.h>

static gboolean
add_unique (QomniWeights *w, const QomniTensor *t, const char *gguf_name, GError **error)
{
  if (qomni_weights_find (w, t->name)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: tensor '%s' (from GGUF tensor '%s') appears twice", t->file, t->name,
                 gguf_name);
    return FALSE;
  }
  qomni_weights_add_tensor (w, t);
  return TRUE;
}

static gboolean
add_expert_views (QomniWeights *w, const QomniTensor *t, GError **error)
{
  if (t->ndim != 3 || t->shape[0] == 0) {
    char shp[128];
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: tensor '%s' has shape %s; stacked experts must be [experts, rows, cols]",
                 t->file, t->name, qomni_shape_string (t->ndim, t->shape, shp, sizeof shp));
    return FALSE;
  }
  size_t per_expert = t->nbytes / (size_t) t->shape[0];
  for (int64_t e = 0; e < t->shape[0]; e++) {
    g_autofree char *name = qomni_gguf_name_to_release (t->name, (int) e);
    QomniTensor v = {
      .name = name, .dtype = t->dtype, .ndim = 2, .shape = { t->shape[1], t->shape[2] },
      .data = (const guint8 *) t->data + (size_t) e * per_expert, .nbytes = per_expert,
      .file = t->file,
    };
    if (!add_unique (w, &v, t->name, error))
      return FALSE;
  }
  return TRUE;
}

QomniWeights *
qomni_gguf_load_weights (const char *path, GError **error)
{
  g_autoptr (QomniGguf) g = qomni_gguf_open (path, error);
  if (!g)
    return NULL;
  g_autofree char *dir = g_path_get_dirname (path);
  QomniWeights *w = qomni_weights_new_empty (dir);
  for (guint i = 0; i < qomni_gguf_n_tensors (g); i++) {
    const QomniTensor *t = qomni_gguf_tensor (g, i);
    gboolean ok;
    if (qomni_gguf_name_is_expert_stack (t->name)) {
      ok = add_expert_views (w, t, error);
    } else {
      g_autofree char *release = qomni_gguf_name_to_release (t->name, 0);
      QomniTensor copy = *t;
      if (release)
        copy.name = release;
      ok = add_unique (w, &copy, t->name, error);
    }
    if (!ok) {
      qomni_weights_free (w);
      return NULL;
    }
  }
  qomni_weights_keep_mapping (w, qomni_gguf_mapping (g));
  return w;
}

QomniConfig *
qomni_gguf_read_config (const char *path, GError **error)
{
  g_autoptr (QomniGguf) g = qomni_gguf_open (path, error);
  if (!g)
    return NULL;
  const QomniGgufValue *v = qomni_gguf_find (g, "qomni.config_json");
  if (!v || v->type != QOMNI_GGUF_STRING) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "%s: no string key qomni.config_json holding the model config (files made "
                 "by other tools need the checkpoint's config.json beside them)", path);
    return NULL;
  }
  g_autofree char *origin = g_strdup_printf ("%s (qomni.config_json)", path);
  return qomni_config_load_from_data (v->str, (gssize) v->str_len, origin, error);
}

/* Output types a user may ask for, with llama.cpp's general.file_type for each. */
static const struct {
  const char *name;
  QomniDType dtype;
  guint32 file_type;
} file_types[] = {
  { "f32",  QOMNI_DTYPE_F32,  0 },
  { "f16",  QOMNI_DTYPE_F16,  1 },
  { "q4_0", QOMNI_DTYPE_Q4_0, 2 },
  { "q8_0", QOMNI_DTYPE_Q8_0, 7 },
  { "bf16", QOMNI_DTYPE_BF16, 32 },
};

gboolean
qomni_gguf_parse_file_type (const char *name, QomniDType *dtype, guint32 *file_type)
{
  for (guint i = 0; i < G_N_ELEMENTS (file_types); i++) {
    if (g_ascii_strcasecmp (name, file_types[i].name) == 0) {
      *dtype = file_types[i].dtype;
      if (file_type)
        *file_type = file_types[i].file_type;
      return TRUE;
    }
  }
  return FALSE;
}

static JsonNode *
json_path (JsonObject *root, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  JsonNode *node = NULL;
  for (guint i = 0; parts[i]; i++) {
    if (!root || !json_object_has_member (root, parts[i]))
      return NULL;
    node = json_object_get_member (root, parts[i]);
    root = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  }
  return node;
}

/* The model config travels whole in qomni.config_json; the llama.cpp-style keys of the
 * thinker's text model are filled for tools that look at GGUF headers. */
void
qomni_gguf_writer_set_model_metadata (QomniGgufWriter *w, const char *name, guint32 file_type,
                                      const char *json, gsize json_len, const QomniConfig *cfg)
{
  qomni_gguf_writer_set_string (w, "general.architecture", "qwen3omnimoe");
  qomni_gguf_writer_set_string (w, "general.name", name);
  qomni_gguf_writer_set_u32 (w, "general.file_type", file_type);
  qomni_gguf_writer_set_u32 (w, "general.quantization_version", 2);
  qomni_gguf_writer_set_u32 (w, "qomni.format_version", 1);
  g_autofree char *text = g_strndup (json, json_len);
  qomni_gguf_writer_set_string (w, "qomni.config_json", text);

  const QomniTextConfig *t = &cfg->thinker.text;
#define ARCH "qwen3vlmoe."
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (json_parser_load_from_data (parser, json, (gssize) json_len, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    JsonNode *ctx = json_path (json_node_get_object (json_parser_get_root (parser)),
                               "thinker_config.text_config.max_position_embeddings");
    if (ctx && JSON_NODE_HOLDS_VALUE (ctx) && json_node_get_value_type (ctx) == G_TYPE_INT64)
      qomni_gguf_writer_set_u32 (w, ARCH "context_length", (guint32) json_node_get_int (ctx));
  }
  qomni_gguf_writer_set_u32 (w, ARCH "block_count", (guint32) t->num_hidden_layers);
  qomni_gguf_writer_set_u32 (w, ARCH "embedding_length", (guint32) t->hidden_size);
  qomni_gguf_writer_set_u32 (w, ARCH "feed_forward_length", (guint32) t->intermediate_size);
  qomni_gguf_writer_set_u32 (w, ARCH "expert_feed_forward_length",
                             (guint32) t->moe_intermediate_size);
  qomni_gguf_writer_set_u32 (w, ARCH "expert_count", (guint32) t->num_experts);
  qomni_gguf_writer_set_u32 (w, ARCH "expert_used_count", (guint32) t->num_experts_per_tok);
  qomni_gguf_writer_set_u32 (w, ARCH "attention.head_count", (guint32) t->num_attention_heads);
  qomni_gguf_writer_set_u32 (w, ARCH "attention.head_count_kv",
                             (guint32) t->num_key_value_heads);
  qomni_gguf_writer_set_u32 (w, ARCH "attention.key_length", (guint32) t->head_dim);
  qomni_gguf_writer_set_u32 (w, ARCH "attention.value_length", (guint32) t->head_dim);
  qomni_gguf_writer_set_f32 (w, ARCH "attention.layer_norm_rms_epsilon", (float) t->rms_norm_eps);
  qomni_gguf_writer_set_f32 (w, ARCH "rope.freq_base", (float) t->rope_theta);
  gint32 sections[4] = { t->mrope_section[0], t->mrope_section[1], t->mrope_section[2], 0 };
  qomni_gguf_writer_set_array (w, ARCH "rope.dimension_sections", QOMNI_GGUF_INT32, sections, 4);
  qomni_gguf_writer_set_u32 (w, ARCH "vocab_size", (guint32) t->vocab_size);
  qomni_gguf_writer_set_bool (w, ARCH "expert_weights_norm", t->norm_topk_prob);
#undef ARCH
}

