/* qomni — GGUF files: a memory-mapped reader, a streaming writer, and the loader that puts a
 * GGUF file's tensors into a QomniWeights under the release's Hugging Face names.
 *
 * Reading:
 *   QomniGguf *g = qomni_gguf_open ("model.gguf", &error);
 *   const char *arch = qomni_gguf_get_string (g, "general.architecture");
 *   for (guint i = 0; i < qomni_gguf_n_tensors (g); i++) {
 *     const QomniTensor *t = qomni_gguf_tensor (g, i);  // GGUF name, outermost-first shape
 *     ...
 *   }
 *   qomni_gguf_free (g);                  // unmaps the file; every pointer above dies
 *
 * Writing (never holds more than the caller's current chunk):
 *   QomniGgufWriter *w = qomni_gguf_writer_new ();
 *   qomni_gguf_writer_set_string (w, "general.architecture", "qwen3omnimoe");
 *   qomni_gguf_writer_add_tensor (w, "a.weight", QOMNI_DTYPE_Q8_0, 2, (int64_t[]) { 64, 32 });
 *   ... every tensor info, in the order the data will follow ...
 *   qomni_gguf_writer_begin (w, "out.gguf", &error);       // header + infos go out here
 *   qomni_gguf_writer_write (w, bytes, n, &error);         // tensor data, in pieces if wanted
 *   qomni_gguf_writer_end_tensor (w, &error);              // checks the size, pads
 *   ...
 *   qomni_gguf_writer_finish (w, &error);                  // renames OUT.part to OUT
 *   qomni_gguf_writer_free (w);                            // unfinished: removes OUT.part
 *
 * Format: little-endian "GGUF", version 3 (2 is read too: same layout), tensor and key/value
 * counts, the key/values, the tensor infos (dims innermost first, ggml type, offset into the
 * data section), padding to `general.alignment` (default 32), the data section.
 * Shapes here are always outermost first, as in QomniTensor; the reversal happens at the
 * file boundary. Tensors of more than 4 dimensions (ggml's limit) are written as 4-D with
 * the outer dimensions folded together and their true shape under
 * `qomni.shape.<tensor name>` (int64 array, outermost first); the reader unfolds them.
 */
#pragma once

#include "tensor.h"
#include "config.h"
#include "weights.h"

G_BEGIN_DECLS

#define QOMNI_GGUF_DEFAULT_ALIGNMENT 32

/* Key/value types, numbered as the format numbers them. */
typedef enum {
  QOMNI_GGUF_UINT8 = 0,
  QOMNI_GGUF_INT8 = 1,
  QOMNI_GGUF_UINT16 = 2,
  QOMNI_GGUF_INT16 = 3,
  QOMNI_GGUF_UINT32 = 4,
  QOMNI_GGUF_INT32 = 5,
  QOMNI_GGUF_FLOAT32 = 6,
  QOMNI_GGUF_BOOL = 7,
  QOMNI_GGUF_STRING = 8,
  QOMNI_GGUF_ARRAY = 9,
  QOMNI_GGUF_UINT64 = 10,
  QOMNI_GGUF_INT64 = 11,
  QOMNI_GGUF_FLOAT64 = 12,
  QOMNI_GGUF_N_TYPES
} QomniGgufType;

/* One key/value as read. Scalars are widened into the union (integers into i64/u64 by
 * signedness, floats into f64). Arrays of scalars point at the raw little-endian elements
 * in the mapped file; arrays of strings are decoded into NUL-terminated strings. */
typedef struct {
  const char *key;
  QomniGgufType type;
  union {
    guint64 u64;
    gint64 i64;
    double f64;
    gboolean b;
    const char *str;          /* STRING: NUL-terminated copy (GGUF strings are not) */
  };
  gsize str_len;              /* STRING: length without the NUL */
  QomniGgufType array_type;   /* ARRAY only */
  guint64 array_len;          /* ARRAY only */
  const void *array_data;     /* ARRAY of scalars: raw elements; of strings: const char ** */
} QomniGgufValue;

/* Bytes of one scalar of a key/value type; 0 for STRING and ARRAY. */
gsize qomni_gguf_type_size (QomniGgufType type);
const char *qomni_gguf_type_name (QomniGgufType type);

/* ggml's tensor type numbers for our dtypes; FALSE when ggml has none (u8). */
gboolean qomni_gguf_ggml_type (QomniDType dtype, guint32 *out);
/* Our dtype for a ggml type number; FALSE when qomni does not read that type. */
gboolean qomni_gguf_dtype_from_ggml (guint32 ggml_type, QomniDType *out);

/* ---- reader ---- */

typedef struct _QomniGguf QomniGguf;

/* (transfer full) Maps and validates the whole file: every string, array, tensor offset and
 * tensor byte size is checked against the file size before anything points into it.
 * Errors are QOMNI_ERROR, naming the file and, where there is one, the key or tensor. */
QomniGguf *qomni_gguf_open (const char *path, GError **error);
void qomni_gguf_free (QomniGguf *gguf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniGguf, qomni_gguf_free)

const char *qomni_gguf_path (const QomniGguf *gguf);
guint32 qomni_gguf_version (const QomniGguf *gguf);
guint32 qomni_gguf_alignment (const QomniGguf *gguf);
GMappedFile *qomni_gguf_mapping (const QomniGguf *gguf);   /* (transfer none) */

guint qomni_gguf_n_kv (const QomniGguf *gguf);
const QomniGgufValue *qomni_gguf_kv (const QomniGguf *gguf, guint i);
/* (transfer none) NULL when absent. */
const QomniGgufValue *qomni_gguf_find (const QomniGguf *gguf, const char *key);
/* Typed lookups: NULL / FALSE when absent or of another type. Integer getters accept any
 * integer type whose value fits. */
const char *qomni_gguf_get_string (const QomniGguf *gguf, const char *key);
gboolean qomni_gguf_get_int (const QomniGguf *gguf, const char *key, gint64 *out);
gboolean qomni_gguf_get_float (const QomniGguf *gguf, const char *key, double *out);

/* Tensors in file order; names are the GGUF names; shapes outermost first. */
guint qomni_gguf_n_tensors (const QomniGguf *gguf);
const QomniTensor *qomni_gguf_tensor (const QomniGguf *gguf, guint i);
const QomniTensor *qomni_gguf_find_tensor (const QomniGguf *gguf, const char *name);
/* Offset of a tensor's data from the start of the data section. */
guint64 qomni_gguf_tensor_offset (const QomniGguf *gguf, guint i);

/* ---- writer ---- */

typedef struct _QomniGgufWriter QomniGgufWriter;

/* (transfer full) */
QomniGgufWriter *qomni_gguf_writer_new (void);
/* Removes the partial output if finish was not reached. */
void qomni_gguf_writer_free (QomniGgufWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniGgufWriter, qomni_gguf_writer_free)

/* Key/values: only before begin. A key set twice keeps its last value. */
void qomni_gguf_writer_set_u32 (QomniGgufWriter *w, const char *key, guint32 v);
void qomni_gguf_writer_set_i32 (QomniGgufWriter *w, const char *key, gint32 v);
void qomni_gguf_writer_set_u64 (QomniGgufWriter *w, const char *key, guint64 v);
void qomni_gguf_writer_set_f32 (QomniGgufWriter *w, const char *key, float v);
void qomni_gguf_writer_set_bool (QomniGgufWriter *w, const char *key, gboolean v);
void qomni_gguf_writer_set_string (QomniGgufWriter *w, const char *key, const char *v);
/* Any scalar type from its raw little-endian bytes (qomni_gguf_type_size bytes). */
void qomni_gguf_writer_set_scalar (QomniGgufWriter *w, const char *key, QomniGgufType type,
                                   const void *value);
/* An array of n scalars of `type` (raw elements) or, for STRING, of n const char *. */
void qomni_gguf_writer_set_array (QomniGgufWriter *w, const char *key, QomniGgufType type,
                                  const void *values, guint64 n);
/* Default QOMNI_GGUF_DEFAULT_ALIGNMENT; a power of two. Also written as general.alignment. */
void qomni_gguf_writer_set_alignment (QomniGgufWriter *w, guint32 alignment);

/* Tensor infos: only before begin; the data must follow in this order. The innermost
 * dimension of a block type must be a multiple of its block size. */
void qomni_gguf_writer_add_tensor (QomniGgufWriter *w, const char *name, QomniDType dtype,
                                   int ndim, const int64_t *shape);

/* Creates `path`.part and writes the header, key/values and tensor infos. */
gboolean qomni_gguf_writer_begin (QomniGgufWriter *w, const char *path, GError **error);
/* Appends bytes to the current tensor; never more than it holds. */
gboolean qomni_gguf_writer_write (QomniGgufWriter *w, const void *data, gsize n, GError **error);
/* Ends the current tensor: all its bytes must have come; pads to the alignment. */
gboolean qomni_gguf_writer_end_tensor (QomniGgufWriter *w, GError **error);
/* write + end_tensor in one call. */
gboolean qomni_gguf_writer_write_tensor (QomniGgufWriter *w, const void *data, gsize n,
                                         GError **error);
/* Every tensor must have been written; flushes, closes and renames `path`.part to `path`. */
gboolean qomni_gguf_writer_finish (QomniGgufWriter *w, GError **error);

/* ---- names (gguf-names.c) ---- */

/* The release name for a GGUF tensor name, or NULL when the name is kept verbatim (names of
 * 64 bytes or more, beyond ggml's limit, are shortened; docs/gguf.md lists how). For a
 * stacked 3-D expert tensor (blk.L.ffn_gate_exps.weight) `expert` picks which expert's
 * name to give; it is ignored otherwise. (transfer full) */
char *qomni_gguf_name_to_release (const char *gguf_name, int expert);
/* TRUE when the GGUF name is one of llama.cpp's stacked expert tensors. */
gboolean qomni_gguf_name_is_expert_stack (const char *gguf_name);
/* The GGUF name for a release name, or NULL when kept verbatim. For a per-expert release
 * name (thinker.model.layers.L.mlp.experts.E.gate_proj.weight) gives the stacked name
 * (blk.L.ffn_gate_exps.weight) and sets *expert to E; otherwise *expert = -1.
 * (transfer full) */
char *qomni_gguf_name_from_release (const char *release_name, int *expert);

/* ---- loading (gguf-load.c) ---- */

/* (transfer full) A weight store over a GGUF file: tensors under their release names,
 * stacked experts as per-expert 2-D views. The store keeps the file mapped. */
QomniWeights *qomni_gguf_load_weights (const char *path, GError **error);
/* (transfer full) The model config from `qomni.config_json`. */
QomniConfig *qomni_gguf_read_config (const char *path, GError **error);

/* "f32", "f16", "bf16", "q8_0", "q4_0" → the dtype and llama.cpp's general.file_type. */
gboolean qomni_gguf_parse_file_type (const char *name, QomniDType *dtype, guint32 *file_type);
/* The key/values of a qomni model file: general.*, the whole config.json text under
 * qomni.config_json, and llama.cpp-style keys of the thinker's text model. */
void qomni_gguf_writer_set_model_metadata (QomniGgufWriter *w, const char *name,
                                           guint32 file_type, const char *config_json,
                                           gsize json_len, const QomniConfig *config);

G_END_DECLS
