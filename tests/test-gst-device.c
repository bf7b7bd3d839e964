/* Three qomni elements with device=vulkan in one pipeline (encoder, thinker, vocoder)
 * share one Vulkan device through the qomni.vulkan.device context: exactly one
 * have-context of that type on the bus, and the pipeline runs the fixture's prompt to EOS
 * with the vocoder producing speech. Exits 77 (meson SKIP) where no Vulkan
 * device exists or the build has no Vulkan backend. */
#include "qomni-gst.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <gst/gst.h>
#include <stdio.h>

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

#ifdef QOMNI_HAVE_VULKAN
static GstPadProbeReturn
count_samples (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  guint64 *n = user;
  *n += gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info)) / sizeof (float);
  return GST_PAD_PROBE_OK;
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
  /* the model is named on the most downstream element, which opens first; the others
   * find it, and the device it created, through the contexts */
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc wave=pink-noise num-buffers=50 samplesperbuffer=1600 ! audioconvert ! "
      "audioresample ! qomniencode device=vulkan chunk-duration=0 ! "
      "qomnithinker name=t device=vulkan max-tokens=4 temperature=0 ! "
      "fakesink async=false t.talker_0 ! queue ! qomnitalker greedy=true max-frames=6 ! "
      "qomnivocoder name=voc model=%s device=vulkan chunk-frames=4 left-context=2 ! "
      "fakesink name=audio async=false", model);
  GstElement *pipeline = gst_parse_launch (desc, &error);
  if (!pipeline) {
    printf ("FAIL: %s\n", error->message);
    return 1;
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  int failures = 0;
  guint64 samples = 0;
  GstElement *audio = gst_bin_get_by_name (GST_BIN (pipeline), "audio");
  GstPad *apad = gst_element_get_static_pad (audio, "sink");
  gst_pad_add_probe (apad, GST_PAD_PROBE_TYPE_BUFFER, count_samples, &samples, NULL);
  gst_object_unref (apad);
  gst_object_unref (audio);
  if (gst_element_set_state (pipeline, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE) {
    printf ("FAIL: the pipeline did not reach READY\n");
    failures++;
  }
  const int contexts = count_device_contexts (bus);
  printf ("%d qomni.vulkan.device have-context message(s) for 3 elements\n", contexts);
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
  /* 6 talker steps, chunks of 4: 1920 · 6 − 2 · 555 samples from the GPU vocoder */
  printf ("%" G_GUINT64_FORMAT " samples of speech\n", samples);
  if (samples != 1920 * 6 - 2 * 555)
    failures++;
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  printf ("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
#endif
}
