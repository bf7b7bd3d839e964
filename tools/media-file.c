/* qomni — decoding audio and image files through small GStreamer pipelines. */
#include "media-file.h"
#include "error.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

/* An hour of 16 kHz audio; longer files are refused rather than eating memory. */
#define MAX_SAMPLES (3600 * 16000)

/* Starts `description` (a pipeline with a filesrc "src" and an appsink "sink") on path.
 * (transfer full) the pipeline, or NULL with an error. */
static GstElement *
start_pipeline (const char *description, const char *path, const char *what, GError **error)
{
  GError *gst_error = NULL;
  if (!gst_init_check (NULL, NULL, &gst_error)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "cannot start GStreamer: %s",
                 gst_error->message);
    g_error_free (gst_error);
    return NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "%s file %s does not exist", what, path);
    return NULL;
  }
  GstElement *pipeline = gst_parse_launch (description, &gst_error);
  if (!pipeline) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "cannot build the decoding pipeline (are gstreamer1.0-plugins-base and -good "
                 "installed?): %s", gst_error->message);
    g_error_free (gst_error);
    return NULL;
  }
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  g_object_set (src, "location", path, NULL);
  gst_object_unref (src);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "cannot decode %s", path);
    gst_element_set_state (pipeline, GST_STATE_NULL);
    gst_object_unref (pipeline);
    return NULL;
  }
  return pipeline;
}

/* Stops and frees the pipeline. The appsink hands out NULL at EOS and on an error; the bus
 * says which: a decoding error becomes *error when ok was still TRUE. */
static gboolean
stop_pipeline (GstElement *pipeline, const char *path, gboolean ok, GError **error)
{
  GError *gst_error = NULL;
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg && ok) {
    gst_message_parse_error (msg, &gst_error, NULL);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "cannot decode %s: %s", path,
                 gst_error->message);
    g_error_free (gst_error);
    ok = FALSE;
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return ok;
}

float *
qomni_audio_file_read (const char *path, int *n_samples, GError **error)
{
  GstElement *pipeline = start_pipeline (
    "filesrc name=src ! decodebin ! audioconvert ! audioresample ! "
    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! "
    "appsink name=sink sync=false", path, "audio", error);
  if (!pipeline)
    return NULL;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GArray *pcm = g_array_new (FALSE, FALSE, sizeof (float));
  gboolean ok = TRUE;
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
  gst_object_unref (sink);
  ok = stop_pipeline (pipeline, path, ok, error);
  if (ok && pcm->len == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "%s holds no audio", path);
    ok = FALSE;
  }
  if (!ok) {
    g_array_free (pcm, TRUE);
    return NULL;
  }
  *n_samples = (int) pcm->len;
  return (float *) g_array_free (pcm, FALSE);
}

guint8 *
qomni_image_file_read (const char *path, int *width, int *height, GError **error)
{
  GstElement *pipeline = start_pipeline (
    "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! "
    "appsink name=sink sync=false max-buffers=1", path, "image", error);
  if (!pipeline)
    return NULL;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  guint8 *rgb = NULL;
  GstSample *sample = gst_app_sink_pull_sample (GST_APP_SINK (sink));
  gboolean ok = TRUE;
  if (sample) {
    GstVideoInfo info;
    GstVideoFrame frame;
    if (gst_video_info_from_caps (&info, gst_sample_get_caps (sample)) &&
        gst_video_frame_map (&frame, &info, gst_sample_get_buffer (sample), GST_MAP_READ)) {
      /* packed rows without the padding GStreamer keeps at their ends */
      const int w = GST_VIDEO_INFO_WIDTH (&info), h = GST_VIDEO_INFO_HEIGHT (&info);
      const int stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
      const guint8 *src = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
      rgb = g_try_malloc ((gsize) w * h * 3);
      if (rgb) {
        for (int y = 0; y < h; y++)
          memcpy (rgb + (gsize) y * w * 3, src + (gsize) y * stride, (gsize) w * 3);
        *width = w;
        *height = h;
      } else {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for %s (%d×%d)",
                     path, w, h);
        ok = FALSE;
      }
      gst_video_frame_unmap (&frame);
    }
    gst_sample_unref (sample);
  }
  gst_object_unref (sink);
  ok = stop_pipeline (pipeline, path, ok, error);
  if (ok && !rgb) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "%s holds no picture", path);
    ok = FALSE;
  }
  if (!ok) {
    g_free (rgb);
    return NULL;
  }
  return rgb;
}

void
qomni_video_frames_clear (QomniVideoFrames *v)
{
  for (int i = 0; v->frames && i < v->n_frames; i++)
    g_free (v->frames[i]);
  g_clear_pointer (&v->frames, g_free);
  v->n_frames = 0;
}

/* Frames kept while decoding: every `stride`-th sampled frame, at most 2·max of them. */
typedef struct {
  GPtrArray *kept;      /* resized frames */
  int stride;
  gint64 n_sampled;     /* frames the sink handed out at the asked rate */
} Keeper;

static void
keeper_thin (Keeper *k)
{
  /* drop every other kept frame; later frames are taken half as often */
  GPtrArray *thin = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < k->kept->len; i++) {
    if (i % 2 == 0)
      g_ptr_array_add (thin, k->kept->pdata[i]);
    else
      g_free (k->kept->pdata[i]);
  }
  g_ptr_array_set_free_func (k->kept, NULL);
  g_ptr_array_unref (k->kept);
  k->kept = thin;
  k->stride *= 2;
}

gboolean
qomni_video_file_read (const char *path, double fps, int max_frames,
                       const QomniImageParams *params, QomniVideoFrames *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (!(fps > 0.0 && fps <= 120.0) || max_frames < 1 || max_frames > 100000) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "video sampling needs 0 < fps ≤ 120 (got %g) and 1 ≤ max frames ≤ 100000 (got "
                 "%d)", fps, max_frames);
    return FALSE;
  }
  GstElement *pipeline = start_pipeline (
    "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! "
    "appsink name=sink sync=false max-buffers=2", path, "video", error);
  if (!pipeline)
    return FALSE;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  Keeper k = { g_ptr_array_new_with_free_func (g_free), 1, 0 };
  gboolean ok = TRUE;
  GstSample *sample;
  int sw = 0, sh = 0, ow = 0, oh = 0;
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  while (ok && (sample = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstVideoInfo info;
    GstVideoFrame frame;
    /* sampling by timestamp: a frame is taken when it reaches the next instant k/fps after
     * the first one (every frame when there are no timestamps) */
    const GstClockTime pts = GST_BUFFER_PTS (gst_sample_get_buffer (sample));
    if (GST_CLOCK_TIME_IS_VALID (pts)) {
      if (!GST_CLOCK_TIME_IS_VALID (first_pts))
        first_pts = pts;
      const GstClockTime due = first_pts + (GstClockTime) (k.n_sampled * (GST_SECOND / fps));
      if (pts + GST_MSECOND < due) {
        gst_sample_unref (sample);
        continue;
      }
    }
    if (!gst_video_info_from_caps (&info, gst_sample_get_caps (sample))) {
      gst_sample_unref (sample);
      continue;
    }
    const int w = GST_VIDEO_INFO_WIDTH (&info), h = GST_VIDEO_INFO_HEIGHT (&info);
    if (k.n_sampled == 0) {
      sw = w;
      sh = h;
      ok = qomni_image_smart_resize (h, w, params, &oh, &ow, error);
      if (ok && (int64_t) w * h > params->max_input_pixels) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "%s: frames of %dx%d are larger than the %" G_GINT64_FORMAT
                     "-pixel limit", path, w, h, params->max_input_pixels);
        ok = FALSE;
      }
    } else if (w != sw || h != sh) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "%s changes its frame size (%dx%d, then %dx%d); one size per video", path,
                   sw, sh, w, h);
      ok = FALSE;
    }
    if (ok && k.n_sampled % k.stride == 0 &&
        gst_video_frame_map (&frame, &info, gst_sample_get_buffer (sample), GST_MAP_READ)) {
      guint8 *small = g_try_malloc ((gsize) ow * oh * 3);
      if (!small) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for %s (%d×%d)",
                     path, ow, oh);
        ok = FALSE;
      } else if (qomni_image_resize_rgb (GST_VIDEO_FRAME_PLANE_DATA (&frame, 0), w, h,
                                         GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0), small, ow,
                                         oh, error)) {
        g_ptr_array_add (k.kept, small);
        if ((int) k.kept->len >= 2 * max_frames)
          keeper_thin (&k);
      } else {
        g_free (small);
        ok = FALSE;
      }
      gst_video_frame_unmap (&frame);
    }
    if (ok)
      k.n_sampled++;
    gst_sample_unref (sample);
  }
  gst_object_unref (sink);
  ok = stop_pipeline (pipeline, path, ok, error);
  if (ok && k.kept->len == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "%s holds no picture", path);
    ok = FALSE;
  }
  if (!ok) {
    g_ptr_array_free (k.kept, TRUE);
    return FALSE;
  }
  /* max_frames picked evenly (round(linspace(0, kept − 1, n))), rounded down to even */
  const int kept = (int) k.kept->len;
  int n = MIN (kept, max_frames);
  if (n > 1)
    n -= n % 2;
  out->frames = g_new0 (guint8 *, n);
  for (int i = 0; i < n; i++) {
    const int src = n > 1 ? (int) nearbyint ((double) i * (kept - 1) / (n - 1)) : 0;
    out->frames[i] = k.kept->pdata[src];
    k.kept->pdata[src] = NULL;
  }
  for (int i = 0; i < kept; i++)
    g_free (k.kept->pdata[i]);
  g_ptr_array_set_free_func (k.kept, NULL);
  g_ptr_array_free (k.kept, TRUE);
  out->n_frames = n;
  out->width = ow;
  out->height = oh;
  out->source_width = sw;
  out->source_height = sh;
  out->duration_s = (double) k.n_sampled / fps;
  out->fps = fps * n / (double) k.n_sampled;
  return TRUE;
}
