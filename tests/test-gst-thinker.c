/* qomnithinker in a GstHarness (tiny-omni fixture): caps, a text turn answered exactly as
 * the core library answers it, timestamps, latency, EOS, flush in the middle of an answer,
 * repeated state changes, a bad model path, invalid UTF-8; and the model cache of
 * libgstqomni (one load per path per process). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "generate.h"
#include "qomni-gst.h"

#include <string.h>

#define QUESTION "Hello, who are you?"

static char *model_dir;

static GstElement *
thinker_new (const char *path, guint max_tokens)
{
  GstElement *e = gst_element_factory_make ("qomnithinker", NULL);
  fail_unless (e != NULL, "qomnithinker not found: is GST_PLUGIN_PATH set?");
  g_object_set (e, "model", path, "temperature", 0.0f, "max-tokens", max_tokens, NULL);
  return gst_object_ref_sink (e);
}

static GstHarness *
harness_new (guint max_tokens)
{
  GstElement *e = thinker_new (model_dir, max_tokens);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  return h;
}

static GstBuffer *
text_buffer (const char *text, GstClockTime pts, GstClockTime duration)
{
  GstBuffer *b = gst_buffer_new_memdup (text, strlen (text));
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = duration;
  return b;
}

/* (transfer full) What libqomni answers to QUESTION greedily: the element must agree. */
static char *
core_answer (int max_tokens)
{
  GError *error = NULL;
  QomniModel *m = qomni_model_load (model_dir, &error);
  fail_unless (m != NULL);
  QomniChat *chat = qomni_chat_new ();
  qomni_chat_begin (chat, "system");
  qomni_chat_text (chat, "You are a helpful assistant.");
  qomni_chat_end (chat);
  qomni_chat_begin (chat, "user");
  qomni_chat_text (chat, QUESTION);
  qomni_chat_end (chat);
  qomni_chat_assistant_prompt (chat);
  int n = 0;
  int *ids = qomni_chat_tokenize (chat, m->tokenizer, &n, &error);
  qomni_chat_free (chat);
  QomniThinker *t = qomni_thinker_new (m->weights, m->config, 512, &error);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (int));
  QomniGenerateParams p = { .sampling = QOMNI_SAMPLER_PARAMS_GREEDY, .max_tokens = max_tokens,
                            .stop_ids = { -1, -1, -1, -1 } };
  fail_unless (qomni_generate (t, m->tokenizer, ids, n, NULL, 0, &p, NULL, NULL, out, NULL,
                               &error));
  GArray *shown = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < out->len; i++) {
    int id = g_array_index (out, int, i);
    if (!qomni_tokenizer_is_special (m->tokenizer, id))
      g_array_append_val (shown, id);
  }
  char *text = qomni_tokenizer_decode (m->tokenizer, (int *) shown->data, (int) shown->len,
                                       TRUE);
  g_array_free (shown, TRUE);
  g_array_free (out, TRUE);
  g_free (ids);
  qomni_thinker_free (t);
  qomni_model_unref (m);
  return text;
}

static gboolean
pull_custom_event (GstHarness *h, const char *name)
{
  GstEvent *ev;
  gboolean found = FALSE;
  while (!found && (ev = gst_harness_try_pull_event (h))) {
    found = GST_EVENT_TYPE (ev) == GST_EVENT_CUSTOM_DOWNSTREAM &&
            gst_event_has_name (ev, name);
    gst_event_unref (ev);
  }
  return found;
}

GST_START_TEST (test_text_turn)
{
  GstHarness *h = harness_new (12);
  const GstClockTime pts = 5 * GST_SECOND, dur = 2 * GST_SECOND;
  fail_unless_equals_int (gst_harness_push (h, text_buffer (QUESTION, pts, dur)), GST_FLOW_OK);

  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (caps != NULL);
  GstCaps *want = gst_caps_from_string ("text/x-raw, format=(string)utf8");
  fail_unless (gst_caps_is_equal (caps, want));
  gst_caps_unref (want);
  gst_caps_unref (caps);

  const guint n = gst_harness_buffers_in_queue (h);
  fail_unless (n >= 1);
  GString *all = g_string_new (NULL);
  GstClockTime last = 0;
  for (guint i = 0; i < n; i++) {
    GstBuffer *b = gst_harness_pull (h);
    GstMapInfo map;
    gst_buffer_map (b, &map, GST_MAP_READ);
    /* every buffer holds whole characters */
    fail_unless (map.size > 0 && g_utf8_validate ((const char *) map.data, map.size, NULL));
    g_string_append_len (all, (const char *) map.data, map.size);
    gst_buffer_unmap (b, &map);
    /* inside the turn's time span, in order */
    fail_unless (GST_BUFFER_PTS_IS_VALID (b) && GST_BUFFER_DURATION_IS_VALID (b));
    fail_unless (GST_BUFFER_PTS (b) >= MAX (pts, last));
    fail_unless (GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b) <= pts + dur);
    last = GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b);
    gst_buffer_unref (b);
  }
  g_autofree char *expect = core_answer (12);
  fail_unless_equals_string (all->str, expect);
  g_string_free (all, TRUE);
  fail_unless (pull_custom_event (h, "rstranscribe/final-transcript"));
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h = harness_new (4);
  gst_harness_set_upstream_latency (h, 100 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 2100 * GST_MSECOND);
  g_object_set (h->element, "latency", 500, NULL);
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 600 * GST_MSECOND);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_eos)
{
  GstHarness *h = harness_new (6);
  fail_unless_equals_int (gst_harness_push (h, text_buffer (QUESTION, 0, GST_SECOND)),
                          GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless (gst_harness_buffers_in_queue (h) >= 1);
  /* EOS comes after the answer and its final-transcript event */
  gboolean final = FALSE, eos = FALSE;
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_CUSTOM_DOWNSTREAM)
      final = TRUE;
    if (GST_EVENT_TYPE (ev) == GST_EVENT_EOS) {
      fail_unless (final);
      eos = TRUE;
    }
    gst_event_unref (ev);
  }
  fail_unless (eos);
  gst_harness_teardown (h);
}
GST_END_TEST;

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean blocked;
} Gate;

static GstPadProbeReturn
block_first (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  Gate *g = user;
  g_mutex_lock (&g->lock);
  g->blocked = TRUE;
  g_cond_signal (&g->cond);
  g_mutex_unlock (&g->lock);
  return GST_PAD_PROBE_OK;   /* stays blocked until flushing */
}

static gpointer
push_thread (gpointer h)
{
  return GINT_TO_POINTER (gst_harness_push (h, text_buffer (QUESTION, 0, GST_SECOND)));
}

GST_START_TEST (test_flush_mid_answer)
{
  GstHarness *h = harness_new (64);
  GstPad *src = gst_element_get_static_pad (h->element, "src");
  Gate g = { .blocked = FALSE };
  g_mutex_init (&g.lock);
  g_cond_init (&g.cond);
  gulong probe = gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER,
                                    block_first, &g, NULL);
  GThread *t = g_thread_new ("push", push_thread, h);
  g_mutex_lock (&g.lock);
  while (!g.blocked)
    g_cond_wait (&g.cond, &g.lock);
  g_mutex_unlock (&g.lock);
  /* the answer is stuck on its first token: flush */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless_equals_int (GPOINTER_TO_INT (g_thread_join (t)), GST_FLOW_FLUSHING);
  gst_pad_remove_probe (src, probe);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&seg)));
  /* and the element answers the next turn from a fresh state */
  while (gst_harness_buffers_in_queue (h))
    gst_buffer_unref (gst_harness_pull (h));
  fail_unless_equals_int (gst_harness_push (h, text_buffer (QUESTION, 0, GST_SECOND)),
                          GST_FLOW_OK);
  fail_unless (gst_harness_buffers_in_queue (h) >= 1);
  gst_object_unref (src);
  g_mutex_clear (&g.lock);
  g_cond_clear (&g.cond);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_state_changes)
{
  GstHarness *h = harness_new (4);
  for (int i = 0; i < 4; i++) {
    fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
                            GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_PLAYING),
                            GST_STATE_CHANGE_SUCCESS);
  }
  gst_harness_set_src_caps_str (h, "text/x-raw, format=(string)utf8");
  fail_unless_equals_int (gst_harness_push (h, text_buffer (QUESTION, 0, GST_SECOND)),
                          GST_FLOW_OK);
  fail_unless (gst_harness_buffers_in_queue (h) >= 1);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_bad_model)
{
  GstElement *e = thinker_new ("/nonexistent/qomni-model", 4);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                          GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  GError *err = NULL;
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "/nonexistent/qomni-model") != NULL, "%s", err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}
GST_END_TEST;

GST_START_TEST (test_invalid_utf8)
{
  GstHarness *h = harness_new (4);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  fail_unless_equals_int (gst_harness_push (h, text_buffer ("ab\xff\xfe", 0, GST_SECOND)),
                          GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (m != NULL);
  gst_message_unref (m);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_model_cache)
{
  /* two elements naming one path share one QomniModel; it unloads with the last */
  GstElement *a = gst_object_ref_sink (gst_element_factory_make ("identity", NULL));
  GstElement *b = gst_object_ref_sink (gst_element_factory_make ("identity", NULL));
  GError *error = NULL;
  QomniModel *ma = qomni_gst_model_ensure (a, model_dir, &error);
  fail_unless (ma != NULL);
  g_autofree char *alias = g_strdup_printf ("%s/./", model_dir);
  QomniModel *mb = qomni_gst_model_ensure (b, alias, &error);
  fail_unless (ma == mb);
  qomni_gst_model_release (ma);
  qomni_gst_model_release (mb);
  /* an application-supplied context wins over loading */
  QomniModel *app = qomni_model_load (model_dir, &error);
  GstContext *ctx = qomni_gst_model_context_new (app);
  gst_element_set_context (a, ctx);
  gst_context_unref (ctx);
  QomniModel *mc = qomni_gst_model_ensure (a, NULL, &error);
  fail_unless (mc == app);
  qomni_gst_model_release (mc);
  qomni_model_unref (app);
  gst_object_unref (a);
  gst_object_unref (b);
}
GST_END_TEST;

static Suite *
thinker_suite (void)
{
  Suite *s = suite_create ("qomnithinker");
  TCase *tc = tcase_create ("general");
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  model_dir = g_build_filename (shared ? shared : "../shared", "fixtures", "tiny-omni", NULL);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_text_turn);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_eos);
  tcase_add_test (tc, test_flush_mid_answer);
  tcase_add_test (tc, test_state_changes);
  tcase_add_test (tc, test_bad_model);
  tcase_add_test (tc, test_invalid_utf8);
  tcase_add_test (tc, test_model_cache);
  return s;
}

GST_CHECK_MAIN (thinker);
