/* qomni — a GGUF file as a weight store, and the model config it carries.
 *
 * The model code asks for tensors by their release names whatever the file format, so the
 * GGUF names are translated here (gguf-names.c) and llama.cpp's stacked experts become
 * per-expert 2-D views: expert e of a [E, R, C] tensor is its e-th contiguous slice.
 */
#include "gguf.h"
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
