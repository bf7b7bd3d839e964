/* qomni — model loading. */
#include "model.h"
#include "error.h"
#include "gguf.h"

static void
model_clear (gpointer p)
{
  QomniModel *m = p;
  g_free (m->path);
  qomni_config_free (m->config);
  qomni_weights_free (m->weights);
  if (m->tokenizer)
    qomni_tokenizer_free (m->tokenizer);
}

QomniModel *
qomni_model_load (const char *path, GError **error)
{
  if (!path || !*path) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "no model path given");
    return NULL;
  }
  QomniModel *m = g_atomic_rc_box_new0 (QomniModel);
  m->path = g_strdup (path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_autofree char *cfg = g_build_filename (path, "config.json", NULL);
    m->config = qomni_config_load (cfg, error);
  } else if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "model path %s does not exist", path);
  } else if (g_str_has_suffix (path, ".gguf")) {
    /* a qomni GGUF carries the config in its metadata (docs/gguf.md) */
    m->config = qomni_gguf_read_config (path, error);
  } else {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: expected a checkpoint folder with config.json or a .gguf file", path);
  }
  if (m->config)
    m->weights = qomni_weights_open (path, error);
  if (m->weights)
    m->tokenizer = qomni_tokenizer_load_for_model (qomni_weights_dir (m->weights), error);
  if (!m->tokenizer) {
    qomni_model_unref (m);
    return NULL;
  }
  return m;
}

QomniModel *
qomni_model_new (const char *path, QomniConfig *config, QomniWeights *weights,
                 QomniTokenizer *tokenizer)
{
  QomniModel *m = g_atomic_rc_box_new0 (QomniModel);
  m->path = g_strdup (path);
  m->config = config;
  m->weights = weights;
  m->tokenizer = tokenizer;
  return m;
}

QomniModel *
qomni_model_ref (QomniModel *m)
{
  return g_atomic_rc_box_acquire (m);
}

void
qomni_model_unref (QomniModel *m)
{
  if (m)
    g_atomic_rc_box_release_full (m, model_clear);
}
