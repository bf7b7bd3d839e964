/* Two qomni elements with device=vulkan in one pipeline share one Vulkan device through
 * the qomni.vulkan.device context: exactly one have-context of that type on the bus, and
 * the pipeline runs the fixture's prompt to EOS. Then qomniencode device=vulkan computes
 * on the GPU what device=cpu computes: the same segments and rows, NMSE ≤ 1e-9 (the
 * encoders' own tolerance against each other, tests/test-vk-audio.c). Exits 77 (meson
 * SKIP) where no Vulkan device exists or the build has no Vulkan backend. */
#include "qomni-embeddings.h"
#include "qomni-gst.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>

static int
count_device_contexts (GstBus *bus)
{
  int n = 0;
  GstMessage *msg;
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_HAVE_CONTEXT | GST_MESSAGE_ERROR))) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *e = NULL;
      gst_message_parse_error (msg, &e, NULL);
      printf ("error: %s\n", e->message);
      g_error_free (e);
      n = -1000;
    } else {
      GstContext *ctx = NULL;
      gst_message_parse_have_context (msg, &ctx);
      if (g_strcmp0 (gst_context_get_context_type (ctx), QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE) == 0)
        n++;
      gst_context_unref (ctx);
    }
    gst_message_unref (msg);
  }
  return n;
}

/* The rows qomniencode device=`device` makes of two seconds of a sine, end to end; NULL
 * when the pipeline fails. *n_segments counts its buffers. */
static GArray *
encode_rows (const char *model, const char *device, int *n_segments)
{
  GError *error = NULL;
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc wave=sine freq=330 num-buffers=20 samplesperbuffer=1600 ! "
      "audio/x-raw,rate=16000 ! audioconvert ! qomniencode model=%s device=%s "
      "chunk-duration=500 ! appsink name=out sync=false", model, device);
  GstElement *pipeline = gst_parse_launch (desc, &error);
  if (!pipeline) {
    printf ("FAIL: %s\n", error->message);
    g_error_free (error);
    return NULL;
  }
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "out");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GArray *rows = g_array_new (FALSE, FALSE, sizeof (float));
  *n_segments = 0;
  GstSample *sample;
  while ((sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstMapInfo map;
    GstBuffer *b = gst_sample_get_buffer (sample);
    if (gst_buffer_map (b, &map, GST_MAP_READ)) {
      QomniEmbeddingsHeader h;
      if (qomni_gst_embeddings_parse (map.data, map.size, &h, &error)) {
        g_array_append_vals (rows, map.data + h.header_size, h.n_rows * h.width);
        (*n_segments)++;
      } else {
        printf ("FAIL: %s\n", error->message);
        g_clear_error (&error);
      }
      gst_buffer_unmap (b, &map);
    }
    gst_sample_unref (sample);
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *err = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (err) {
    gst_message_parse_error (err, &error, NULL);
    printf ("FAIL: device=%s: %s\n", device, error->message);
    g_error_free (error);
    gst_message_unref (err);
    g_array_free (rows, TRUE);
    rows = NULL;
  }
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return rows;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
#ifndef QOMNI_HAVE_VULKAN
  printf ("SKIP: built without the Vulkan backend\n");
  return 77;
#else
  GError *error = NULL;
  QomniVk *probe = qomni_vk_new (-1, &error);
  if (!probe) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  qomni_vk_free (probe);
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  g_autofree char *model = g_build_filename (shared ? shared : "../shared", "fixtures",
                                             "tiny-omni", NULL);
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc wave=pink-noise num-buffers=50 samplesperbuffer=1600 ! audioconvert ! "
      "audioresample ! qomniencode device=vulkan chunk-duration=0 ! "
      "qomnithinker name=t model=%s device=vulkan max-tokens=4 temperature=0 ! fakesink", model);
  GstElement *pipeline = gst_parse_launch (desc, &error);
  if (!pipeline) {
    printf ("FAIL: %s\n", error->message);
    return 1;
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  int failures = 0;
  if (gst_element_set_state (pipeline, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE) {
    printf ("FAIL: the pipeline did not reach READY\n");
    failures++;
  }
  const int contexts = count_device_contexts (bus);
  printf ("%d qomni.vulkan.device have-context message(s) for 2 elements\n", contexts);
  if (contexts != 1)
    failures++;
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstMessage *end = gst_bus_timed_pop_filtered (bus, 240 * GST_SECOND,
                                                GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (!end || GST_MESSAGE_TYPE (end) != GST_MESSAGE_EOS) {
    printf ("FAIL: the pipeline ended with %s\n", end ? GST_MESSAGE_TYPE_NAME (end) : "a timeout");
    failures++;
  }
  if (end)
    gst_message_unref (end);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);

  int seg_cpu = 0, seg_gpu = 0;
  GArray *cpu = encode_rows (model, "cpu", &seg_cpu);
  GArray *gpu = encode_rows (model, "vulkan", &seg_gpu);
  if (!cpu || !gpu || cpu->len == 0 || cpu->len != gpu->len || seg_cpu != seg_gpu) {
    printf ("FAIL: qomniencode device=cpu gave %d segments (%u floats), device=vulkan %d (%u)\n",
            seg_cpu, cpu ? cpu->len : 0, seg_gpu, gpu ? gpu->len : 0);
    failures++;
  } else {
    double num = 0, den = 0;
    for (guint i = 0; i < cpu->len; i++) {
      const double a = g_array_index (gpu, float, i), b = g_array_index (cpu, float, i);
      num += (a - b) * (a - b);
      den += b * b;
    }
    const double e = den > 0 ? num / den : num;
    printf ("%s qomniencode device=vulkan vs cpu: %d segments, nmse %.2e (max 1e-9)\n",
            e <= 1e-9 ? "ok" : "FAIL", seg_gpu, e);
    failures += !(e <= 1e-9);
  }
  if (cpu)
    g_array_free (cpu, TRUE);
  if (gpu)
    g_array_free (gpu, TRUE);
  printf ("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
#endif
}
