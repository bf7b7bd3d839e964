/* qomni — a loaded model: config, memory-mapped weights and tokenizer, shared by every
 * component and element of a process (weights load once; a GstContext hands the same
 * QomniModel to every element of a pipeline).
 *
 *   QomniModel *m = qomni_model_load ("/models/Qwen3-Omni-30B-A3B-Instruct", &error);
 *   QomniThinker *t = qomni_thinker_new (m->weights, m->config, 4096, &error);
 *   ...
 *   qomni_model_unref (m);
 */
#pragma once

#include "config.h"
#include "tokenizer.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct {
  char *path;               /* as given */
  QomniConfig *config;
  QomniWeights *weights;
  QomniTokenizer *tokenizer;
} QomniModel;

/* (transfer full) A Hugging Face folder (config.json + safetensors) or a qomni GGUF file. */
QomniModel *qomni_model_load (const char *path, GError **error);
/* (transfer full) A model of parts made in memory (random weights for benchmarks): takes
 * config, weights and tokenizer; path only names it. */
QomniModel *qomni_model_new (const char *path, QomniConfig *config, QomniWeights *weights,
                             QomniTokenizer *tokenizer);
QomniModel *qomni_model_ref (QomniModel *model);
void qomni_model_unref (QomniModel *model);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniModel, qomni_model_unref)

G_END_DECLS
