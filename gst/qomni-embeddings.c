/* qomni — the embeddings buffer layout. */
#include "qomni-embeddings.h"
#include "error.h"

#include <string.h>

GstCaps *
qomni_gst_embeddings_caps (int width)
{
  return gst_caps_new_simple (QOMNI_EMBEDDINGS_MEDIA_TYPE, "format", G_TYPE_STRING, "F32",
                              "layout-version", G_TYPE_INT, QOMNI_EMBEDDINGS_VERSION, "width",
                              G_TYPE_INT, width, NULL);
}

GstBuffer *
qomni_gst_embeddings_new (const QomniEmbeddingsHeader *h)
{
  const gsize rows = ((gsize) h->n_rows * (1 + h->n_deepstack) + h->n_audio_rows) * h->width
                     * sizeof (float);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, QOMNI_EMBEDDINGS_HEADER_SIZE + rows, NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  QomniEmbeddingsHeader out = *h;
  out.magic = QOMNI_EMBEDDINGS_MAGIC;
  out.version = QOMNI_EMBEDDINGS_VERSION;
  out.dtype = QOMNI_EMBEDDINGS_DTYPE_F32;
  out.header_size = QOMNI_EMBEDDINGS_HEADER_SIZE;
  out.reserved0 = 0;
  out.reserved1 = 0;
  memcpy (map.data, &out, sizeof out);
  memset (map.data + QOMNI_EMBEDDINGS_HEADER_SIZE, 0, rows);
  gst_buffer_unmap (buf, &map);
  return buf;
}

gboolean
qomni_gst_embeddings_parse (const guint8 *data, gsize size, QomniEmbeddingsHeader *h,
                            GError **error)
{
  if (size < QOMNI_EMBEDDINGS_HEADER_SIZE) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "embeddings buffer of %" G_GSIZE_FORMAT " bytes is shorter than its header",
                 size);
    return FALSE;
  }
  memcpy (h, data, sizeof *h);
  if (h->magic != QOMNI_EMBEDDINGS_MAGIC || h->version != QOMNI_EMBEDDINGS_VERSION ||
      h->dtype != QOMNI_EMBEDDINGS_DTYPE_F32 || h->header_size < QOMNI_EMBEDDINGS_HEADER_SIZE) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "not a version-%d float32 qomni embeddings buffer (magic %08x, version %u, "
                 "dtype %u)", QOMNI_EMBEDDINGS_VERSION, h->magic, h->version, h->dtype);
    return FALSE;
  }
  const gboolean visual = h->kind == QOMNI_EMBEDDINGS_KIND_IMAGE ||
                          h->kind == QOMNI_EMBEDDINGS_KIND_VIDEO;
  if (h->kind > QOMNI_EMBEDDINGS_KIND_VIDEO || h->n_deepstack > 16 ||
      (!visual && (h->n_deepstack || h->n_audio_rows)) ||
      (visual && (h->grid_t == 0 || h->grid_h == 0 || h->grid_w == 0 || h->grid_t > 65536 ||
                  h->grid_h > 65536 || h->grid_w > 65536 ||
                  (h->kind == QOMNI_EMBEDDINGS_KIND_IMAGE && h->grid_t != 1) ||
                  !(h->second_per_grid >= 0.0f && h->second_per_grid < 1e6f)))) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "embeddings buffer of kind %u with %u DeepStack sections, %u soundtrack rows "
                 "and grid %u×%u×%u (second per grid %g) is not an audio segment, image or "
                 "video", h->kind, h->n_deepstack, h->n_audio_rows, h->grid_t, h->grid_h,
                 h->grid_w, h->second_per_grid);
    return FALSE;
  }
  const guint64 n_floats = ((guint64) h->n_rows * (1 + h->n_deepstack) + h->n_audio_rows)
                           * h->width;
  const guint64 need = h->header_size + n_floats * sizeof (float);
  if (need > size || h->width == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "embeddings buffer holds %" G_GSIZE_FORMAT " bytes, its header promises %"
                 G_GUINT64_FORMAT " (%u rows of %u, %u DeepStack sections, %u soundtrack rows)",
                 size, need, h->n_rows, h->width, h->n_deepstack, h->n_audio_rows);
    return FALSE;
  }
  return TRUE;
}
