/* qomniencode in a GstHarness (tiny-omni fixture): a rate it does not take (refused with a
 * message that says what to do), empty input, a single sample, NaN/Inf samples, a minute
 * of silence with chunk-duration=0 (cut at max-segment-duration), chunking and
 * timestamps, the latency query. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "qomni-embeddings.h"

#include <math.h>
#include <string.h>

#define F32_CAPS "audio/x-raw, format=(string)F32LE, rate=(int)16000, channels=(int)1, " \
                 "layout=(string)interleaved"

static char *model_dir;

static GstHarness *
harness_new (guint chunk_ms)
{
  GstElement *e = gst_object_ref_sink (gst_element_factory_make ("qomniencode", NULL));
  fail_unless (e != NULL, "qomniencode not found: is GST_PLUGIN_PATH set?");
  g_object_set (e, "model", model_dir, "chunk-duration", chunk_ms, NULL);
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  return h;
}

static GstBuffer *
f32_buffer (int n, float value, GstClockTime pts)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, (gsize) n * 4, NULL);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  for (int i = 0; i < n; i++)
    ((float *) map.data)[i] = value;
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = gst_util_uint64_scale_int (n, GST_SECOND, 16000);
  return b;
}

/* Checks an output buffer's header against its timestamps; returns the header. */
static QomniEmbeddingsHeader
check_output (GstBuffer *b)
{
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  QomniEmbeddingsHeader hd;
  GError *error = NULL;
  fail_unless (qomni_gst_embeddings_parse (map.data, map.size, &hd, &error));
  fail_unless (hd.n_rows > 0);
  fail_unless_equals_uint64 (hd.pts, GST_BUFFER_PTS (b));
  fail_unless_equals_uint64 (hd.duration, GST_BUFFER_DURATION (b));
  fail_unless_equals_int (hd.n_mel_frames, hd.n_samples / 160);
  const float *rows = (const float *) (map.data + hd.header_size);
  for (guint i = 0; i < hd.n_rows * hd.width; i++)
    fail_unless (isfinite (rows[i]));
  gst_buffer_unmap (b, &map);
  return hd;
}

GST_START_TEST (test_wrong_rate)
{
  GstHarness *h = harness_new (8000);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (h->element, bus);
  /* the caps query offers 16 kHz mono only, so converters upstream pick it */
  GstCaps *offered = gst_pad_peer_query_caps (h->srcpad, NULL);
  GstCaps *want = gst_caps_from_string ("audio/x-raw, rate=(int)16000, channels=(int)1");
  fail_unless (gst_caps_is_subset (offered, want));
  gst_caps_unref (want);
  gst_caps_unref (offered);
  GstCaps *caps = gst_caps_from_string (
    "audio/x-raw, format=(string)F32LE, rate=(int)44100, channels=(int)1, "
    "layout=(string)interleaved");
  gst_harness_push_event (h, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  GError *err = NULL;
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "16000 Hz") && strstr (err->message, "44100 Hz") &&
               strstr (err->message, "audioresample"), "unclear message: %s", err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_empty)
{
  GstHarness *h = harness_new (8000);
  gst_harness_set_src_caps_str (h, F32_CAPS);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_new ()), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_one_sample)
{
  /* shorter than one mel frame: dropped, a GAP covers its time */
  GstHarness *h = harness_new (8000);
  gst_harness_set_src_caps_str (h, F32_CAPS);
  fail_unless_equals_int (gst_harness_push (h, f32_buffer (1, 0.5f, 0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_received (h), 0);
  gboolean gap = FALSE;
  GstEvent *ev;
  while ((ev = gst_harness_try_pull_event (h))) {
    gap |= GST_EVENT_TYPE (ev) == GST_EVENT_GAP;
    gst_event_unref (ev);
  }
  fail_unless (gap);
  gst_harness_teardown (h);
}
GST_END_TEST;

/* (transfer full) The rows one second of `value` encodes to. */
static GBytes *
encode_second (float value)
{
  GstHarness *h = harness_new (0);
  gst_harness_set_src_caps_str (h, F32_CAPS);
  fail_unless_equals_int (gst_harness_push (h, f32_buffer (16000, value, 0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  GstBuffer *b = gst_harness_pull (h);
  check_output (b);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  GBytes *bytes = g_bytes_new (map.data + QOMNI_EMBEDDINGS_HEADER_SIZE,
                               map.size - QOMNI_EMBEDDINGS_HEADER_SIZE);
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  gst_harness_teardown (h);
  return bytes;
}

GST_START_TEST (test_non_finite)
{
  GBytes *zero = encode_second (0.0f), *nan = encode_second (NAN), *inf = encode_second (INFINITY);
  fail_unless (g_bytes_equal (zero, nan));
  fail_unless (g_bytes_equal (zero, inf));
  g_bytes_unref (zero);
  g_bytes_unref (nan);
  g_bytes_unref (inf);
}
GST_END_TEST;

GST_START_TEST (test_long_silence)
{
  /* a minute of silence, chunk-duration 0: cut at max-segment-duration (30 s), so a
   * segment never holds more than 30 s however long the stream */
  GstHarness *h = harness_new (0);
  gst_harness_set_src_caps_str (h, F32_CAPS);
  for (int s = 0; s < 60; s++) {
    fail_unless_equals_int (gst_harness_push (h, f32_buffer (16000, 0.0f, s * GST_SECOND)),
                            GST_FLOW_OK);
    if (s == 28)
      fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
    if (s == 29)
      fail_unless_equals_int (gst_harness_buffers_in_queue (h), 1);
  }
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 2);
  for (int i = 0; i < 2; i++) {
    GstBuffer *b = gst_harness_pull (h);
    QomniEmbeddingsHeader hd = check_output (b);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), i * 30 * GST_SECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 30 * GST_SECOND);
    fail_unless_equals_int (hd.n_samples, 30 * 16000);
    fail_unless_equals_int (hd.segment_index, i);
    gst_buffer_unref (b);
  }
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_chunks)
{
  /* 2.5 s in 100 ms buffers with chunk-duration 1000: segments at 0, 1, 2 s, the last
   * one (0.5 s) closed by EOS; S16LE input */
  GstHarness *h = harness_new (1000);
  gst_harness_set_src_caps_str (h, "audio/x-raw, format=(string)S16LE, rate=(int)16000, "
                                   "channels=(int)1, layout=(string)interleaved");
  for (int i = 0; i < 25; i++) {
    GstBuffer *b = gst_buffer_new_allocate (NULL, 1600 * 2, NULL);
    gst_buffer_memset (b, 0, 0x11, 1600 * 2);
    GST_BUFFER_PTS (b) = 7 * GST_SECOND + i * 100 * GST_MSECOND;
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
  }
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 3);
  const GstClockTime dur[3] = { GST_SECOND, GST_SECOND, GST_SECOND / 2 };
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (gst_structure_has_name (gst_caps_get_structure (caps, 0),
                                       QOMNI_EMBEDDINGS_MEDIA_TYPE));
  gst_caps_unref (caps);
  for (int i = 0; i < 3; i++) {
    GstBuffer *b = gst_harness_pull (h);
    check_output (b);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), 7 * GST_SECOND + i * GST_SECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), dur[i]);
    gst_buffer_unref (b);
  }
  gst_harness_teardown (h);
}
GST_END_TEST;

GST_START_TEST (test_latency)
{
  GstHarness *h = harness_new (2000);
  gst_harness_set_upstream_latency (h, 50 * GST_MSECOND);
  /* upstream + one chunk + the processing allowance (200 ms) */
  fail_unless_equals_uint64 (gst_harness_query_latency (h), 2250 * GST_MSECOND);
  gst_harness_teardown (h);
}
GST_END_TEST;

static Suite *
encode_suite (void)
{
  Suite *s = suite_create ("qomniencode");
  TCase *tc = tcase_create ("general");
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  model_dir = g_build_filename (shared ? shared : "../shared", "fixtures", "tiny-omni", NULL);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_wrong_rate);
  tcase_add_test (tc, test_empty);
  tcase_add_test (tc, test_one_sample);
  tcase_add_test (tc, test_non_finite);
  tcase_add_test (tc, test_long_silence);
  tcase_add_test (tc, test_chunks);
  tcase_add_test (tc, test_latency);
  return s;
}

GST_CHECK_MAIN (encode);
