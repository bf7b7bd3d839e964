/* Pictures through the elements (tiny-omni fixture):
 *  - the fixture picture vision.image_u8 written as a PNG, then
 *      filesrc ! pngdec ! videoconvert ! qomniencode ! qomnithinker system-prompt="" … ;
 *    the answer's first greedy token must be the argmax of vision.prefill_logits_last (the
 *    reference prompt has no system turn and asks "What is this?");
 *  - a two-frame still of the same picture on video_sink within a pixel budget that keeps
 *    its size: an image is a video of its picture repeated to 2 frames (architecture notes
 *    §5.5), so the rows must be vision.embeds and the DeepStack sections
 *    vision.deepstack.N within 1e-4 (max |a − b| / max |b|), with grid (1, 4, 6);
 *  - the same still with audio.wave_16k on the audio pad: one video buffer whose soundtrack
 *    rows are audio.embeds within 1e-4;
 *  - bad pictures: 1×1 (scaled up to 64×64 by the release's min_pixels: grid 1×4×4), grey
 *    (GRAY8 through videoconvert), odd sizes (33×17), 20000×20000 (refused with a message
 *    before any frame is taken), a buffer too short for its caps, an aspect ratio above 200:
 *    a clear element error or a buffer, never a crash.
 * Needs the plugin on GST_PLUGIN_PATH. */
#include "refs.h"
#include "qomni-embeddings.h"
#include "tokenizer.h"

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <math.h>
#include <string.h>

#define TOL 1e-4
#define IMG_H 64
#define IMG_W 96

static RefsTiny fx;
static char *tmpdir, *model_dir;

static const guint8 *
fixture_image (void)
{
  const QomniTensor *t = qomni_weights_find (fx.refs, "vision.image_u8");
  g_assert_nonnull (t);
  g_assert_cmpint (qomni_tensor_nelements (t), ==, IMG_H * IMG_W * 3);
  return t->data;
}

/* A buffer with a picture of w × h × channels packed bytes, its rows padded to 4 bytes as
 * GStreamer lays out raw video. */
static GstBuffer *
picture_buffer (const guint8 *data, int w, int h, int channels, GstClockTime pts)
{
  const gsize row = (gsize) w * channels, stride = GST_ROUND_UP_4 (row);
  GstBuffer *b = gst_buffer_new_allocate (NULL, stride * h, NULL);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  memset (map.data, 0, map.size);
  for (int y = 0; y < h; y++)
    memcpy (map.data + y * stride, data + y * row, row);
  gst_buffer_unmap (b, &map);
  GST_BUFFER_PTS (b) = pts;
  GST_BUFFER_DURATION (b) = GST_SECOND / 2;
  return b;
}

/* Runs the pipeline to EOS or an error. NULL on EOS, else the error message (transfer
 * full). The appsrc named "src", if any, gets `buffers` (taken) and EOS. */
static char *
run_pipeline (const char *description, GstBuffer **buffers, int n_buffers, GstElement **keep)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (description, &error);
  g_assert_no_error (error);
  GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  if (src) {
    for (int i = 0; i < n_buffers; i++)
      gst_app_src_push_buffer (GST_APP_SRC (src), buffers[i]);
    gst_app_src_end_of_stream (GST_APP_SRC (src));
    gst_object_unref (src);
  }
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
                                                GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  char *message = NULL;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gst_message_parse_error (msg, &e, NULL);
    message = g_strdup (e->message);
    g_error_free (e);
  }
  gst_message_unref (msg);
  gst_object_unref (bus);
  if (keep) {
    /* the caller reads the sink first; it sets the pipeline to NULL */
    *keep = pipeline;
    return message;
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  return message;
}

static void
stop_pipeline (GstElement *pipeline)
{
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

/* Writes the RGB picture as a PNG file with GStreamer's (lossless) pngenc. */
static void
write_png (const char *path, const guint8 *rgb, int w, int h)
{
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=video/x-raw,format=RGB,width=%d,height=%d,"
    "framerate=0/1 ! pngenc ! filesink location=%s", w, h, path);
  GstBuffer *b = picture_buffer (rgb, w, h, 3, 0);
  g_autofree char *err = run_pipeline (desc, &b, 1, NULL);
  g_assert_null (err);
}

static void
test_png_answer (void)
{
  g_autofree char *png = g_build_filename (tmpdir, "fixture.png", NULL);
  g_autofree char *txt = g_build_filename (tmpdir, "answer.txt", NULL);
  write_png (png, fixture_image (), IMG_W, IMG_H);
  g_autofree char *desc = g_strdup_printf (
    "filesrc location=%s ! pngdec ! videoconvert ! qomniencode ! qomnithinker model=%s "
    "system-prompt=\"\" prompt=\"What is this?\" temperature=0 max-tokens=1 ! "
    "filesink location=%s", png, model_dir, txt);
  g_autofree char *err = run_pipeline (desc, NULL, 0, NULL);
  g_assert_null (err);

  const int V = 152064;
  const float *ref = refs_f32 (fx.refs, "vision.prefill_logits_last", V);
  int best = 0;
  for (int i = 1; i < V; i++)
    best = ref[i] > ref[best] ? i : best;
  GError *error = NULL;
  QomniTokenizer *tok = qomni_tokenizer_load_for_model (model_dir, &error);
  g_assert_no_error (error);
  g_autofree char *want = qomni_tokenizer_decode (tok, &best, 1, TRUE);
  qomni_tokenizer_free (tok);
  g_assert_cmpuint (strlen (want), >, 0);   /* a whole piece of text, so the check bites */
  g_autofree char *got = NULL;
  g_file_get_contents (txt, &got, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got, ==, want);
  g_unlink (png);
  g_unlink (txt);
}

/* The embeddings buffer of a pipeline ending in appsink name=sink (transfer full). */
static GstBuffer *
pull_embeddings (GstElement *pipeline)
{
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND);
  gst_object_unref (sink);
  g_assert_nonnull (sample);
  GstBuffer *b = gst_buffer_ref (gst_sample_get_buffer (sample));
  gst_sample_unref (sample);
  return b;
}

static void
test_still_video_rows (void)
{
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=video/x-raw,format=RGB,width=%d,height=%d,"
    "framerate=2/1 ! e.video_sink qomniencode model=%s video-fps=2 max-pixels=%d name=e ! "
    "appsink name=sink sync=false wait-on-eos=false", IMG_W, IMG_H, model_dir, IMG_W * IMG_H);
  /* appsrc's template caps are ANY, so the pad is named: an element whose source pad says
   * video/x-raw (videoconvert, pngdec) finds video_sink by itself */
  GstBuffer *frames[2] = { picture_buffer (fixture_image (), IMG_W, IMG_H, 3, 0),
                           picture_buffer (fixture_image (), IMG_W, IMG_H, 3, GST_SECOND / 2) };
  GstElement *pipeline = NULL;
  g_autofree char *err = run_pipeline (desc, frames, 2, &pipeline);
  g_assert_cmpstr (err, ==, NULL);
  GstBuffer *b = pull_embeddings (pipeline);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  QomniEmbeddingsHeader h;
  GError *error = NULL;
  g_assert_true (qomni_gst_embeddings_parse (map.data, map.size, &h, &error));
  g_assert_cmpint (h.kind, ==, QOMNI_EMBEDDINGS_KIND_VIDEO);
  g_assert_cmpint (h.grid_t, ==, 1);
  g_assert_cmpint (h.grid_h, ==, 4);
  g_assert_cmpint (h.grid_w, ==, 6);
  g_assert_cmpint (h.n_rows, ==, 6);
  /* 2 frames taken at 2 fps: one temporal patch covers 1 s */
  g_assert_cmpfloat (h.second_per_grid, ==, 1.0f);
  const int D = (int) h.width, K = h.n_deepstack;
  g_assert_cmpint (K, ==, fx.cfg->thinker.vision.n_deepstack);
  const float *rows = (const float *) (map.data + h.header_size);
  const float *want = refs_f32 (fx.refs, "vision.embeds", 6 * D);
  g_assert_cmpfloat (rel_error (rows, want, 6 * D), <, TOL);
  for (int k = 0; k < K; k++) {
    g_autofree char *name = g_strdup_printf ("vision.deepstack.%d", k);
    const float *ds = refs_f32 (fx.refs, name, 6 * D);
    g_assert_cmpfloat (rel_error (rows + (gsize) (1 + k) * 6 * D, ds, 6 * D), <, TOL);
  }
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  stop_pipeline (pipeline);
}


/* A video on video_sink and its soundtrack on sink (chunk-duration=0: one audio segment):
 * one buffer of kind video whose picture rows are vision.embeds (the two-frame still as
 * above) and whose soundtrack rows are audio.embeds (audio.wave_16k, 43 rows), both within
 * 1e-4; EOS reaches the sink once, after both streams ended. */
static void
test_video_with_sound (void)
{
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=video/x-raw,format=RGB,width=%d,height=%d,"
    "framerate=2/1 ! e.video_sink "
    "appsrc name=asrc format=time caps=audio/x-raw,format=F32LE,rate=16000,channels=1,"
    "layout=interleaved ! e.sink "
    "qomniencode name=e model=%s chunk-duration=0 max-pixels=%d ! appsink name=sink "
    "sync=false wait-on-eos=false", IMG_W, IMG_H, model_dir, IMG_W * IMG_H);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  GstElement *vsrc = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  GstElement *asrc = gst_bin_get_by_name (GST_BIN (pipeline), "asrc");
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  const int n_wave = 52800;
  const float *wave = refs_f32 (fx.refs, "audio.wave_16k", n_wave);
  GstBuffer *a = gst_buffer_new_memdup (wave, n_wave * sizeof (float));
  GST_BUFFER_PTS (a) = 0;
  GST_BUFFER_DURATION (a) = gst_util_uint64_scale_int (n_wave, GST_SECOND, 16000);
  gst_app_src_push_buffer (GST_APP_SRC (asrc), a);
  for (int i = 0; i < 2; i++)
    gst_app_src_push_buffer (GST_APP_SRC (vsrc), picture_buffer (fixture_image (), IMG_W, IMG_H,
                                                                 3, i * GST_SECOND / 2));
  gst_app_src_end_of_stream (GST_APP_SRC (vsrc));
  gst_app_src_end_of_stream (GST_APP_SRC (asrc));
  gst_object_unref (vsrc);
  gst_object_unref (asrc);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
                                                GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  gst_message_unref (msg);
  gst_object_unref (bus);

  GstBuffer *b = pull_embeddings (pipeline);
  GstMapInfo map;
  gst_buffer_map (b, &map, GST_MAP_READ);
  QomniEmbeddingsHeader h;
  g_assert_true (qomni_gst_embeddings_parse (map.data, map.size, &h, &error));
  g_assert_cmpint (h.kind, ==, QOMNI_EMBEDDINGS_KIND_VIDEO);
  g_assert_cmpint (h.n_rows, ==, 6);
  g_assert_cmpint (h.n_audio_rows, ==, 43);
  g_assert_cmpint (h.n_samples, ==, n_wave);
  const int D = (int) h.width;
  const float *rows = (const float *) (map.data + h.header_size);
  g_assert_cmpfloat (rel_error (rows, refs_f32 (fx.refs, "vision.embeds", 6 * D), 6 * D), <,
                     TOL);
  const float *sound = rows + (gsize) 6 * D * (1 + h.n_deepstack);
  g_assert_cmpfloat (rel_error (sound, refs_f32 (fx.refs, "audio.embeds", 43 * D), 43 * D), <,
                     TOL);
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  /* nothing else came: the audio was not also pushed on its own */
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstSample *extra = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 0);
  g_assert_null (extra);
  gst_object_unref (sink);
  stop_pipeline (pipeline);
}

/* One picture of w × h in `format` (channels bytes a pixel) through videoconvert and
 * qomniencode. Returns the header of the embeddings buffer, or the error message. */
static char *
encode_one (const char *format, int channels, const guint8 *data, int w, int h,
            QomniEmbeddingsHeader *out)
{
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=video/x-raw,format=%s,width=%d,height=%d,framerate=0/1 "
    "! videoconvert ! video/x-raw,format=RGB ! qomniencode model=%s name=e ! appsink "
    "name=sink sync=false wait-on-eos=false", format, w, h, model_dir);
  GstBuffer *b = picture_buffer (data, w, h, channels, 0);
  GstElement *pipeline = NULL;
  char *err = run_pipeline (desc, &b, 1, &pipeline);
  if (!err) {
    GstBuffer *e = pull_embeddings (pipeline);
    GstMapInfo map;
    gst_buffer_map (e, &map, GST_MAP_READ);
    GError *error = NULL;
    g_assert_true (qomni_gst_embeddings_parse (map.data, map.size, out, &error));
    const float *rows = (const float *) (map.data + out->header_size);
    for (guint i = 0; i < out->n_rows * out->width * (1 + out->n_deepstack); i++)
      g_assert_true (isfinite (rows[i]));
    gst_buffer_unmap (e, &map);
    gst_buffer_unref (e);
  }
  stop_pipeline (pipeline);
  return err;
}

/* The grid of an image under the release's budget, from smart_resize as the notes (§5.2)
 * state it, computed here on its own. */
static void
release_grid (int h, int w, int grid[3])
{
  const double f = 32, min_px = 3136, max_px = 12845056;
  double hb = nearbyint (h / f) * f, wb = nearbyint (w / f) * f;
  if (hb * wb > max_px) {
    const double beta = sqrt ((double) h * w / max_px);
    hb = MAX (f, floor (h / beta / f) * f);
    wb = MAX (f, floor (w / beta / f) * f);
  } else if (hb * wb < min_px) {
    const double beta = sqrt (min_px / ((double) h * w));
    hb = ceil (h * beta / f) * f;
    wb = ceil (w * beta / f) * f;
  }
  grid[0] = 1;
  grid[1] = (int) hb / 16;
  grid[2] = (int) wb / 16;
}

static void
assert_image (const QomniEmbeddingsHeader *h, int height, int width)
{
  int grid[3];
  release_grid (height, width, grid);
  g_assert_cmpint (h->kind, ==, QOMNI_EMBEDDINGS_KIND_IMAGE);
  g_assert_cmpint (h->grid_t, ==, grid[0]);
  g_assert_cmpint (h->grid_h, ==, grid[1]);
  g_assert_cmpint (h->grid_w, ==, grid[2]);
  g_assert_cmpint (h->n_rows, ==, grid[1] * grid[2] / 4);
  g_assert_cmpint (h->n_audio_rows, ==, 0);
}

static void
test_bad_tiny (void)
{
  const guint8 px[3] = { 200, 100, 0 };
  QomniEmbeddingsHeader h;
  g_autofree char *err = encode_one ("RGB", 3, px, 1, 1, &h);
  g_assert_null (err);
  assert_image (&h, 1, 1);
  g_assert_cmpint (h.grid_h, ==, 4);
}

static void
test_bad_grey_odd (void)
{
  guint8 grey[33 * 17];
  for (int i = 0; i < 33 * 17; i++)
    grey[i] = (guint8) (i * 7);
  QomniEmbeddingsHeader h;
  g_autofree char *err = encode_one ("GRAY8", 1, grey, 33, 17, &h);
  g_assert_null (err);
  assert_image (&h, 17, 33);
}

static void
test_bad_huge (void)
{
  /* the caps alone are refused: no 1.2 GB frame is ever allocated */
  const guint8 px[3] = { 0, 0, 0 };
  g_autofree char *desc = g_strdup_printf ("appsrc name=src format=time caps=video/x-raw,"
                                           "format=RGB,width=20000,height=20000,framerate=0/1 "
                                           "! e.video_sink qomniencode name=e model=%s ! fakesink", model_dir);
  GstBuffer *b = picture_buffer (px, 1, 1, 3, 0);
  g_autofree char *err = run_pipeline (desc, &b, 1, NULL);
  g_assert_nonnull (err);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "20000x20000"));
}

static void
test_bad_short_buffer (void)
{
  const guint8 px[12] = { 0 };
  g_autofree char *desc = g_strdup_printf ("appsrc name=src format=time caps=video/x-raw,"
                                           "format=RGB,width=64,height=64,framerate=0/1 ! "
                                           "e.video_sink qomniencode name=e model=%s ! fakesink", model_dir);
  GstBuffer *b = picture_buffer (px, 2, 2, 3, 0);
  g_autofree char *err = run_pipeline (desc, &b, 1, NULL);
  g_assert_nonnull (err);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "does not hold"));
}

static void
test_bad_aspect (void)
{
  g_autofree guint8 *px = g_malloc0 (1 * 300 * 3);
  QomniEmbeddingsHeader h;
  g_autofree char *err = encode_one ("RGB", 3, px, 300, 1, &h);
  g_assert_nonnull (err);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "aspect ratio"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);
  refs_tiny_load (&fx);
  model_dir = refs_path ("tiny-omni");
  GError *error = NULL;
  tmpdir = g_dir_make_tmp ("qomni-gst-vision-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/gst/vision/png-answer", test_png_answer);
  g_test_add_func ("/gst/vision/still-video-rows", test_still_video_rows);
  g_test_add_func ("/gst/vision/video-with-sound", test_video_with_sound);
  g_test_add_func ("/gst/vision/bad/tiny", test_bad_tiny);
  g_test_add_func ("/gst/vision/bad/grey-odd", test_bad_grey_odd);
  g_test_add_func ("/gst/vision/bad/huge", test_bad_huge);
  g_test_add_func ("/gst/vision/bad/short-buffer", test_bad_short_buffer);
  g_test_add_func ("/gst/vision/bad/aspect", test_bad_aspect);
  int ret = g_test_run ();

  g_rmdir (tmpdir);
  g_free (tmpdir);
  g_free (model_dir);
  refs_tiny_clear (&fx);
  return ret;
}
