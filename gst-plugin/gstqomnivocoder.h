/* qomnivocoder — Qwen3-Omni's Code2Wav as an element: codec frames
 * (application/x-qomni-codec) in, 24 kHz mono F32LE speech out, decoded a few frames at a
 * time with left context. docs/elements.md describes it. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QOMNI_VOCODER (gst_qomni_vocoder_get_type ())
G_DECLARE_FINAL_TYPE (GstQomniVocoder, gst_qomni_vocoder, GST, QOMNI_VOCODER, GstElement)

GST_ELEMENT_REGISTER_DECLARE (qomnivocoder);

G_END_DECLS
