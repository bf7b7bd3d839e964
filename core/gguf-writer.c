/* qomni — the streaming GGUF writer.
 *
 * GGUF puts every tensor's offset in the header, so the writer is told all tensor infos
 * before any data; after that the data goes out strictly in order, in pieces as small as the
 * caller likes. Nothing but the header is ever held in memory. Output goes to PATH.part and
 * is renamed at the end, so an interrupted conversion never leaves a file that looks whole.
 */
#include "gguf.h"
#include "error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  char *key;
  GByteArray *value;   /* type tag and value, serialized */
} WriterKv;

typedef struct {
  char *name;
  QomniDType dtype;
  int ndim;
  int64_t shape[QOMNI_MAX_DIMS];
  guint64 nbytes;
  guint64 offset;      /* from the start of the data section */
} WriterTensor;

struct _QomniGgufWriter {
  GArray *kvs;              /* WriterKv, in insertion order */
  GArray *tensors;          /* WriterTensor */
  guint32 alignment;
  guint64 data_size;        /* running end of the data section */
  char *path;
  char *part_path;
  FILE *fp;
  guint current;            /* tensor being written */
  guint64 current_written;
  gboolean finished;
};

static void
kv_clear (gpointer p)
{
  WriterKv *kv = p;
  g_free (kv->key);
  g_byte_array_unref (kv->value);
}

static void
tensor_clear (gpointer p)
{
  g_free (((WriterTensor *) p)->name);
}

QomniGgufWriter *
qomni_gguf_writer_new (void)
{
  QomniGgufWriter *w = g_new0 (QomniGgufWriter, 1);
  w->kvs = g_array_new (FALSE, TRUE, sizeof (WriterKv));
  g_array_set_clear_func (w->kvs, kv_clear);
  w->tensors = g_array_new (FALSE, TRUE, sizeof (WriterTensor));
  g_array_set_clear_func (w->tensors, tensor_clear);
  w->alignment = QOMNI_GGUF_DEFAULT_ALIGNMENT;
  return w;
}

void
qomni_gguf_writer_free (QomniGgufWriter *w)
{
  if (!w)
    return;
  if (w->fp)
    fclose (w->fp);
  if (w->part_path && !w->finished)
    g_unlink (w->part_path);
  g_array_unref (w->kvs);
  g_array_unref (w->tensors);
  g_free (w->path);
  g_free (w->part_path);
  g_free (w);
}

static void
put_u32 (GByteArray *b, guint32 v)
{
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  g_byte_array_append (b, (const guint8 *) &v, 8);
}

static void
put_string (GByteArray *b, const char *s)
{
  gsize n = strlen (s);
  put_u64 (b, n);
  g_byte_array_append (b, (const guint8 *) s, (guint) n);
}

/* Replaces the value of an existing key (keeping its place) or appends a new one. */
static GByteArray *
kv_slot (QomniGgufWriter *w, const char *key)
{
  g_return_val_if_fail (w->fp == NULL && !w->part_path, NULL);
  for (guint i = 0; i < w->kvs->len; i++) {
    WriterKv *kv = &g_array_index (w->kvs, WriterKv, i);
    if (strcmp (kv->key, key) == 0) {
      g_byte_array_set_size (kv->value, 0);
      return kv->value;
    }
  }
  WriterKv kv = { g_strdup (key), g_byte_array_new () };
  g_array_append_val (w->kvs, kv);
  return kv.value;
}

void
qomni_gguf_writer_set_scalar (QomniGgufWriter *w, const char *key, QomniGgufType type,
                              const void *value)
{
  g_return_if_fail (type < QOMNI_GGUF_N_TYPES && qomni_gguf_type_size (type) > 0);
  GByteArray *b = kv_slot (w, key);
  g_return_if_fail (b);
  put_u32 (b, type);
  g_byte_array_append (b, value, (guint) qomni_gguf_type_size (type));
}

void
qomni_gguf_writer_set_u32 (QomniGgufWriter *w, const char *key, guint32 v)
{
  qomni_gguf_writer_set_scalar (w, key, QOMNI_GGUF_UINT32, &v);
}

void
qomni_gguf_writer_set_i32 (QomniGgufWriter *w, const char *key, gint32 v)
{
  qomni_gguf_writer_set_scalar (w, key, QOMNI_GGUF_INT32, &v);
}

void
qomni_gguf_writer_set_u64 (QomniGgufWriter *w, const char *key, guint64 v)
{
  qomni_gguf_writer_set_scalar (w, key, QOMNI_GGUF_UINT64, &v);
}

void
qomni_gguf_writer_set_f32 (QomniGgufWriter *w, const char *key, float v)
{
  qomni_gguf_writer_set_scalar (w, key, QOMNI_GGUF_FLOAT32, &v);
}

void
qomni_gguf_writer_set_bool (QomniGgufWriter *w, const char *key, gboolean v)
{
  guint8 b = v ? 1 : 0;
  qomni_gguf_writer_set_scalar (w, key, QOMNI_GGUF_BOOL, &b);
}

void
qomni_gguf_writer_set_string (QomniGgufWriter *w, const char *key, const char *v)
{
  GByteArray *b = kv_slot (w, key);
  g_return_if_fail (b);
  put_u32 (b, QOMNI_GGUF_STRING);
  put_string (b, v);
}

void
qomni_gguf_writer_set_array (QomniGgufWriter *w, const char *key, QomniGgufType type,
                             const void *values, guint64 n)
{
  g_return_if_fail (type < QOMNI_GGUF_N_TYPES && type != QOMNI_GGUF_ARRAY);
  GByteArray *b = kv_slot (w, key);
  g_return_if_fail (b);
  put_u32 (b, QOMNI_GGUF_ARRAY);
  put_u32 (b, type);
  put_u64 (b, n);
  if (type == QOMNI_GGUF_STRING) {
    const char *const *strs = values;
    for (guint64 i = 0; i < n; i++)
      put_string (b, strs[i]);
  } else {
    g_byte_array_append (b, values, (guint) (n * qomni_gguf_type_size (type)));
  }
}

void
qomni_gguf_writer_set_alignment (QomniGgufWriter *w, guint32 alignment)
{
  g_return_if_fail (alignment > 0 && (alignment & (alignment - 1)) == 0);
  g_return_if_fail (w->tensors->len == 0);   /* offsets already laid out use the old one */
  w->alignment = alignment;
}

static guint64
align_up (guint64 x, guint32 a)
{
  return (x + a - 1) / a * a;
}

void
qomni_gguf_writer_add_tensor (QomniGgufWriter *w, const char *name, QomniDType dtype, int ndim,
                              const int64_t *shape)
{
  guint32 ggml;
  g_return_if_fail (!w->part_path);
  g_return_if_fail (ndim >= 1 && ndim <= QOMNI_MAX_DIMS);
  g_return_if_fail (qomni_gguf_ggml_type (dtype, &ggml));
  const QomniDTypeInfo *info = qomni_dtype_info (dtype);
  g_return_if_fail (shape[ndim - 1] % info->block_elems == 0);
  WriterTensor t = { g_strdup (name), dtype, ndim, { 0 }, 0, 0 };
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    g_return_if_fail (shape[i] >= 0);
    t.shape[i] = shape[i];
    n *= shape[i];
  }
  t.nbytes = qomni_dtype_nbytes (dtype, n);
  t.offset = w->data_size;
  w->data_size = align_up (t.offset + t.nbytes, w->alignment);
  g_array_append_val (w->tensors, t);
}

static gboolean
write_bytes (QomniGgufWriter *w, const void *data, gsize n, GError **error)
{
  if (n && fwrite (data, 1, n, w->fp) != n) {
    int err = errno;
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "writing %s: %s", w->part_path,
                 g_strerror (err));
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_zeros (QomniGgufWriter *w, gsize n, GError **error)
{
  static const guint8 zeros[256];
  while (n) {
    gsize k = MIN (n, sizeof zeros);
    if (!write_bytes (w, zeros, k, error))
      return FALSE;
    n -= k;
  }
  return TRUE;
}

gboolean
qomni_gguf_writer_begin (QomniGgufWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (!w->part_path, FALSE);

  /* Keys the layout itself needs go in now that every tensor is known. */
  qomni_gguf_writer_set_u32 (w, "general.alignment", w->alignment);
  for (guint i = 0; i < w->tensors->len; i++) {
    WriterTensor *t = &g_array_index (w->tensors, WriterTensor, i);
    if (t->ndim > 4) {
      g_autofree char *key = g_strconcat ("qomni.shape.", t->name, NULL);
      qomni_gguf_writer_set_array (w, key, QOMNI_GGUF_INT64, t->shape, (guint64) t->ndim);
    }
  }

  w->path = g_strdup (path);
  w->part_path = g_strconcat (path, ".part", NULL);
  w->fp = g_fopen (w->part_path, "wb");
  if (!w->fp) {
    int err = errno;
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot create %s: %s", w->part_path,
                 g_strerror (err));
    g_clear_pointer (&w->part_path, g_free);
    return FALSE;
  }
  setvbuf (w->fp, NULL, _IOFBF, 4 << 20);

  g_autoptr (GByteArray) h = g_byte_array_new ();
  g_byte_array_append (h, (const guint8 *) "GGUF", 4);
  put_u32 (h, 3);
  put_u64 (h, w->tensors->len);
  put_u64 (h, w->kvs->len);
  for (guint i = 0; i < w->kvs->len; i++) {
    WriterKv *kv = &g_array_index (w->kvs, WriterKv, i);
    put_string (h, kv->key);
    g_byte_array_append (h, kv->value->data, kv->value->len);
  }
  for (guint i = 0; i < w->tensors->len; i++) {
    WriterTensor *t = &g_array_index (w->tensors, WriterTensor, i);
    put_string (h, t->name);
    /* ggml allows 4 dimensions: fold the outer ones of a deeper tensor into the 4th. */
    int nd = MIN (t->ndim, 4);
    put_u32 (h, (guint32) nd);
    for (int d = 0; d < nd; d++) {
      guint64 dim = (guint64) t->shape[t->ndim - 1 - d];
      if (d == 3)
        for (int o = t->ndim - 5; o >= 0; o--)
          dim *= (guint64) t->shape[o];
      put_u64 (h, dim);
    }
    guint32 ggml = 0;
    qomni_gguf_ggml_type (t->dtype, &ggml);
    put_u32 (h, ggml);
    put_u64 (h, t->offset);
  }
  gsize pad = (gsize) (align_up (h->len, w->alignment) - h->len);
  if (!write_bytes (w, h->data, h->len, error) || !write_zeros (w, pad, error))
    return FALSE;
  w->current = 0;
  w->current_written = 0;
  return TRUE;
}

gboolean
qomni_gguf_writer_write (QomniGgufWriter *w, const void *data, gsize n, GError **error)
{
  g_return_val_if_fail (w->fp, FALSE);
  if (w->current >= w->tensors->len) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: data written after the last of %u tensors", w->part_path, w->tensors->len);
    return FALSE;
  }
  WriterTensor *t = &g_array_index (w->tensors, WriterTensor, w->current);
  if (n > t->nbytes - w->current_written) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: tensor '%s' holds %" G_GUINT64_FORMAT " bytes; more were written",
                 w->part_path, t->name, t->nbytes);
    return FALSE;
  }
  if (!write_bytes (w, data, n, error))
    return FALSE;
  w->current_written += n;
  return TRUE;
}

gboolean
qomni_gguf_writer_end_tensor (QomniGgufWriter *w, GError **error)
{
  g_return_val_if_fail (w->fp && w->current < w->tensors->len, FALSE);
  WriterTensor *t = &g_array_index (w->tensors, WriterTensor, w->current);
  if (w->current_written != t->nbytes) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: tensor '%s' holds %" G_GUINT64_FORMAT " bytes; %" G_GUINT64_FORMAT
                 " were written", w->part_path, t->name, t->nbytes, w->current_written);
    return FALSE;
  }
  gsize pad = (gsize) (align_up (t->nbytes, w->alignment) - t->nbytes);
  if (!write_zeros (w, pad, error))
    return FALSE;
  w->current++;
  w->current_written = 0;
  return TRUE;
}

gboolean
qomni_gguf_writer_write_tensor (QomniGgufWriter *w, const void *data, gsize n, GError **error)
{
  return qomni_gguf_writer_write (w, data, n, error) && qomni_gguf_writer_end_tensor (w, error);
}

gboolean
qomni_gguf_writer_finish (QomniGgufWriter *w, GError **error)
{
  g_return_val_if_fail (w->fp, FALSE);
  if (w->current != w->tensors->len) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "%s: only %u of %u tensors were written", w->part_path, w->current,
                 w->tensors->len);
    return FALSE;
  }
  FILE *fp = w->fp;
  w->fp = NULL;
  if (fclose (fp) != 0) {
    int err = errno;
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "writing %s: %s", w->part_path,
                 g_strerror (err));
    return FALSE;
  }
  if (g_rename (w->part_path, w->path) != 0) {
    int err = errno;
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot rename %s to %s: %s",
                 w->part_path, w->path, g_strerror (err));
    return FALSE;
  }
  w->finished = TRUE;
  return TRUE;
}
