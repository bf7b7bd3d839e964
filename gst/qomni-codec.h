/* qomni — the codec stream from qomnitalker to qomnivocoder:
 * caps `application/x-qomni-codec, format=S32LE, codebooks=(int)16, framerate=(fraction)25/2`,
 * no header: each buffer holds whole frames of `codebooks` int32 codes (frame-major
 * [n_frames, codebooks], codebook 0 first), PTS and duration advancing 80 ms per frame
 * (README.md, "Codec frames"). The first frame of each utterance carries
 * GST_BUFFER_FLAG_DISCONT, and after an utterance's last frame the talker sends the
 * custom downstream event QOMNI_CODEC_UTTERANCE_END so a vocoder drains it.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define QOMNI_CODEC_MEDIA_TYPE "application/x-qomni-codec"
#define QOMNI_CODEC_FRAME_DURATION (80 * GST_MSECOND)
#define QOMNI_CODEC_CAPS                                                         \
  QOMNI_CODEC_MEDIA_TYPE ", format=(string)S32LE, codebooks=(int)[1,64], " \
                         "framerate=(fraction)25/2"
/* Structure name of the serialized downstream event that closes an utterance. */
#define QOMNI_CODEC_UTTERANCE_END "qomni/utterance-end"

/* (transfer full) Fixed caps for frames of `codebooks` codes. */
GstCaps *qomni_gst_codec_caps (int codebooks);
/* (transfer full) One buffer of n_frames frames copied from frames [n_frames, codebooks]. */
GstBuffer *qomni_gst_codec_new (const int *frames, int n_frames, int codebooks);
/* (transfer full) The utterance-end event (segment_index: the talker's utterance count). */
GstEvent *qomni_gst_codec_utterance_end_new (guint segment_index);
gboolean qomni_gst_codec_is_utterance_end (GstEvent *event);

G_END_DECLS
