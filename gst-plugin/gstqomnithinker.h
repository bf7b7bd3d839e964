/* qomnithinker — Qwen3-Omni's thinker as an element: audio embeddings or a text turn in,
 * the answer out as UTF-8 text streamed token by token. docs/elements.md describes it. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QOMNI_THINKER (gst_qomni_thinker_get_type ())
G_DECLARE_FINAL_TYPE (GstQomniThinker, gst_qomni_thinker, GST, QOMNI_THINKER, GstElement)

#define GST_TYPE_QOMNI_THINKER_TASK (gst_qomni_thinker_task_get_type ())
GType gst_qomni_thinker_task_get_type (void);

GST_ELEMENT_REGISTER_DECLARE (qomnithinker);

G_END_DECLS
