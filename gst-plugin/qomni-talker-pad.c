/* qomni — qomnithinker's talker_%u request pads. */
#include "qomni-talker-pad.h"
#include "qomni-states.h"

#include <stdio.h>

GST_DEBUG_CATEGORY_STATIC (qomni_talker_pad_debug);
#define GST_CAT_DEFAULT qomni_talker_pad_debug

typedef struct {
  GstElement *element;   /* borrowed: the owner of this qdata */
  GList *pads;           /* GstPad*, under the element's object lock */
  guint next_index;      /* under the object lock */
  int width;             /* 0 until the caps are known */

  /* one answer, in the streaming thread */
  gboolean capturing;
  int *ids;
  int n_ids;
  QomniMediaGrid *grids;   /* the prompt's images/videos, for the talker's positions */
  int n_grids;
  int forwards;          /* state callbacks seen in this answer */
  GstClockTime pts;      /* where the spoken answer starts */
  GstClockTime in_pts, in_duration;
  guint answer;          /* answers started */
} TalkerPads;

static GQuark
pads_quark (void)
{
  static GQuark q;
  if (!q)
    q = g_quark_from_static_string ("qomni-talker-pads");
  return q;
}

static void
pads_free (gpointer data)
{
  TalkerPads *p = data;
  g_list_free (p->pads);
  g_free (p->ids);
  g_free (p->grids);
  g_free (p);
}

static TalkerPads *
pads_get (GstElement *element)
{
  GST_OBJECT_LOCK (element);
  TalkerPads *p = g_object_get_qdata (G_OBJECT (element), pads_quark ());
  if (!p) {
    p = g_new0 (TalkerPads, 1);
    p->element = element;
    g_object_set_qdata_full (G_OBJECT (element), pads_quark (), p, pads_free);
  }
  GST_OBJECT_UNLOCK (element);
  return p;
}

static gpointer
ref_pad (gconstpointer pad, gpointer unused)
{
  return gst_object_ref ((gpointer) pad);
}

/* (transfer full) A list of refs on the current pads. */
static GList *
pads_snapshot (TalkerPads *p)
{
  GST_OBJECT_LOCK (p->element);
  GList *l = g_list_copy_deep (p->pads, ref_pad, NULL);
  GST_OBJECT_UNLOCK (p->element);
  return l;
}

static GstStaticPadTemplate talker_template = GST_STATIC_PAD_TEMPLATE (
  "talker_%u", GST_PAD_SRC, GST_PAD_REQUEST, GST_STATIC_CAPS (QOMNI_STATES_CAPS));

static GstPad *
request_new_pad (GstElement *element, GstPadTemplate *templ, const gchar *name,
                 const GstCaps *caps)
{
  TalkerPads *p = pads_get (element);
  GST_OBJECT_LOCK (element);
  guint index = p->next_index;
  if (name && sscanf (name, "talker_%u", &index) == 1) {
    for (GList *l = p->pads; l; l = l->next)
      if (g_str_equal (GST_PAD_NAME (l->data), name)) {
        GST_OBJECT_UNLOCK (element);
        GST_WARNING_OBJECT (element, "pad %s exists already", name);
        return NULL;
      }
  } else {
    index = p->next_index;
  }
  p->next_index = MAX (p->next_index, index + 1);
  GST_OBJECT_UNLOCK (element);

  g_autofree char *pad_name = g_strdup_printf ("talker_%u", index);
  GstPad *pad = gst_pad_new_from_template (templ, pad_name);
  gst_pad_use_fixed_caps (pad);
  GST_OBJECT_LOCK (element);
  p->pads = g_list_append (p->pads, pad);
  GST_OBJECT_UNLOCK (element);
  gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (element, pad);
  GST_DEBUG_OBJECT (element, "added %s", pad_name);
  return pad;
}

static void
release_pad (GstElement *element, GstPad *pad)
{
  TalkerPads *p = pads_get (element);
  GST_OBJECT_LOCK (element);
  p->pads = g_list_remove (p->pads, pad);
  GST_OBJECT_UNLOCK (element);
  gst_pad_set_active (pad, FALSE);
  gst_element_remove_pad (element, pad);
}

void
qomni_talker_pads_class_init (GstElementClass *klass)
{
  GST_DEBUG_CATEGORY_INIT (qomni_talker_pad_debug, "qomnitalkerpad", 0,
                           "qomnithinker's talker pads");
  gst_element_class_add_static_pad_template (klass, &talker_template);
  klass->request_new_pad = request_new_pad;
  klass->release_pad = release_pad;
}

/* Sends what a pad needs before its first buffer: stream-start, caps, a TIME segment
 * (those forwarded from the thinker's sink pad are already there; caps never are). */
static void
prepare_pad (TalkerPads *p, GstPad *pad)
{
  if (!p->width)
    return;
  GstEvent *ev = gst_pad_get_sticky_event (pad, GST_EVENT_STREAM_START, 0);
  if (ev) {
    gst_event_unref (ev);
  } else {
    g_autofree char *id = gst_pad_create_stream_id (pad, p->element, GST_PAD_NAME (pad));
    gst_pad_push_event (pad, gst_event_new_stream_start (id));
  }
  GstCaps *have = gst_pad_get_current_caps (pad);
  if (have) {
    gst_caps_unref (have);
  } else {
    GstCaps *caps = qomni_gst_states_caps (p->width);
    gst_pad_set_caps (pad, caps);
    gst_caps_unref (caps);
  }
  ev = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  if (ev) {
    gst_event_unref (ev);
  } else {
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (pad, gst_event_new_segment (&seg));
  }
}

void
qomni_talker_pads_set_caps (GstElement *element, int width)
{
  TalkerPads *p = pads_get (element);
  p->width = width;
  GList *pads = pads_snapshot (p);
  for (GList *l = pads; l; l = l->next) {
    GstCaps *caps = qomni_gst_states_caps (width);
    gst_pad_set_caps (l->data, caps);
    gst_caps_unref (caps);
  }
  g_list_free_full (pads, gst_object_unref);
}

static void
push_all (TalkerPads *p, GstBuffer *buf)
{
  GList *pads = pads_snapshot (p);
  for (GList *l = pads; l; l = l->next) {
    prepare_pad (p, l->data);
    GstFlowReturn ret = gst_pad_push (l->data, gst_buffer_ref (buf));
    if (ret != GST_FLOW_OK && ret != GST_FLOW_NOT_LINKED)
      GST_DEBUG_OBJECT (l->data, "push: %s", gst_flow_get_name (ret));
  }
  g_list_free_full (pads, gst_object_unref);
  gst_buffer_unref (buf);
}

static GstBuffer *
states_buffer (TalkerPads *p, QomniStatesKind kind, int n, const gint32 *ids,
               const float *embed, const float *hidden)
{
  QomniStatesHeader h = {
    .kind = kind,
    .n_rows = (guint32) n,
    .width = (guint32) p->width,
    .segment_index = p->answer,
    .pts = GST_CLOCK_TIME_IS_VALID (p->in_pts) ? p->in_pts : G_MAXUINT64,
    .duration = GST_CLOCK_TIME_IS_VALID (p->in_duration) ? p->in_duration : G_MAXUINT64,
  };
  GstBuffer *buf = kind == QOMNI_STATES_PROMPT
    ? qomni_gst_states_new_with_grids (&h, ids, embed, hidden, p->grids, p->n_grids)
    : qomni_gst_states_new (&h, ids, embed, hidden);
  GST_BUFFER_PTS (buf) = p->pts;
  return buf;
}

/* The thinker ran a forward: the prompt first, then one fed token at a time. */
static void
on_state (const float *embed, const float *hidden, int n, gpointer user)
{
  TalkerPads *p = user;
  GstBuffer *buf;
  if (p->forwards++ == 0) {
    if (n != p->n_ids)
      GST_WARNING_OBJECT (p->element, "the prompt forward ran %d positions, the prompt has %d",
                          n, p->n_ids);
    gint32 *ids = g_new (gint32, MAX (n, 1));
    for (int i = 0; i < n; i++)
      ids[i] = i < p->n_ids ? p->ids[i] : -1;
    buf = states_buffer (p, QOMNI_STATES_PROMPT, n, ids, embed, hidden);
    g_free (ids);
  } else {
    buf = states_buffer (p, QOMNI_STATES_TOKEN, n, NULL, embed, NULL);
  }
  push_all (p, buf);
}

void
qomni_talker_pads_begin (GstElement *element, QomniThinker *thinker, const QomniConfig *config,
                         const int *ids, int n, const QomniMediaGrid *grids, int n_grids,
                         GstClockTime pts, GstClockTime duration)
{
  TalkerPads *p = pads_get (element);
  GST_OBJECT_LOCK (element);
  const gboolean any = p->pads != NULL;
  GST_OBJECT_UNLOCK (element);
  if (!any || !p->width)
    return;
  if (!config->talker.present) {
    GST_WARNING_OBJECT (element, "a talker pad is linked but the model has no talker");
    return;
  }
  g_free (p->ids);
  p->ids = g_memdup2 (ids, sizeof (int) * (gsize) n);
  p->n_ids = n;
  g_free (p->grids);
  p->n_grids = grids ? MAX (n_grids, 0) : 0;
  p->grids = p->n_grids ? g_memdup2 (grids, sizeof *grids * (gsize) p->n_grids) : NULL;
  p->forwards = 0;
  p->in_pts = pts;
  p->in_duration = duration;
  p->pts = GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration) ? pts + duration
                                                                                : pts;
  p->capturing = TRUE;
  qomni_thinker_set_state_fn (thinker, config->talker.accept_hidden_layer, on_state, p);
}

void
qomni_talker_pads_end (GstElement *element, QomniThinker *thinker)
{
  TalkerPads *p = pads_get (element);
  if (!p->capturing)
    return;
  qomni_thinker_set_state_fn (thinker, 0, NULL, NULL);
  p->capturing = FALSE;
  if (p->forwards > 0)
    push_all (p, states_buffer (p, QOMNI_STATES_END, 0, NULL, NULL, NULL));
  p->answer++;
}
