/* qomni — the tensor stream between qomniencode and qomnithinker:
 * caps `application/x-qomni-embeddings, format=F32, layout-version=1, width=(int)W`, one
 * buffer per audio segment, in system memory, laid out as (README.md, "Embeddings"):
 *
 *   QomniEmbeddingsHeader (64 bytes, host byte order) | float32 rows [n_rows, width]
 *
 *   GstBuffer *b = qomni_gst_embeddings_new (&header);       // rows zeroed
 *   GstMapInfo map;  gst_buffer_map (b, &map, GST_MAP_WRITE);
 *   float *rows = qomni_gst_embeddings_rows (map.data);
 *
 *   QomniEmbeddingsHeader h;                                  // receiving side
 *   if (!qomni_gst_embeddings_parse (map.data, map.size, &h, &error)) ...
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define QOMNI_EMBEDDINGS_MEDIA_TYPE "application/x-qomni-embeddings"
#define QOMNI_EMBEDDINGS_MAGIC 0x424d4551u   /* "QEMB" read as little-endian bytes */
#define QOMNI_EMBEDDINGS_VERSION 1
#define QOMNI_EMBEDDINGS_HEADER_SIZE 64
/* Template caps; a negotiated stream also fixes width. */
#define QOMNI_EMBEDDINGS_CAPS                                                    \
  QOMNI_EMBEDDINGS_MEDIA_TYPE ", format=(string)F32, layout-version=(int)1, " \
                              "width=(int)[1,65536]"

typedef enum {
  QOMNI_EMBEDDINGS_DTYPE_F32 = 0,
} QomniEmbeddingsDtype;

typedef enum {
  QOMNI_EMBEDDINGS_FLAG_NONE = 0,
  QOMNI_EMBEDDINGS_FLAG_DISCONT = 1 << 0,    /* audio before this segment was lost/skipped */
  QOMNI_EMBEDDINGS_FLAG_UTTERANCE_END = 1 << 1, /* closed by EOS or a GAP, not by length */
} QomniEmbeddingsFlags;

typedef struct {
  guint32 magic;          /* QOMNI_EMBEDDINGS_MAGIC */
  guint16 version;        /* QOMNI_EMBEDDINGS_VERSION */
  guint16 dtype;          /* QomniEmbeddingsDtype */
  guint32 n_rows;         /* embedding rows (audio tokens) */
  guint32 width;          /* floats per row: the thinker's hidden size */
  guint32 header_size;    /* bytes before the rows: QOMNI_EMBEDDINGS_HEADER_SIZE */
  guint32 flags;          /* QomniEmbeddingsFlags */
  guint64 pts;            /* stream time of the first sample covered (ns), or -1 */
  guint64 duration;       /* ns of audio covered */
  guint32 n_samples;      /* 16 kHz samples covered */
  guint32 n_mel_frames;   /* mel frames the encoder saw: floor(n_samples / 160) */
  guint32 segment_index;  /* counts segments since the stream started or was flushed */
  guint8 reserved[12];    /* zero */
} QomniEmbeddingsHeader;

_Static_assert (sizeof (QomniEmbeddingsHeader) == QOMNI_EMBEDDINGS_HEADER_SIZE,
                "the embeddings header is 64 bytes");

/* (transfer full) Fixed caps for rows of `width` floats. */
GstCaps *qomni_gst_embeddings_caps (int width);
/* (transfer full) A buffer with the header filled from *h (magic, version, header_size
 * set here) and n_rows × width zeroed floats. */
GstBuffer *qomni_gst_embeddings_new (const QomniEmbeddingsHeader *h);
/* Checks magic, version, dtype and that size holds the header and every row. */
gboolean qomni_gst_embeddings_parse (const guint8 *data, gsize size, QomniEmbeddingsHeader *h,
                                     GError **error);
static inline float *
qomni_gst_embeddings_rows (guint8 *data)
{
  return (float *) (data + ((QomniEmbeddingsHeader *) data)->header_size);
}

G_END_DECLS
