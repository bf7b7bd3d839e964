/* qomniencode — 16 kHz mono audio → audio embeddings (log-mel + AuT encoder), one buffer of
 * application/x-qomni-embeddings per segment. docs/elements.md describes it. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QOMNI_ENCODE (gst_qomni_encode_get_type ())
G_DECLARE_FINAL_TYPE (GstQomniEncode, gst_qomni_encode, GST, QOMNI_ENCODE, GstElement)

GST_ELEMENT_REGISTER_DECLARE (qomniencode);

G_END_DECLS
