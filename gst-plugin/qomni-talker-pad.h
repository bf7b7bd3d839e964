/* qomni — qomnithinker's request pads `talker_%u`: what the thinker computes for the
 * talker (per forward, hs[0] and hs[accept_hidden_layer] rows, architecture notes §7.5),
 * pushed as application/x-qomni-thinker-states (gst/qomni-states.h).
 *
 * Kept apart from the thinker element so that it needs four calls there:
 *
 *   class_init:       qomni_talker_pads_class_init (element_class);
 *   sink CAPS event:  qomni_talker_pads_set_caps (element, hidden_size);
 *   around generate:  qomni_talker_pads_begin (element, thinker, config, ids, n, grids,
 *                                              n_grids, pts, dur);
 *                     qomni_generate (...);
 *                     qomni_talker_pads_end (element, thinker);
 *
 * Without a requested pad begin and end do nothing and the thinker computes nothing extra.
 * The pads' state lives in the element's qdata and is freed with it. Buffers are pushed
 * from the thinker's streaming thread, inside qomni_generate: a talker behind a pad runs in
 * that thread unless a queue separates them.
 */
#pragma once

#include <gst/gst.h>

#include "config.h"
#include "positions.h"
#include "thinker.h"

G_BEGIN_DECLS

/* Adds the talker_%u template and the request/release vfuncs to the element class. */
void qomni_talker_pads_class_init (GstElementClass *klass);
/* The thinker's input caps are known: the talker pads carry rows `width` wide. */
void qomni_talker_pads_set_caps (GstElement *element, int width);
/* Starts an answer to prompt ids [n] with its images'/videos' grids in prompt order (NULL,
 * 0 for none): from now on every forward of thinker goes to the pads (the prompt as a
 * PROMPT buffer carrying the grids, each fed token as a TOKEN buffer). pts/duration: the
 * input answered (the speech is placed at pts + duration). */
void qomni_talker_pads_begin (GstElement *element, QomniThinker *thinker,
                              const QomniConfig *config, const int *ids, int n,
                              const QomniMediaGrid *grids, int n_grids,
                              GstClockTime pts, GstClockTime duration);
/* The answer is complete (or was interrupted): pushes END and stops the capture. */
void qomni_talker_pads_end (GstElement *element, QomniThinker *thinker);

G_END_DECLS
