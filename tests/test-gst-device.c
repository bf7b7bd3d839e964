/* Four qomni elements with device=vulkan in one pipeline (qomniencode, qomnithinker,
 * qomnitalker on its talker pad and qomnivocoder) share one Vulkan device through the
 * qomni.vulkan.device context: exactly one have-context of that type on the bus, and the
 * pipeline runs to EOS with the vocoder producing speech. The talker's frames equal those
 * of the same pipeline with qomnitalker device=cpu.
 * Exits 77 (meson SKIP) where no Vulkan device exists or the build has no Vulkan backend. */
#include "qomni-gst.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <gst/gst.h>
#include <stdio.h>

#ifdef QOMNI_HAVE_VULKAN
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

static GstPadProbeReturn
count_samples (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  guint64 *n = user;
  *n += gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info)) / sizeof (float);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_codec (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  GArray *frames = user;
  GstMapInfo map;
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
  gst_buffer_map (b, &map, GST_MAP_READ);
  for (gsize i = 0; i < map.size / 4; i++) {
    const int v = GINT32_FROM_LE (((const gint32 *) map.data)[i]);
    g_array_append_val (frames, v);
  }
  gst_buffer_unmap (b, &map);
  return GST_PAD_PROBE_OK;
}

/* The fixture's four elements on a sine (the same input every run), the thinker on
 * the GPU and the talker on talker_device. The model is named on the most downstream one,
 * which reaches READY first; the others find it through qomni.model. Returns the failures;
 * the talker's codes go to frames, the device contexts announced to *contexts. */
static int
run (const char *model, const char *talker_device, GArray *frames, int *contexts)
{
  GError *error = NULL;
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc wave=sine freq=330 num-buffers=50 samplesperbuffer=1600 ! audioconvert ! "
      "audioresample ! qomniencode device=vulkan chunk-duration=0 ! "
      "qomnithinker name=t device=vulkan max-tokens=4 temperature=0 "
      "t.src ! fakesink async=false "
      "t.talker_0 ! queue ! qomnitalker name=talker device=%s greedy=true max-frames=6 ! "
      "qomnivocoder model=%s device=vulkan chunk-frames=4 left-context=2 ! "
      "fakesink name=audio async=false", talker_device, model);
  GstElement *pipeline = gst_parse_launch (desc, &error);
  if (!pipeline) {
    printf ("FAIL: %s\n", error->message);
    return 1;
  }
  GstElement *talker = gst_bin_get_by_name (GST_BIN (pipeline), "talker");
  GstPad *tsrc = gst_element_get_static_pad (talker, "src");
  gst_pad_add_probe (tsrc, GST_PAD_PROBE_TYPE_BUFFER, on_codec, frames, NULL);
  gst_object_unref (tsrc);
  gst_object_unref (talker);
  guint64 samples = 0;
  GstElement *audio = gst_bin_get_by_name (GST_BIN (pipeline), "audio");
  GstPad *apad = gst_element_get_static_pad (audio, "sink");
  gst_pad_add_probe (apad, GST_PAD_PROBE_TYPE_BUFFER, count_samples, &samples, NULL);
  gst_object_unref (apad);
  gst_object_unref (audio);
  GstBus *bus = gst_element_get_bus (pipeline);
  int failures = 0;
  if (gst_element_set_state (pipeline, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE) {
    printf ("FAIL: the pipeline did not reach READY\n");
    failures++;
  }
  *contexts = count_device_contexts (bus);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  GstMessage *end = gst_bus_timed_pop_filtered (bus, 240 * GST_SECOND,
                                                GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (!end || GST_MESSAGE_TYPE (end) != GST_MESSAGE_EOS) {
    printf ("FAIL: the pipeline ended with %s\n", end ? GST_MESSAGE_TYPE_NAME (end) : "a timeout");
    failures++;
  }
  if (end)
    gst_message_unref (end);
  /* 6 talker steps in chunks of 4: 1920 · 6 − 2 · 555 samples from the GPU vocoder */
  printf ("%" G_GUINT64_FORMAT " samples of speech (talker on %s)\n", samples, talker_device);
  if (samples != 1920 * 6 - 2 * 555) {
    printf ("FAIL: expected %d samples\n", 1920 * 6 - 2 * 555);
    failures++;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return failures;
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
  GArray *gpu = g_array_new (FALSE, FALSE, sizeof (int));
  GArray *cpu = g_array_new (FALSE, FALSE, sizeof (int));
  int contexts = 0, contexts_cpu = 0;
  int failures = run (model, "vulkan", gpu, &contexts);
  printf ("%d qomni.vulkan.device have-context message(s) for 4 elements\n", contexts);
  failures += contexts != 1;
  failures += run (model, "cpu", cpu, &contexts_cpu);
  printf ("%d with the talker on the CPU (3 elements on the GPU)\n", contexts_cpu);
  failures += contexts_cpu != 1;
  /* the same thinker rows in both runs: the talker's frames must agree exactly */
  int differ = gpu->len == cpu->len ? 0 : -1;
  for (guint i = 0; differ >= 0 && i < cpu->len; i++)
    differ += g_array_index (gpu, int, i) != g_array_index (cpu, int, i);
  printf ("qomnitalker frames: %u codes on vulkan, %u on cpu, %d differ\n", gpu->len, cpu->len,
          differ);
  failures += gpu->len == 0 || differ != 0;
  g_array_free (gpu, TRUE);
  g_array_free (cpu, TRUE);
  printf ("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
#endif
}
