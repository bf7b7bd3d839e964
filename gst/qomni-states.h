/* qomni — the tensor stream from qomnithinker's talker_%u pads to qomnitalker:
 * caps `application/x-qomni-thinker-states, format=F32, layout-version=1, width=(int)W`,
 * one buffer per thinker forward, in system memory (README.md, "Thinker states"):
 *
 *   QomniStatesHeader (64 bytes, host byte order)
 *   | int32 ids [n_rows]          at ids_offset    (PROMPT only; 0 = absent)
 *   | float32 embed [n_rows, W]   at embed_offset  (hs[0]: the input rows)
 *   | float32 hidden [n_rows, W]  at hidden_offset (hs[accept_hidden_layer]; PROMPT only)
 *   | QomniMediaGrid [n_grids]    at grids_offset  (PROMPT only: the prompt's images and
 *                                                   videos in order, for the talker's 3-D
 *                                                   positions; int32 t, h, w, float32 t_step)
 *
 * Kinds: PROMPT (the prompt forward: ids, embed, hidden), TOKEN (one fed answer token:
 * embed of one row), END (the thinker finished the answer: no rows). Sections start on
 * 16-byte boundaries.
 *
 *   QomniStatesHeader h = { .kind = QOMNI_STATES_PROMPT, .n_rows = n, .width = W };
 *   GstBuffer *b = qomni_gst_states_new (&h, ids, embed, hidden);   // copies the rows
 *
 *   QomniStatesHeader h;                                           // receiving side
 *   if (!qomni_gst_states_parse (map.data, map.size, &h, &error)) ...
 *   const float *embed = qomni_gst_states_embed (map.data, &h);
 */
#pragma once

#include <gst/gst.h>

#include "positions.h"

G_BEGIN_DECLS

#define QOMNI_STATES_MEDIA_TYPE "application/x-qomni-thinker-states"
#define QOMNI_STATES_MAGIC 0x53485451u   /* "QTHS" read as little-endian bytes */
#define QOMNI_STATES_VERSION 1
#define QOMNI_STATES_HEADER_SIZE 64
/* Template caps; a negotiated stream also fixes width. */
#define QOMNI_STATES_CAPS                                                    \
  QOMNI_STATES_MEDIA_TYPE ", format=(string)F32, layout-version=(int)1, " \
                          "width=(int)[1,65536]"

typedef enum {
  QOMNI_STATES_PROMPT = 1,  /* the prompt's rows: starts a talker utterance */
  QOMNI_STATES_TOKEN = 2,   /* the rows of answer tokens fed back to the thinker */
  QOMNI_STATES_END = 3,     /* the answer is complete */
} QomniStatesKind;

typedef struct {
  guint32 magic;          /* QOMNI_STATES_MAGIC */
  guint16 version;        /* QOMNI_STATES_VERSION */
  guint16 kind;           /* QomniStatesKind */
  guint32 n_rows;         /* positions (prompt tokens, or fed tokens) */
  guint32 width;          /* floats per row: the thinker's hidden size */
  guint32 header_size;    /* QOMNI_STATES_HEADER_SIZE */
  guint32 flags;          /* zero; reserved */
  guint32 ids_offset;     /* byte offset of int32 ids [n_rows], 0 when absent */
  guint32 embed_offset;   /* byte offset of float32 embed [n_rows, width], 0 when absent */
  guint32 hidden_offset;  /* byte offset of float32 hidden [n_rows, width], 0 when absent */
  guint32 segment_index;  /* the answer (utterance) this belongs to, counted per stream */
  guint64 pts;            /* stream time the answer answers (the input's end), or -1 */
  guint64 duration;       /* ns covered by the input, or -1 */
  guint32 grids_offset;   /* byte offset of QomniMediaGrid [n_grids], 0 when absent */
  guint32 n_grids;        /* images/videos in the prompt (zero in older streams) */
} QomniStatesHeader;

_Static_assert (sizeof (QomniStatesHeader) == QOMNI_STATES_HEADER_SIZE,
                "the thinker-states header is 64 bytes");
_Static_assert (sizeof (QomniMediaGrid) == 16, "a grid travels as 4 × 4 bytes");

/* (transfer full) Fixed caps for rows of `width` floats. */
GstCaps *qomni_gst_states_caps (int width);
/* (transfer full) A buffer of kind h->kind with n_rows rows; ids/embed/hidden (may be NULL:
 * section absent) are copied. magic, version, header_size and the offsets are set here. */
GstBuffer *qomni_gst_states_new (const QomniStatesHeader *h, const gint32 *ids,
                                 const float *embed, const float *hidden);
/* The same with the prompt's media grids (n_grids of them; copied). */
GstBuffer *qomni_gst_states_new_with_grids (const QomniStatesHeader *h, const gint32 *ids,
                                            const float *embed, const float *hidden,
                                            const QomniMediaGrid *grids, int n_grids);
/* Checks magic, version, kind, offsets, and that size holds every section and that a
 * PROMPT has ids and embed rows and a TOKEN embed rows. */
gboolean qomni_gst_states_parse (const guint8 *data, gsize size, QomniStatesHeader *h,
                                 GError **error);
const char *qomni_gst_states_kind_name (int kind);

static inline const gint32 *
qomni_gst_states_ids (const guint8 *data, const QomniStatesHeader *h)
{
  return h->ids_offset ? (const gint32 *) (data + h->ids_offset) : NULL;
}
static inline const float *
qomni_gst_states_embed (const guint8 *data, const QomniStatesHeader *h)
{
  return h->embed_offset ? (const float *) (data + h->embed_offset) : NULL;
}
static inline const float *
qomni_gst_states_hidden (const guint8 *data, const QomniStatesHeader *h)
{
  return h->hidden_offset ? (const float *) (data + h->hidden_offset) : NULL;
}
static inline const QomniMediaGrid *
qomni_gst_states_grids (const guint8 *data, const QomniStatesHeader *h)
{
  return h->grids_offset && h->n_grids ? (const QomniMediaGrid *) (data + h->grids_offset)
                                       : NULL;
}

G_END_DECLS
