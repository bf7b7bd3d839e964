/* qomni — the thinker-states buffer layout. */
#include "qomni-states.h"
#include "error.h"

#include <string.h>

#define ALIGN16(x) (((x) + 15u) & ~(guint64) 15u)

GstCaps *
qomni_gst_states_caps (int width)
{
  return gst_caps_new_simple (QOMNI_STATES_MEDIA_TYPE, "format", G_TYPE_STRING, "F32",
                              "layout-version", G_TYPE_INT, QOMNI_STATES_VERSION, "width",
                              G_TYPE_INT, width, NULL);
}

const char *
qomni_gst_states_kind_name (int kind)
{
  switch (kind) {
  case QOMNI_STATES_PROMPT:
    return "PROMPT";
  case QOMNI_STATES_TOKEN:
    return "TOKEN";
  case QOMNI_STATES_END:
    return "END";
  default:
    return "unknown";
  }
}

GstBuffer *
qomni_gst_states_new (const QomniStatesHeader *h, const gint32 *ids, const float *embed,
                      const float *hidden)
{
  return qomni_gst_states_new_with_grids (h, ids, embed, hidden, NULL, 0);
}

GstBuffer *
qomni_gst_states_new_with_grids (const QomniStatesHeader *h, const gint32 *ids,
                                 const float *embed, const float *hidden,
                                 const QomniMediaGrid *grids, int n_grids)
{
  const gsize n = h->n_rows, rows = n * h->width * sizeof (float);
  QomniStatesHeader out = *h;
  out.magic = QOMNI_STATES_MAGIC;
  out.version = QOMNI_STATES_VERSION;
  out.header_size = QOMNI_STATES_HEADER_SIZE;
  guint64 at = QOMNI_STATES_HEADER_SIZE;
  out.ids_offset = ids && n ? (guint32) at : 0;
  at = ALIGN16 (at + (ids && n ? n * sizeof (gint32) : 0));
  out.embed_offset = embed && n ? (guint32) at : 0;
  at += embed && n ? rows : 0;
  out.hidden_offset = hidden && n ? (guint32) at : 0;
  at += hidden && n ? rows : 0;
  out.n_grids = grids && n_grids > 0 ? (guint32) n_grids : 0;
  out.grids_offset = out.n_grids ? (guint32) at : 0;
  at += out.n_grids * sizeof (QomniMediaGrid);

  GstBuffer *buf = gst_buffer_new_allocate (NULL, at, NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  memset (map.data, 0, map.size);
  memcpy (map.data, &out, sizeof out);
  if (out.ids_offset)
    memcpy (map.data + out.ids_offset, ids, n * sizeof (gint32));
  if (out.embed_offset)
    memcpy (map.data + out.embed_offset, embed, rows);
  if (out.hidden_offset)
    memcpy (map.data + out.hidden_offset, hidden, rows);
  if (out.grids_offset)
    memcpy (map.data + out.grids_offset, grids, out.n_grids * sizeof (QomniMediaGrid));
  gst_buffer_unmap (buf, &map);
  return buf;
}

/* Does the section [offset, offset + bytes) lie inside the buffer, after the header? */
static gboolean
section_ok (guint32 offset, guint64 bytes, gsize size, guint32 header_size)
{
  return offset == 0 || (offset >= header_size && offset % 4 == 0 && offset + bytes <= size);
}

gboolean
qomni_gst_states_parse (const guint8 *data, gsize size, QomniStatesHeader *h, GError **error)
{
  if (size < QOMNI_STATES_HEADER_SIZE) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "thinker-states buffer of %" G_GSIZE_FORMAT " bytes is shorter than its "
                 "header", size);
    return FALSE;
  }
  memcpy (h, data, sizeof *h);
  if (h->magic != QOMNI_STATES_MAGIC || h->version != QOMNI_STATES_VERSION ||
      h->header_size < QOMNI_STATES_HEADER_SIZE || h->header_size > size) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "not a version-%d qomni thinker-states buffer (magic %08x, version %u)",
                 QOMNI_STATES_VERSION, h->magic, h->version);
    return FALSE;
  }
  if (h->kind < QOMNI_STATES_PROMPT || h->kind > QOMNI_STATES_END) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "thinker-states buffer of unknown kind %u", h->kind);
    return FALSE;
  }
  const guint64 rows = (guint64) h->n_rows * h->width * sizeof (float);
  if (!section_ok (h->ids_offset, (guint64) h->n_rows * sizeof (gint32), size, h->header_size) ||
      !section_ok (h->embed_offset, rows, size, h->header_size) ||
      !section_ok (h->hidden_offset, rows, size, h->header_size) ||
      !section_ok (h->grids_offset, (guint64) h->n_grids * sizeof (QomniMediaGrid), size,
                   h->header_size) ||
      (h->n_grids && !h->grids_offset)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "thinker-states %s buffer holds %" G_GSIZE_FORMAT " bytes, too few for its "
                 "%u rows of %u", qomni_gst_states_kind_name (h->kind), size, h->n_rows,
                 h->width);
    return FALSE;
  }
  gboolean complete = TRUE;
  if (h->kind == QOMNI_STATES_PROMPT)
    complete = h->n_rows > 0 && h->width > 0 && h->ids_offset && h->embed_offset;
  else if (h->kind == QOMNI_STATES_TOKEN)
    complete = h->n_rows > 0 && h->width > 0 && h->embed_offset;
  if (!complete) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                 "thinker-states %s buffer lacks its rows (%u rows of %u, ids at %u, embed "
                 "at %u)", qomni_gst_states_kind_name (h->kind), h->n_rows, h->width,
                 h->ids_offset, h->embed_offset);
    return FALSE;
  }
  return TRUE;
}
