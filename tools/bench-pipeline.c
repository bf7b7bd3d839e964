/* qomni bench — the elements end to end, in the pipeline an application would build:
 *
 *   appsrc (a 2 s "question": tone + noise at 16 kHz) ! qomniencode chunk-duration=0 !
 *   qomnithinker name=t task=answer  t.src ! queue ! fakesink (the text)
 *   t.talker_0 ! queue ! qomnitalker ! qomnivocoder ! fakesink (the spoken answer)
 *
 * Every pipeline gets the bench's model (and device) through the qomni.model (and
 * qomni.vulkan.device) contexts, so N pipelines in this process share one loaded model and
 * one device, as N simultaneous conversations would. The question is pushed as fast as
 * appsrc takes it; the clock starts when its last sample is pushed. Pad probes on the
 * thinker's and the vocoder's src pads stamp the buffers (the sinks are fakesinks: an
 * appsink nobody pulls from never posts its EOS).
 *  - first text / first audio: from then to the first buffer out of qomnithinker's src /
 *    out of qomnivocoder;
 *  - real-time factor: from then to the last audio buffer, over the answer's duration. */
#include "bench.h"
#include "qomni-gst.h"

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <stdio.h>

typedef struct {
  GstElement *pipe;
  GMutex lock;
  double t_last_in, t_first_text, t_first_audio, t_last_audio;
  guint64 samples;
  gboolean done;
  char *error;
} Stream;

/* Elements that compute on the GPU when --device says so (their `device` property). */
static const char *const gpu_elements[] = { "enc", "t", "talker", "voc" };

static gboolean
ensure_plugin (Bench *b, const char *section)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    gst_init (NULL, NULL);
    GstRegistry *reg = gst_registry_get ();
#ifdef QOMNI_BUILD_PLUGIN_DIR
    /* run from the build folder: its plugin, unless GST_PLUGIN_PATH already found one */
    GstPluginFeature *f = gst_registry_lookup_feature (reg, "qomnithinker");
    if (f)
      gst_object_unref (f);
    else
      gst_registry_scan_path (reg, QOMNI_BUILD_PLUGIN_DIR);
#endif
    g_once_init_leave (&once, 1);
  }
  const char *need[] = { "appsrc", "fakesink", "qomniencode", "qomnithinker", "qomnitalker",
                         "qomnivocoder" };
  for (guint i = 0; i < G_N_ELEMENTS (need); i++) {
    GstElementFactory *f = gst_element_factory_find (need[i]);
    if (!f) {
      bench_skip (b, section, "all", "GStreamer element %s not found (set GST_PLUGIN_PATH to "
                  "the folder of libgstqomni.so)", need[i]);
      return FALSE;
    }
    gst_object_unref (f);
  }
  return TRUE;
}

static GstPadProbeReturn
on_text (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  Stream *s = user;
  g_mutex_lock (&s->lock);
  if (s->t_first_text == 0)
    s->t_first_text = bench_now ();
  g_mutex_unlock (&s->lock);
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_audio (GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
  Stream *s = user;
  const double now = bench_now ();
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  g_mutex_lock (&s->lock);
  if (s->t_first_audio == 0)
    s->t_first_audio = now;
  s->t_last_audio = now;
  s->samples += gst_buffer_get_size (buf) / sizeof (float);
  g_mutex_unlock (&s->lock);
  return GST_PAD_PROBE_OK;
}

static void
probe (GstElement *pipe, const char *name, GstPadProbeCallback fn, Stream *s)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipe), name);
  GstPad *pad = gst_element_get_static_pad (e, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, fn, s, NULL);
  gst_object_unref (pad);
  gst_object_unref (e);
}

static gboolean
stream_init (Bench *b, Stream *s, GstContext *model_ctx, GstContext *device_ctx, GError **error)
{
  g_mutex_init (&s->lock);
  const int ctx_len = MAX (64, 384 + b->max_tokens);
  g_autofree char *desc = g_strdup_printf (
    "appsrc name=src format=time caps=audio/x-raw,format=F32LE,rate=16000,channels=1,"
    "layout=interleaved ! qomniencode name=enc chunk-duration=0 ! "
    "qomnithinker name=t task=answer temperature=0 max-tokens=%d context-length=%d "
    "t.src ! queue ! fakesink name=text async=false "
    "t.talker_0 ! queue ! qomnitalker name=talker greedy=true max-frames=%d ! "
    "qomnivocoder name=voc chunk-frames=%d left-context=%d ! "
    "fakesink name=audio async=false",
    b->max_tokens, ctx_len, b->max_frames, b->pipeline_chunk, b->left_context);
  s->pipe = gst_parse_launch (desc, error);
  if (!s->pipe)
    return FALSE;
  gst_element_set_context (s->pipe, model_ctx);
  if (device_ctx) {
    gst_element_set_context (s->pipe, device_ctx);
    for (guint i = 0; i < G_N_ELEMENTS (gpu_elements); i++) {
      GstElement *e = gst_bin_get_by_name (GST_BIN (s->pipe), gpu_elements[i]);
      g_object_set (e, "device", b->device, NULL);
      gst_object_unref (e);
    }
  }
  probe (s->pipe, "t", on_text, s);
  probe (s->pipe, "voc", on_audio, s);
  return TRUE;
}

static void
stream_clear (Stream *s)
{
  if (s->pipe) {
    gst_element_set_state (s->pipe, GST_STATE_NULL);
    gst_object_unref (s->pipe);
  }
  g_free (s->error);
  g_mutex_clear (&s->lock);
}

/* Pushes the question in 100 ms buffers, then EOS; the clock starts after the last. */
static void
push_question (Bench *b, Stream *s)
{
  GstElement *src = gst_bin_get_by_name (GST_BIN (s->pipe), "src");
  const int n = (int) (b->question_s * 16000), step = 1600;
  GRand *rng = g_rand_new_with_seed (11);
  for (int i = 0; i < n; i += step) {
    const int k = MIN (step, n - i);
    GstBuffer *buf = gst_buffer_new_allocate (NULL, (gsize) k * sizeof (float), NULL);
    GstMapInfo map;
    gst_buffer_map (buf, &map, GST_MAP_WRITE);
    float *x = (float *) map.data;
    for (int j = 0; j < k; j++)
      x[j] = 0.3f * sinf (2 * G_PI * 220 * (i + j) / 16000.0f) +
             0.05f * (float) g_rand_double_range (rng, -1, 1);
    gst_buffer_unmap (buf, &map);
    GST_BUFFER_PTS (buf) = gst_util_uint64_scale_int (i, GST_SECOND, 16000);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale_int (k, GST_SECOND, 16000);
    gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  }
  g_mutex_lock (&s->lock);
  s->t_last_in = bench_now ();
  g_mutex_unlock (&s->lock);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  g_rand_free (rng);
  gst_object_unref (src);
}

/* Waits for every stream's EOS or error, at most timeout_s in all. */
static void
wait_all (Stream *st, int n, double timeout_s)
{
  const double end = bench_now () + timeout_s;
  int left = n;
  while (left > 0 && bench_now () < end) {
    for (int i = 0; i < n; i++) {
      if (st[i].done)
        continue;
      GstBus *bus = gst_element_get_bus (st[i].pipe);
      GstMessage *m = gst_bus_timed_pop_filtered (bus, 5 * GST_MSECOND,
                                                  GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
      gst_object_unref (bus);
      if (!m)
        continue;
      if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gst_message_parse_error (m, &e, NULL);
        st[i].error = g_strdup_printf ("%s: %s", GST_OBJECT_NAME (GST_MESSAGE_SRC (m)),
                                       e->message);
        g_error_free (e);
      }
      gst_message_unref (m);
      st[i].done = TRUE;
      left--;
    }
  }
  for (int i = 0; i < n; i++)
    if (!st[i].done)
      st[i].error = g_strdup_printf ("no EOS within %.0f s", timeout_s);
}

/* Runs n pipelines at once and reports their latencies under section; cold: the first
 * run of the process, which reports its first audio alone. */
static void
run_group (Bench *b, const char *section, int n, gboolean cold)
{
  GstContext *model_ctx = qomni_gst_model_context_new (b->model);
  GstContext *device_ctx = NULL;
  if (b->vk) {
    QomniGstDevice *d = qomni_gst_device_new_borrowed (b->vk, -1);
    device_ctx = qomni_gst_device_context_new (d);
    qomni_gst_device_unref (d);
  }
  Stream *st = g_new0 (Stream, n);
  GError *error = NULL;
  gboolean ok = TRUE;
  for (int i = 0; ok && i < n; i++)
    ok = stream_init (b, &st[i], model_ctx, device_ctx, &error);
  for (int i = 0; ok && i < n; i++)
    ok = gst_element_set_state (st[i].pipe, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
  if (ok) {
    for (int i = 0; i < n; i++)
      push_question (b, &st[i]);
    wait_all (st, n, 600);
  }
  const char *fail = error ? error->message : !ok ? "a pipeline did not start" : NULL;
  for (int i = 0; !fail && i < n; i++)
    if (st[i].error)
      fail = st[i].error;
    else if (st[i].samples == 0 || st[i].t_first_text == 0)
      fail = "a stream gave no text or no audio";
  if (fail) {
    bench_skip (b, section, section, "%d stream(s): %s", n, fail);
  } else {
    double first_text = 0, first_audio = 0, worst_audio = 0, rtf = 0, audio_s = 0;
    for (int i = 0; i < n; i++) {
      const Stream *s = &st[i];
      const double dur = s->samples / 24000.0;
      first_text += (s->t_first_text - s->t_last_in) / n;
      first_audio += (s->t_first_audio - s->t_last_in) / n;
      worst_audio = MAX (worst_audio, s->t_first_audio - s->t_last_in);
      rtf += (s->t_last_audio - s->t_last_in) / dur / n;
      audio_s += dur / n;
    }
    const char *p = g_str_equal (section, "streams") ? "streams" : NULL;
    if (cold) {
      bench_figure (b, section, "first audio, cold start", p, n, first_audio * 1e3, "ms", 0,
                    NULL);
      goto out;
    }
    bench_figure (b, section, "first text", p, n, first_text * 1e3, "ms", 0, NULL);
    bench_figure (b, section, "first audio", p, n, first_audio * 1e3, "ms", 0, NULL);
    if (p)
      bench_figure (b, section, "first audio, slowest", p, n, worst_audio * 1e3, "ms", 0, NULL);
    bench_figure (b, section, "answer audio", p, n, audio_s, "s", 0, NULL);
    bench_figure (b, section, "real-time factor", p, n, rtf, "x", 0, NULL);
  }
out:
  for (int i = 0; i < n; i++)
    stream_clear (&st[i]);
  g_free (st);
  g_clear_error (&error);
  gst_context_unref (model_ctx);
  if (device_ctx)
    gst_context_unref (device_ctx);
}

void
bench_run_pipeline (Bench *b)
{
  bench_section (b, "pipeline");
  /* the first question of a process pays one-time costs (first use of every code path and
   * buffer): reported apart, then the figures of a second question */
  if (ensure_plugin (b, "pipeline")) {
    run_group (b, "pipeline", 1, TRUE);
    run_group (b, "pipeline", 1, FALSE);
  }
}

void
bench_run_streams (Bench *b)
{
  bench_section (b, "streams");
  if (!ensure_plugin (b, "streams"))
    return;
  for (guint i = 0; i < b->streams->len; i++)
    run_group (b, "streams", g_array_index (b->streams, int, i), FALSE);
}
