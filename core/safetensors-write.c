/* qomni — safetensors writer. */
#include "safetensors-write.h"
#include "error.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

static gsize
spec_nbytes (const QomniTensorSpec *s, QomniDType dtype)
{
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++)
    n *= s->shape[i];
  return qomni_dtype_nbytes (dtype, n);
}

static gboolean
write_shard (const char *path, GPtrArray *specs, guint first, guint end, QomniDType dtype,
             QomniTensorFillFn fill, gpointer user, GError **error)
{
  /* Header: {"__metadata__": {"format": "pt"}, name: {dtype, shape, data_offsets}} */
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "__metadata__");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "pt");
  json_builder_end_object (b);
  guint64 offset = 0;
  gsize max_bytes = 0;
  for (guint i = first; i < end; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    gsize nb = spec_nbytes (s, dtype);
    max_bytes = MAX (max_bytes, nb);
    json_builder_set_member_name (b, s->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, qomni_dtype_info (dtype)->safetensors);
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (int d = 0; d < s->ndim; d++)
      json_builder_add_int_value (b, s->shape[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "data_offsets");
    json_builder_begin_array (b);
    json_builder_add_int_value (b, (gint64) offset);
    json_builder_add_int_value (b, (gint64) (offset + nb));
    json_builder_end_array (b);
    json_builder_end_object (b);
    offset += nb;
  }
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize hlen = 0;
  g_autofree char *header = json_generator_to_data (gen, &hlen);
  /* pad the header with spaces so the data starts 8-byte aligned */
  gsize padded = (hlen + 8 + 7) / 8 * 8 - 8;

  FILE *f = fopen (path, "wb");
  if (!f) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot create %s: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  guint8 len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (guint8) (((guint64) padded >> (8 * i)) & 0xff);
  gboolean ok = fwrite (len8, 1, 8, f) == 8 && fwrite (header, 1, hlen, f) == hlen;
  for (gsize i = hlen; ok && i < padded; i++)
    ok = fputc (' ', f) != EOF;
  void *buf = ok ? g_try_malloc (MAX (max_bytes, 1)) : NULL;
  if (ok && !buf) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "out of memory for a %zu-byte tensor",
                 max_bytes);
    fclose (f);
    return FALSE;
  }
  for (guint i = first; ok && i < end; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    gsize nb = spec_nbytes (s, dtype);
    if (!fill (s, dtype, buf, nb, user, error)) {
      g_free (buf);
      fclose (f);
      return FALSE;
    }
    ok = fwrite (buf, 1, nb, f) == nb;
  }
  g_free (buf);
  ok = (fclose (f) == 0) && ok;
  if (!ok && error && !*error)
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "writing %s failed: %s", path,
                 g_strerror (errno));
  return ok;
}

gboolean
qomni_safetensors_write_checkpoint (const char *dir, GPtrArray *specs, QomniDType dtype,
                                    guint64 shard_bytes, QomniTensorFillFn fill, gpointer user,
                                    GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot create %s: %s", dir,
                 g_strerror (errno));
    return FALSE;
  }
  /* Split into shards in order. */
  g_autoptr (GArray) bounds = g_array_new (FALSE, FALSE, sizeof (guint));
  guint64 acc = 0;
  g_array_append_val (bounds, (guint) { 0 });
  for (guint i = 0; i < specs->len; i++) {
    gsize nb = spec_nbytes (g_ptr_array_index (specs, i), dtype);
    if (shard_bytes && acc > 0 && acc + nb > shard_bytes) {
      g_array_append_val (bounds, i);
      acc = 0;
    }
    acc += nb;
  }
  g_array_append_val (bounds, specs->len);
  const guint shards = bounds->len - 1;

  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "weight_map");
  json_builder_begin_object (b);
  for (guint s = 0; s < shards; s++) {
    g_autofree char *name = g_strdup_printf ("model-%05u-of-%05u.safetensors", s + 1, shards);
    g_autofree char *path = g_build_filename (dir, name, NULL);
    guint first = g_array_index (bounds, guint, s), end = g_array_index (bounds, guint, s + 1);
    if (!write_shard (path, specs, first, end, dtype, fill, user, error))
      return FALSE;
    for (guint i = first; i < end; i++) {
      const QomniTensorSpec *spec = g_ptr_array_index (specs, i);
      json_builder_set_member_name (b, spec->name);
      json_builder_add_string_value (b, name);
    }
  }
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  GError *local = NULL;
  if (!json_generator_to_file (gen, index, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot write %s: %s", index,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}
