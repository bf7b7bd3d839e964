/* qomni — decoding audio files through a small GStreamer pipeline. */
#include "audio-file.h"
#include "error.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <string.h>

/* An hour of 16 kHz audio; longer files are refused rather than eating memory. */
#define MAX_SAMPLES (3600 * 16000)

float *
qomni_audio_file_read (const char *path, int *n_samples, GError **error)
{
  GError *gst_error = NULL;
  if (!gst_init_check (NULL, NULL, &gst_error)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "cannot start GStreamer: %s",
                 gst_error->message);
    g_error_free (gst_error);
    return NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "audio file %s does not exist", path);
    return NULL;
  }
  GstElement *pipeline = gst_parse_launch (
    "filesrc name=src ! decodebin ! audioconvert ! audioresample ! "
    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! "
    "appsink name=sink sync=false", &gst_error);
  if (!pipeline) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "cannot build the decoding pipeline (are gstreamer1.0-plugins-base "
                 "installed?): %s", gst_error->message);
    g_error_free (gst_error);
    return NULL;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (src, "location", path, NULL);
  GArray *pcm = g_array_new (FALSE, FALSE, sizeof (float));
  gboolean ok = gst_element_set_state (pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  GstSample *sample;
  while (ok && (sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstMapInfo map;
    if (gst_buffer_map (buf, &map, GST_MAP_READ)) {
      g_array_append_vals (pcm, map.data, map.size / sizeof (float));
      gst_buffer_unmap (buf, &map);
    }
    gst_sample_unref (sample);
    if (pcm->len > MAX_SAMPLES) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "%s is longer than an hour; cut it first", path);
      ok = FALSE;
    }
  }
  /* the appsink hands out NULL at EOS and on an error; the bus says which */
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg && ok) {
    gst_message_parse_error (msg, &gst_error, NULL);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "cannot decode %s: %s", path,
                 gst_error->message);
    g_error_free (gst_error);
    ok = FALSE;
  } else if (ok && pcm->len == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "%s holds no audio", path);
    ok = FALSE;
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  if (!ok) {
    g_array_free (pcm, TRUE);
    return NULL;
  }
  *n_samples = (int) pcm->len;
  return (float *) g_array_free (pcm, FALSE);
}
