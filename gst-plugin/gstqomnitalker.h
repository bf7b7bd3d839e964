/* qomnitalker — Qwen3-Omni's talker and code predictor as an element: the thinker's
 * states (application/x-qomni-thinker-states) in, 16-codebook codec frames
 * (application/x-qomni-codec, one per 80 ms of speech) out, streamed as the answer grows.
 * docs/elements.md describes it. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QOMNI_TALKER (gst_qomni_talker_get_type ())
G_DECLARE_FINAL_TYPE (GstQomniTalker, gst_qomni_talker, GST, QOMNI_TALKER, GstElement)

GST_ELEMENT_REGISTER_DECLARE (qomnitalker);

G_END_DECLS
