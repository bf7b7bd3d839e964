/* qomni — the codec frame stream. */
#include "qomni-codec.h"

#include <string.h>

GstCaps *
qomni_gst_codec_caps (int codebooks)
{
  return gst_caps_new_simple (QOMNI_CODEC_MEDIA_TYPE, "format", G_TYPE_STRING, "S32LE",
                              "codebooks", G_TYPE_INT, codebooks, "framerate",
                              GST_TYPE_FRACTION, 25, 2, NULL);
}

GstBuffer *
qomni_gst_codec_new (const int *frames, int n_frames, int codebooks)
{
  const gsize n = (gsize) n_frames * codebooks;
  GstBuffer *buf = gst_buffer_new_allocate (NULL, n * sizeof (gint32), NULL);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  gint32 *out = (gint32 *) map.data;
  for (gsize i = 0; i < n; i++)
    out[i] = GINT32_TO_LE (frames[i]);
  gst_buffer_unmap (buf, &map);
  return buf;
}

GstEvent *
qomni_gst_codec_utterance_end_new (guint segment_index)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
                               gst_structure_new (QOMNI_CODEC_UTTERANCE_END, "segment-index",
                                                  G_TYPE_UINT, segment_index, NULL));
}

gboolean
qomni_gst_codec_is_utterance_end (GstEvent *event)
{
  return GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_DOWNSTREAM &&
         gst_event_has_name (event, QOMNI_CODEC_UTTERANCE_END);
}
