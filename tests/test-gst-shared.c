/* Two pipelines with qomnithinker device=vulkan in one process (tiny-omni fixture): the
 * application hands the qomni.vulkan.device context the first one announced (have-context)
 * to the second (gst_element_set_context), and the device grows by the thinker's weights
 * once. The first thinker takes the staging ring + weights + its state (m1), the second
 * only its state (m2 − m1); stopping the second gives back exactly its state, stopping the
 * first everything but the staging ring (m_end), so the weights are m1 − (m2 − m1) − m_end:
 * at least the store's thinker.model.* and lm_head bytes, at most 1% more (alignment), in
 * one shared object. Both answer the same question at the same time (two streaming threads
 * on one device) with the same non-empty text.
 * Exits 77 (meson SKIP) where no Vulkan device exists or the build has no Vulkan backend. */
#include "qomni-gst.h"
#include "weights.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>

#define QUESTION "Hello, who are you?"

#ifdef QOMNI_HAVE_VULKAN
static int failures;

static void
expect (gboolean ok, const char *what)
{
  printf ("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}

static void
sum_thinker_bytes (const QomniTensor *t, gpointer user)
{
  if (g_str_has_prefix (t->name, "thinker.model.") || g_str_equal (t->name,
                                                                    "thinker.lm_head.weight"))
    *(uint64_t *) user += t->nbytes;
}

static GstElement *
pipeline_new (const char *model)
{
  GError *error = NULL;
  g_autofree char *desc = g_strdup_printf (
      "appsrc name=in caps=text/x-raw,format=utf8 format=time ! "
      "qomnithinker model=%s device=vulkan temperature=0 max-tokens=6 ! "
      "appsink name=out sync=false", model);
  GstElement *p = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  return p;
}

/* (transfer full) Everything the pipeline's appsink got until EOS, as one string. */
static char *
collect_text (GstElement *pipeline)
{
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  GString *text = g_string_new (NULL);
  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstMapInfo map;
    if (gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ)) {
      g_string_append_len (text, (const char *) map.data, (gssize) map.size);
      gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
    }
    gst_sample_unref (sample);
  }
  gst_object_unref (sink);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *err = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (err) {
    GError *e = NULL;
    gst_message_parse_error (err, &e, NULL);
    printf ("FAIL: %s\n", e->message);
    failures++;
    g_error_free (e);
    gst_message_unref (err);
  }
  gst_object_unref (bus);
  return g_string_free (text, FALSE);
}

/* (transfer full) The qomni.vulkan.device context the pipeline announced, NULL if none. */
static GstContext *
announced_device (GstElement *pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstContext *found = NULL;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_HAVE_CONTEXT))) {
    GstContext *ctx = NULL;
    gst_message_parse_have_context (msg, &ctx);
    if (!found && g_strcmp0 (gst_context_get_context_type (ctx),
                             QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE) == 0)
      found = gst_context_ref (ctx);
    gst_context_unref (ctx);
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  return found;
}

/* The context's device. Read without naming its boxed type: that type belongs to the
 * plugin's copy of libgstqomni, and registering this program's copy would clash with it. */
static QomniVk *
context_vk (GstContext *ctx)
{
  const GValue *v = gst_structure_get_value (gst_context_get_structure (ctx), "device");
  return v ? qomni_gst_device_vk (g_value_get_boxed (v)) : NULL;
}

static void
ask (GstElement *pipeline)
{
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "in");
  GstBuffer *b = gst_buffer_new_memdup (QUESTION, strlen (QUESTION));
  GST_BUFFER_PTS (b) = 0;
  gst_app_src_push_buffer (GST_APP_SRC (src), b);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  gst_object_unref (src);
}
#endif

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
#ifndef QOMNI_HAVE_VULKAN
  printf ("SKIP: built without the Vulkan backend\n");
  return 77;
#else
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  qomni_vk_free (vk);
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  g_autofree char *model = g_build_filename (shared ? shared : "../shared", "fixtures",
                                             "tiny-omni", NULL);
  QomniWeights *w = qomni_weights_open (model, &error);
  g_assert_no_error (error);
  uint64_t store_bytes = 0;
  qomni_weights_foreach (w, sum_thinker_bytes, &store_bytes);
  qomni_weights_free (w);

  GstElement *p1 = pipeline_new (model);
  GstElement *p2 = pipeline_new (model);
  expect (gst_element_set_state (p1, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS,
          "the first pipeline reaches READY");
  GstContext *ctx = announced_device (p1);
  vk = ctx ? context_vk (ctx) : NULL;
  expect (vk != NULL, "it announced its device");
  if (!vk)
    return 1;
  const uint64_t m1 = qomni_vk_allocated (vk);
  /* what an application does to run several pipelines on one device */
  gst_element_set_context (p2, ctx);
  expect (gst_element_set_state (p2, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS,
          "the second pipeline reaches READY");
  GstContext *ctx2 = announced_device (p2);
  expect (ctx2 == NULL, "the second pipeline used the device it was given");
  if (ctx2)
    gst_context_unref (ctx2);
  const uint64_t m2 = qomni_vk_allocated (vk);
  expect (qomni_vk_shared_count (vk) == 1, "one shared object on the device");

  /* both at once */
  gst_element_set_state (p1, GST_STATE_PLAYING);
  gst_element_set_state (p2, GST_STATE_PLAYING);
  ask (p1);
  ask (p2);
  g_autofree char *t1 = collect_text (p1);
  g_autofree char *t2 = collect_text (p2);
  printf ("answers: \"%s\" and \"%s\"\n", t1, t2);
  expect (*t1 && g_str_equal (t1, t2), "the two pipelines answer alike");

  gst_element_set_state (p2, GST_STATE_NULL);
  expect (qomni_vk_allocated (vk) == m1 && qomni_vk_shared_count (vk) == 1,
          "stopping one gives back its state only");
  gst_element_set_state (p1, GST_STATE_NULL);
  const uint64_t m_end = qomni_vk_allocated (vk);
  expect (qomni_vk_shared_count (vk) == 0, "stopping both frees the weights");
  const uint64_t state = m2 - m1, weights = m1 - state - m_end;
  printf ("device memory: first thinker +%" G_GUINT64_FORMAT " B (weights %" G_GUINT64_FORMAT
          " B), second +%" G_GUINT64_FORMAT " B; the store's thinker weights %"
          G_GUINT64_FORMAT " B\n", m1 - m_end, weights, state, store_bytes);
  expect (state > 0 && weights >= store_bytes && weights <= store_bytes + store_bytes / 100,
          "the second thinker adds its state only: the weights were uploaded once");
  gst_object_unref (p1);
  gst_object_unref (p2);
  gst_context_unref (ctx);
  printf ("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
#endif
}
