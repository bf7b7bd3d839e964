/* qomni — the weight store: every tensor of a checkpoint by its release name.
 *
 *   GError *error = NULL;
 *   QomniWeights *w = qomni_weights_open ("Qwen3-Omni-30B-A3B-Instruct", &error);
 *   const QomniTensor *t = qomni_weights_get (w, &error, 2, (int64_t[]) { 152064, 2048 },
 *                                             "thinker.lm_head.weight");
 *   ...
 *   qomni_weights_free (w);   // unmaps every file; every QomniTensor pointer dies with it
 *
 * Accepted inputs: a Hugging Face folder (model.safetensors.index.json and its shards, or a
 * single model.safetensors), a single .safetensors file, a .gguf file (gguf.h; tensors under
 * their release names, stacked experts as per-expert views). Files are memory-mapped, never read
 * whole. Experts re-saved by transformers v5 as fused 3-D tensors
 * (`mlp.experts.gate_up_proj [E, 2I, H]`, `mlp.experts.down_proj [E, H, I]`) are exposed as
 * the release's per-expert 2-D names, as views.
 */
#pragma once

#include "tensor.h"

G_BEGIN_DECLS

typedef struct _QomniWeights QomniWeights;

/* (transfer full) */
QomniWeights *qomni_weights_open (const char *path, GError **error);
void qomni_weights_free (QomniWeights *weights);

/* The folder that holds the weights (for config.json and tokenizer files). */
const char *qomni_weights_dir (const QomniWeights *weights);
guint qomni_weights_count (const QomniWeights *weights);
/* A number no other store of the process has had: names the store in caches that outlive
 * it (a freed store's address may come back for another). */
guint qomni_weights_serial (const QomniWeights *weights);
/* (transfer none) NULL when absent. */
const QomniTensor *qomni_weights_find (const QomniWeights *weights, const char *name);
/* Like find, with the name built printf-style; NULL when absent. */
const QomniTensor *qomni_weights_findf (const QomniWeights *weights, const char *fmt, ...)
    G_GNUC_PRINTF (2, 3);

/* (transfer none) The tensor named printf-style, checked to exist, to hold a float dtype
 * and to have exactly `shape`. On failure a QOMNI_ERROR naming the file and tensor. */
const QomniTensor *qomni_weights_get (const QomniWeights *weights, GError **error, int ndim,
                                      const int64_t *shape, const char *fmt, ...)
    G_GNUC_PRINTF (5, 6);

/* (transfer full) The 1-D tensor named printf-style, checked to have len elements, as
 * floats: norm gains, biases, scales. NULL with the error of qomni_weights_get. */
float *qomni_weights_get_f32 (const QomniWeights *weights, GError **error, int64_t len,
                              const char *fmt, ...) G_GNUC_PRINTF (4, 5);

/* Calls fn for every tensor, in no particular order. */
void qomni_weights_foreach (const QomniWeights *weights,
                            void (*fn) (const QomniTensor *t, gpointer user), gpointer user);

/* Adds every tensor of one safetensors file (used by the loader and by GGUF's sibling). */
gboolean qomni_weights_add_safetensors (QomniWeights *weights, const char *file, GError **error);

/* An empty store rooted at dir; for loaders of other formats. (transfer full) */
QomniWeights *qomni_weights_new_empty (const char *dir);
/* Keeps `mapped` alive as long as the store and registers a tensor whose bytes live in it.
 * The name is copied. */
void qomni_weights_add_tensor (QomniWeights *weights, const QomniTensor *t);
void qomni_weights_keep_mapping (QomniWeights *weights, GMappedFile *mapped);
/* The store frees `data` (g_free) when it is freed: for weights made in memory. */
void qomni_weights_take_buffer (QomniWeights *weights, gpointer data);

G_END_DECLS
