/* qomni — the tensor stream between qomniencode and qomnithinker:
 * caps `application/x-qomni-embeddings, format=F32, layout-version=2, width=(int)W`, one
 * buffer per audio segment, image or video, in system memory, laid out as (README.md,
 * "Embeddings"):
 *
 *   QomniEmbeddingsHeader (80 bytes, host byte order)
 *   | float32 rows [n_rows, width]                      the audio or vision encoder output
 *   | float32 deepstack [n_deepstack, n_rows, width]    image/video: DeepStack features
 *   | float32 audio rows [n_audio_rows, width]          a video's soundtrack, when it has one
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
#define QOMNI_EMBEDDINGS_VERSION 2
#define QOMNI_EMBEDDINGS_HEADER_SIZE 80
/* Template caps; a negotiated stream also fixes width. */
#define QOMNI_EMBEDDINGS_CAPS                                                    \
  QOMNI_EMBEDDINGS_MEDIA_TYPE ", format=(string)F32, layout-version=(int)2, " \
                              "width=(int)[1,65536]"

typedef enum {
  QOMNI_EMBEDDINGS_DTYPE_F32 = 0,
} QomniEmbeddingsDtype;

/* What the rows stand for: which placeholder tokens they replace in the prompt. */
typedef enum {
  QOMNI_EMBEDDINGS_KIND_AUDIO = 0,   /* <|audio_pad|> rows */
  QOMNI_EMBEDDINGS_KIND_IMAGE = 1,   /* <|image_pad|> rows, grid_t = 1 */
  QOMNI_EMBEDDINGS_KIND_VIDEO = 2,   /* <|video_pad|> rows */
} QomniEmbeddingsKind;

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
  guint64 pts;            /* stream time of the first sample / frame covered (ns), or -1 */
  guint64 duration;       /* ns of audio or video covered */
  guint32 n_samples;      /* 16 kHz samples covered (audio, or a video's soundtrack) */
  guint32 n_mel_frames;   /* mel frames the encoder saw: floor(n_samples / 160) */
  guint32 segment_index;  /* counts segments since the stream started or was flushed */
  guint8 kind;            /* QomniEmbeddingsKind */
  guint8 n_deepstack;     /* image/video: DeepStack sections after the rows; audio: 0 */
  guint16 reserved0;      /* zero */
  float second_per_grid;  /* video: seconds one temporal patch (2 frames) covers; else 0 */
  guint32 n_audio_rows;   /* video (or image) with sound: soundtrack rows after the rest */
  guint32 grid_t, grid_h, grid_w;   /* image/video: the vision grid in 16×16 patches */
  guint32 reserved1;      /* zero */
} QomniEmbeddingsHeader;

_Static_assert (sizeof (QomniEmbeddingsHeader) == QOMNI_EMBEDDINGS_HEADER_SIZE,
                "the embeddings header is 80 bytes");

/* (transfer full) Fixed caps for rows of `width` floats. */
GstCaps *qomni_gst_embeddings_caps (int width);
/* (transfer full) A buffer with the header filled from *h (magic, version, header_size
 * set here) and (n_rows · (1 + n_deepstack) + n_audio_rows) × width zeroed floats. */
GstBuffer *qomni_gst_embeddings_new (const QomniEmbeddingsHeader *h);
/* Checks magic, version, dtype, kind, the grid of an image/video, and that size holds the
 * header and every section. */
gboolean qomni_gst_embeddings_parse (const guint8 *data, gsize size, QomniEmbeddingsHeader *h,
                                     GError **error);
static inline float *
qomni_gst_embeddings_rows (guint8 *data)
{
  return (float *) (data + ((QomniEmbeddingsHeader *) data)->header_size);
}
/* The DeepStack sections (image/video) and the soundtrack rows, after the rows. */
static inline float *
qomni_gst_embeddings_deepstack (guint8 *data)
{
  const QomniEmbeddingsHeader *h = (const QomniEmbeddingsHeader *) data;
  return qomni_gst_embeddings_rows (data) + (gsize) h->n_rows * h->width;
}
static inline float *
qomni_gst_embeddings_audio_rows (guint8 *data)
{
  const QomniEmbeddingsHeader *h = (const QomniEmbeddingsHeader *) data;
  return qomni_gst_embeddings_rows (data) + (gsize) h->n_rows * h->width * (1 + h->n_deepstack);
}

G_END_DECLS
