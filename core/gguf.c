/* qomni — GGUF type tables and the memory-mapped reader.
 *
 * The reader walks the header with a cursor that refuses to step past the end of the file,
 * so every length, count, offset and size in a hostile or truncated file turns into a
 * GError before a pointer is formed from it.
 */
#include "gguf.h"
#include "error.h"

#include <string.h>

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "the GGUF reader and writer assume a little-endian host"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_MAX_DIMS 4

static const struct {
  const char *name;
  gsize size;
} kv_types[] = {
  [QOMNI_GGUF_UINT8]   = { "uint8",   1 },
  [QOMNI_GGUF_INT8]    = { "int8",    1 },
  [QOMNI_GGUF_UINT16]  = { "uint16",  2 },
  [QOMNI_GGUF_INT16]   = { "int16",   2 },
  [QOMNI_GGUF_UINT32]  = { "uint32",  4 },
  [QOMNI_GGUF_INT32]   = { "int32",   4 },
  [QOMNI_GGUF_FLOAT32] = { "float32", 4 },
  [QOMNI_GGUF_BOOL]    = { "bool",    1 },
  [QOMNI_GGUF_STRING]  = { "string",  0 },
  [QOMNI_GGUF_ARRAY]   = { "array",   0 },
  [QOMNI_GGUF_UINT64]  = { "uint64",  8 },
  [QOMNI_GGUF_INT64]   = { "int64",   8 },
  [QOMNI_GGUF_FLOAT64] = { "float64", 8 },
};
_Static_assert (G_N_ELEMENTS (kv_types) == QOMNI_GGUF_N_TYPES, "one row per key/value type");

gsize
qomni_gguf_type_size (QomniGgufType type)
{
  g_return_val_if_fail (type < QOMNI_GGUF_N_TYPES, 0);
  return kv_types[type].size;
}

const char *
qomni_gguf_type_name (QomniGgufType type)
{
  return type < QOMNI_GGUF_N_TYPES ? kv_types[type].name : "unknown";
}

/* ggml's type numbers (ggml.h `enum ggml_type`) for the dtypes both sides have. */
static const struct {
  QomniDType dtype;
  guint32 ggml;
} ggml_types[] = {
  { QOMNI_DTYPE_F32,  0 },
  { QOMNI_DTYPE_F16,  1 },
  { QOMNI_DTYPE_Q4_0, 2 },
  { QOMNI_DTYPE_Q8_0, 8 },
  { QOMNI_DTYPE_I32,  26 },
  { QOMNI_DTYPE_I64,  27 },
  { QOMNI_DTYPE_BF16, 30 },
};

gboolean
qomni_gguf_ggml_type (QomniDType dtype, guint32 *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (ggml_types); i++) {
    if (ggml_types[i].dtype == dtype) {
      *out = ggml_types[i].ggml;
      return TRUE;
    }
  }
  return FALSE;
}

gboolean
qomni_gguf_dtype_from_ggml (guint32 ggml_type, QomniDType *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (ggml_types); i++) {
    if (ggml_types[i].ggml == ggml_type) {
      *out = ggml_types[i].dtype;
      return TRUE;
    }
  }
  return FALSE;
}

struct _QomniGguf {
  char *path;
  GMappedFile *mapped;
  guint32 version;
  guint32 alignment;
  GArray *kvs;             /* QomniGgufValue */
  GHashTable *kv_index;    /* key -> index + 1 */
  GArray *tensors;         /* QomniTensor */
  GArray *offsets;         /* guint64, per tensor */
  GHashTable *tensor_index; /* name -> index + 1 */
  GStringChunk *strings;
  GPtrArray *string_arrays; /* const char ** of STRING arrays, g_free'd */
};

/* A bounds-checked walk over the mapped bytes. */
typedef struct {
  const guint8 *bytes;
  guint64 size;
  guint64 pos;
  const char *file;
} Cursor;

static gboolean
cursor_take (Cursor *c, guint64 n, const guint8 **out, const char *what, GError **error)
{
  if (n > c->size - c->pos) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: truncated GGUF file: %s needs %" G_GUINT64_FORMAT " bytes at offset %"
                 G_GUINT64_FORMAT " but the file has %" G_GUINT64_FORMAT, c->file, what, n,
                 c->pos, c->size);
    return FALSE;
  }
  *out = c->bytes + c->pos;
  c->pos += n;
  return TRUE;
}

static gboolean
cursor_u32 (Cursor *c, guint32 *v, const char *what, GError **error)
{
  const guint8 *p;
  if (!cursor_take (c, 4, &p, what, error))
    return FALSE;
  memcpy (v, p, 4);
  return TRUE;
}

static gboolean
cursor_u64 (Cursor *c, guint64 *v, const char *what, GError **error)
{
  const guint8 *p;
  if (!cursor_take (c, 8, &p, what, error))
    return FALSE;
  memcpy (v, p, 8);
  return TRUE;
}

/* A GGUF string (u64 length + bytes), copied NUL-terminated into the string chunk. */
static gboolean
cursor_string (Cursor *c, GStringChunk *chunk, const char **out, gsize *len, const char *what,
               GError **error)
{
  guint64 n;
  const guint8 *p;
  if (!cursor_u64 (c, &n, what, error) || !cursor_take (c, n, &p, what, error))
    return FALSE;
  *out = g_string_chunk_insert_len (chunk, (const char *) p, (gssize) n);
  if (len)
    *len = (gsize) n;
  return TRUE;
}

static void
scalar_into_value (QomniGgufValue *v, const guint8 *p)
{
  switch (v->type) {
    case QOMNI_GGUF_UINT8:   v->u64 = p[0]; break;
    case QOMNI_GGUF_INT8:    v->i64 = (gint8) p[0]; break;
    case QOMNI_GGUF_BOOL:    v->b = p[0] != 0; break;
    case QOMNI_GGUF_UINT16:  { guint16 x; memcpy (&x, p, 2); v->u64 = x; break; }
    case QOMNI_GGUF_INT16:   { gint16 x; memcpy (&x, p, 2); v->i64 = x; break; }
    case QOMNI_GGUF_UINT32:  { guint32 x; memcpy (&x, p, 4); v->u64 = x; break; }
    case QOMNI_GGUF_INT32:   { gint32 x; memcpy (&x, p, 4); v->i64 = x; break; }
    case QOMNI_GGUF_FLOAT32: { float x; memcpy (&x, p, 4); v->f64 = x; break; }
    case QOMNI_GGUF_UINT64:  memcpy (&v->u64, p, 8); break;
    case QOMNI_GGUF_INT64:   memcpy (&v->i64, p, 8); break;
    case QOMNI_GGUF_FLOAT64: memcpy (&v->f64, p, 8); break;
    default: g_assert_not_reached ();
  }
}

static gboolean
read_kv (QomniGguf *g, Cursor *c, guint index, QomniGgufValue *v, GError **error)
{
  g_autofree char *what = g_strdup_printf ("key/value %u", index);
  if (!cursor_string (c, g->strings, &v->key, NULL, what, error))
    return FALSE;
  g_free (what);
  what = g_strdup_printf ("key/value '%s'", v->key);
  guint32 type;
  if (!cursor_u32 (c, &type, what, error))
    return FALSE;
  if (type >= QOMNI_GGUF_N_TYPES) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: key '%s' has unknown value type %u", g->path, v->key, type);
    return FALSE;
  }
  v->type = type;
  const guint8 *p;
  if (type == QOMNI_GGUF_STRING)
    return cursor_string (c, g->strings, &v->str, &v->str_len, what, error);
  if (type != QOMNI_GGUF_ARRAY) {
    if (!cursor_take (c, kv_types[type].size, &p, what, error))
      return FALSE;
    scalar_into_value (v, p);
    return TRUE;
  }
  guint32 elem;
  if (!cursor_u32 (c, &elem, what, error) || !cursor_u64 (c, &v->array_len, what, error))
    return FALSE;
  if (elem >= QOMNI_GGUF_N_TYPES || elem == QOMNI_GGUF_ARRAY) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: key '%s' is an array of unsupported element type %u", g->path, v->key,
                 elem);
    return FALSE;
  }
  v->array_type = elem;
  guint64 remaining = c->size - c->pos;
  if (elem != QOMNI_GGUF_STRING) {
    gsize size = kv_types[elem].size;
    if (v->array_len > remaining / size) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: truncated GGUF file: array '%s' of %" G_GUINT64_FORMAT " %s runs past "
                   "the end of the file", g->path, v->key, v->array_len, kv_types[elem].name);
      return FALSE;
    }
    if (!cursor_take (c, v->array_len * size, &p, what, error))
      return FALSE;
    v->array_data = p;
    return TRUE;
  }
  /* Each string takes at least its 8-byte length, which bounds the allocation. */
  if (v->array_len > remaining / 8) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: truncated GGUF file: array '%s' of %" G_GUINT64_FORMAT " strings runs "
                 "past the end of the file", g->path, v->key, v->array_len);
    return FALSE;
  }
  const char **strs = g_new0 (const char *, v->array_len + 1);
  g_ptr_array_add (g->string_arrays, strs);
  for (guint64 i = 0; i < v->array_len; i++)
    if (!cursor_string (c, g->strings, &strs[i], NULL, what, error))
      return FALSE;
  v->array_data = strs;
  return TRUE;
}

static gboolean
read_tensor_info (QomniGguf *g, Cursor *c, guint index, GError **error)
{
  g_autofree char *what = g_strdup_printf ("tensor info %u", index);
  QomniTensor t = { .file = g->path };
  if (!cursor_string (c, g->strings, &t.name, NULL, what, error))
    return FALSE;
  g_free (what);
  what = g_strdup_printf ("tensor info '%s'", t.name);
  guint32 ndim;
  if (!cursor_u32 (c, &ndim, what, error))
    return FALSE;
  if (ndim == 0 || ndim > GGUF_MAX_DIMS) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: tensor '%s' has %u dimensions; GGUF allows 1 to %d", g->path, t.name,
                 ndim, GGUF_MAX_DIMS);
    return FALSE;
  }
  t.ndim = (int) ndim;
  guint64 nelem = 1;
  for (guint32 i = 0; i < ndim; i++) {
    guint64 d;
    if (!cursor_u64 (c, &d, what, error))
      return FALSE;
    /* 2^48 elements is far beyond any model and keeps every product below 2^63. */
    if (d > (G_GUINT64_CONSTANT (1) << 48) || (d && nelem > (G_GUINT64_CONSTANT (1) << 48) / d)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s': dimension %u (%" G_GUINT64_FORMAT ") is not sane",
                   g->path, t.name, i, d);
      return FALSE;
    }
    nelem *= d;
    t.shape[ndim - 1 - i] = (int64_t) d;   /* GGUF lists the innermost dimension first */
  }
  guint32 ggml_type;
  guint64 offset;
  if (!cursor_u32 (c, &ggml_type, what, error) || !cursor_u64 (c, &offset, what, error))
    return FALSE;
  if (!qomni_gguf_dtype_from_ggml (ggml_type, &t.dtype)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: tensor '%s' has ggml type %u, which qomni does not read (it reads f32, "
                 "f16, bf16, q8_0, q4_0, i32, i64)", g->path, t.name, ggml_type);
    return FALSE;
  }
  const QomniDTypeInfo *info = qomni_dtype_info (t.dtype);
  if (t.shape[t.ndim - 1] % info->block_elems != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: tensor '%s' is %s but its rows of %" G_GINT64_FORMAT " elements are not a "
                 "multiple of the %d-element block", g->path, t.name, info->name,
                 t.shape[t.ndim - 1], info->block_elems);
    return FALSE;
  }
  t.nbytes = (size_t) (nelem / (guint64) info->block_elems * (guint64) info->block_bytes);
  if (g_hash_table_contains (g->tensor_index, t.name)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: tensor '%s' appears twice",
                 g->path, t.name);
    return FALSE;
  }
  g_array_append_val (g->tensors, t);
  g_array_append_val (g->offsets, offset);
  g_hash_table_insert (g->tensor_index, (gpointer) t.name, GUINT_TO_POINTER (g->tensors->len));
  return TRUE;
}

/* Tensors of more than 4 dimensions were folded by the writer; qomni.shape.NAME restores. */
static gboolean
unfold_shape (QomniGguf *g, QomniTensor *t, GError **error)
{
  g_autofree char *key = g_strconcat ("qomni.shape.", t->name, NULL);
  const QomniGgufValue *v = qomni_gguf_find (g, key);
  if (!v)
    return TRUE;
  int64_t shape[QOMNI_MAX_DIMS];
  gboolean ok = v->type == QOMNI_GGUF_ARRAY && v->array_type == QOMNI_GGUF_INT64 &&
                v->array_len >= 1 && v->array_len <= QOMNI_MAX_DIMS;
  int64_t n = 1;
  for (guint64 i = 0; ok && i < v->array_len; i++) {
    memcpy (&shape[i], (const guint8 *) v->array_data + 8 * i, 8);
    ok = shape[i] >= 0 && shape[i] <= (G_GINT64_CONSTANT (1) << 48) &&
         (shape[i] == 0 || n <= (G_GINT64_CONSTANT (1) << 48) / shape[i]);
    n *= ok ? shape[i] : 1;
  }
  ok = ok && n == qomni_tensor_nelements (t) &&
       shape[v->array_len - 1] == t->shape[t->ndim - 1];
  if (!ok) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: tensor '%s': %s does not describe the tensor's elements", g->path, t->name,
                 key);
    return FALSE;
  }
  t->ndim = (int) v->array_len;
  memcpy (t->shape, shape, sizeof (int64_t) * v->array_len);
  return TRUE;
}

void
qomni_gguf_free (QomniGguf *g)
{
  if (!g)
    return;
  if (g->mapped)
    g_mapped_file_unref (g->mapped);
  g_clear_pointer (&g->kvs, g_array_unref);
  g_clear_pointer (&g->kv_index, g_hash_table_unref);
  g_clear_pointer (&g->tensors, g_array_unref);
  g_clear_pointer (&g->offsets, g_array_unref);
  g_clear_pointer (&g->tensor_index, g_hash_table_unref);
  g_clear_pointer (&g->string_arrays, g_ptr_array_unref);
  if (g->strings)
    g_string_chunk_free (g->strings);
  g_free (g->path);
  g_free (g);
}

static gboolean
parse (QomniGguf *g, GError **error)
{
  Cursor c = {
    .bytes = (const guint8 *) g_mapped_file_get_contents (g->mapped),
    .size = g_mapped_file_get_length (g->mapped),
    .file = g->path,
  };
  if (c.size < 4 || memcmp (c.bytes, GGUF_MAGIC, 4) != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: not a GGUF file (it does not start with \"GGUF\")", g->path);
    return FALSE;
  }
  c.pos = 4;
  if (!cursor_u32 (&c, &g->version, "the version", error))
    return FALSE;
  if (g->version != 2 && g->version != 3) {
    /* A byte-swapped small number is a big-endian GGUF. */
    gboolean swapped = GUINT32_SWAP_LE_BE (g->version) <= 3;
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: GGUF version %u%s; qomni reads versions 2 and 3", g->path, g->version,
                 swapped ? " (a big-endian file?)" : "");
    return FALSE;
  }
  guint64 n_tensors, n_kv;
  if (!cursor_u64 (&c, &n_tensors, "the tensor count", error) ||
      !cursor_u64 (&c, &n_kv, "the key/value count", error))
    return FALSE;
  /* A key/value takes at least 12 bytes and a tensor info 32: bounds the allocations. */
  guint64 remaining = c.size - c.pos;
  if (n_kv > remaining / 12 || n_tensors > remaining / 32) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "%s: truncated GGUF file: %" G_GUINT64_FORMAT " key/values and %"
                 G_GUINT64_FORMAT " tensors cannot fit in %" G_GUINT64_FORMAT " bytes", g->path,
                 n_kv, n_tensors, c.size);
    return FALSE;
  }
  for (guint64 i = 0; i < n_kv; i++) {
    QomniGgufValue v = { 0 };
    if (!read_kv (g, &c, (guint) i, &v, error))
      return FALSE;
    g_array_append_val (g->kvs, v);
    g_hash_table_replace (g->kv_index, (gpointer) v.key, GUINT_TO_POINTER (g->kvs->len));
  }

  g->alignment = QOMNI_GGUF_DEFAULT_ALIGNMENT;
  const QomniGgufValue *align = qomni_gguf_find (g, "general.alignment");
  if (align) {
    if (align->type != QOMNI_GGUF_UINT32 || align->u64 == 0 ||
        (align->u64 & (align->u64 - 1)) != 0) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: general.alignment must be a uint32 power of two", g->path);
      return FALSE;
    }
    g->alignment = (guint32) align->u64;
  }

  for (guint64 i = 0; i < n_tensors; i++)
    if (!read_tensor_info (g, &c, (guint) i, error))
      return FALSE;

  guint64 data_start = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
  guint64 data_size = data_start <= c.size ? c.size - data_start : 0;
  const guint8 *data = c.bytes + (data_start <= c.size ? data_start : c.size);
  for (guint i = 0; i < g->tensors->len; i++) {
    QomniTensor *t = &g_array_index (g->tensors, QomniTensor, i);
    guint64 offset = g_array_index (g->offsets, guint64, i);
    if (offset % g->alignment != 0) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s': data offset %" G_GUINT64_FORMAT " is not a multiple of "
                   "the alignment %u", g->path, t->name, offset, g->alignment);
      return FALSE;
    }
    if (offset > data_size || t->nbytes > data_size - offset) {
      char shp[128];
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                   "%s: tensor '%s' (%s %s, %zu bytes at data offset %" G_GUINT64_FORMAT
                   ") lies past the end of the file (data section is %" G_GUINT64_FORMAT
                   " bytes; truncated file?)", g->path, t->name, qomni_dtype_info (t->dtype)->name,
                   qomni_shape_string (t->ndim, t->shape, shp, sizeof shp), t->nbytes, offset,
                   data_size);
      return FALSE;
    }
    t->data = data + offset;
    if (!unfold_shape (g, t, error))
      return FALSE;
  }
  return TRUE;
}

QomniGguf *
qomni_gguf_open (const char *path, GError **error)
{
  GError *local = NULL;
  GMappedFile *mapped = g_mapped_file_new (path, FALSE, &local);
  if (!mapped) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot open GGUF file %s: %s", path,
                 local->message);
    g_error_free (local);
    return NULL;
  }
  QomniGguf *g = g_new0 (QomniGguf, 1);
  g->path = g_strdup (path);
  g->mapped = mapped;
  g->kvs = g_array_new (FALSE, TRUE, sizeof (QomniGgufValue));
  g->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  g->tensors = g_array_new (FALSE, TRUE, sizeof (QomniTensor));
  g->offsets = g_array_new (FALSE, TRUE, sizeof (guint64));
  g->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  g->strings = g_string_chunk_new (4096);
  g->string_arrays = g_ptr_array_new_with_free_func (g_free);
  if (!parse (g, error)) {
    qomni_gguf_free (g);
    return NULL;
  }
  return g;
}

const char *
qomni_gguf_path (const QomniGguf *g)
{
  return g->path;
}

guint32
qomni_gguf_version (const QomniGguf *g)
{
  return g->version;
}

guint32
qomni_gguf_alignment (const QomniGguf *g)
{
  return g->alignment;
}

GMappedFile *
qomni_gguf_mapping (const QomniGguf *g)
{
  return g->mapped;
}

guint
qomni_gguf_n_kv (const QomniGguf *g)
{
  return g->kvs->len;
}

const QomniGgufValue *
qomni_gguf_kv (const QomniGguf *g, guint i)
{
  g_return_val_if_fail (i < g->kvs->len, NULL);
  return &g_array_index (g->kvs, QomniGgufValue, i);
}

const QomniGgufValue *
qomni_gguf_find (const QomniGguf *g, const char *key)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (g->kv_index, key));
  return i ? &g_array_index (g->kvs, QomniGgufValue, i - 1) : NULL;
}

const char *
qomni_gguf_get_string (const QomniGguf *g, const char *key)
{
  const QomniGgufValue *v = qomni_gguf_find (g, key);
  return v && v->type == QOMNI_GGUF_STRING ? v->str : NULL;
}

gboolean
qomni_gguf_get_int (const QomniGguf *g, const char *key, gint64 *out)
{
  const QomniGgufValue *v = qomni_gguf_find (g, key);
  if (!v)
    return FALSE;
  switch (v->type) {
    case QOMNI_GGUF_INT8:
    case QOMNI_GGUF_INT16:
    case QOMNI_GGUF_INT32:
    case QOMNI_GGUF_INT64:
      *out = v->i64;
      return TRUE;
    case QOMNI_GGUF_UINT8:
    case QOMNI_GGUF_UINT16:
    case QOMNI_GGUF_UINT32:
    case QOMNI_GGUF_UINT64:
      if (v->u64 > G_MAXINT64)
        return FALSE;
      *out = (gint64) v->u64;
      return TRUE;
    default:
      return FALSE;
  }
}

gboolean
qomni_gguf_get_float (const QomniGguf *g, const char *key, double *out)
{
  const QomniGgufValue *v = qomni_gguf_find (g, key);
  if (!v || (v->type != QOMNI_GGUF_FLOAT32 && v->type != QOMNI_GGUF_FLOAT64))
    return FALSE;
  *out = v->f64;
  return TRUE;
}

guint
qomni_gguf_n_tensors (const QomniGguf *g)
{
  return g->tensors->len;
}

const QomniTensor *
qomni_gguf_tensor (const QomniGguf *g, guint i)
{
  g_return_val_if_fail (i < g->tensors->len, NULL);
  return &g_array_index (g->tensors, QomniTensor, i);
}

const QomniTensor *
qomni_gguf_find_tensor (const QomniGguf *g, const char *name)
{
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (g->tensor_index, name));
  return i ? &g_array_index (g->tensors, QomniTensor, i - 1) : NULL;
}

guint64
qomni_gguf_tensor_offset (const QomniGguf *g, guint i)
{
  g_return_val_if_fail (i < g->offsets->len, 0);
  return g_array_index (g->offsets, guint64, i);
}
