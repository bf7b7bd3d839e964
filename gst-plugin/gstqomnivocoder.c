/* qomnivocoder — codec frames → 24 kHz speech.
 *
 * Frames collect in a Code2Wav stream (qomni_code2wav_stream_*) and are decoded
 * `chunk-frames` at a time, each chunk with up to `left-context` earlier frames in front
 * whose samples are dropped: exactly the reference's chunked_decode (chunk, left), so a
 * whole utterance streamed through here equals qomni_code2wav_chunked_decode on its codes.
 * Every decode call loses its last `trim` samples (555 for the release; the causal
 * transposed convolutions need frames that do not exist yet), which is why the output is
 * 1920 samples per frame minus 555 per chunk, and why small chunks cost quality as well
 * as compute (docs/elements.md).
 *
 * Timestamps count samples: an utterance's audio starts at its first frame's PTS and runs
 * on continuously; a new utterance (DISCONT frame, after the talker's utterance-end event)
 * starts at its own PTS, and the hole before it is announced with a GAP event.
 */
#include "gstqomnivocoder.h"
#include "qomni-codec.h"
#include "qomni-gst.h"

#include "code2wav.h"
#include "error.h"

#include <gst/base/gstadapter.h>

GST_DEBUG_CATEGORY_STATIC (gst_qomni_vocoder_debug);
#define GST_CAT_DEFAULT gst_qomni_vocoder_debug

#define RATE 24000
/* 10 frames = 0.8 s per chunk: the first sound leaves 0.8 s after its first frame, each
 * sample is decoded with (10 + 25) / 10 = 3.5 times the work of a single pass, and the 555
 * samples lost per chunk are 2.9 % of the audio. 4 frames would halve the wait but cost
 * 7.25 times the work and drop 7 % of the samples; the reference's 300 is for files. */
#define DEFAULT_CHUNK_FRAMES 10
#define DEFAULT_LEFT_CONTEXT 25
/* What decoding one chunk may take (the tiny fixture: ~5 ms). */
#define DEFAULT_LATENCY_MS 100
#define MAX_GROUPS 64

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_CHUNK_FRAMES,
  PROP_LEFT_CONTEXT,
  PROP_LATENCY,
};

struct _GstQomniVocoder {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* properties, under settings_lock */
  GMutex settings_lock;
  char *model_path;
  char *device;
  int chunk_frames, left_context;
  guint latency_ms;

  /* READY and up */
  QomniModel *model;
  QomniGstDevice *device_shared;   /* NULL on the CPU */
  QomniCode2Wav *c2w;
  int groups;

  /* streaming state, under the sink pad's stream lock */
  QomniCode2WavStream *stream;
  int stream_chunk, stream_left;   /* what the stream was made with */
  GstAdapter *adapter;             /* bytes of frames not yet complete */
  gboolean have_caps;
  gboolean open;                   /* frames of an utterance went into the stream */
  GstClockTime base;               /* PTS of the utterance's first sample */
  guint64 samples;                 /* samples pushed for the utterance */
  GstClockTime end;                /* where the audio (or the last GAP) ended, or NONE */
  gboolean discont;
};

#define gst_qomni_vocoder_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstQomniVocoder, gst_qomni_vocoder, GST_TYPE_ELEMENT,
                         GST_DEBUG_CATEGORY_INIT (gst_qomni_vocoder_debug, "qomnivocoder", 0,
                                                  "Qwen3-Omni Code2Wav vocoder"));
GST_ELEMENT_REGISTER_DEFINE (qomnivocoder, "qomnivocoder", GST_RANK_NONE,
                             GST_TYPE_QOMNI_VOCODER);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
  "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (QOMNI_CODEC_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
  "src", GST_PAD_SRC, GST_PAD_ALWAYS,
  GST_STATIC_CAPS ("audio/x-raw, format=(string)F32LE, rate=(int)24000, channels=(int)1, "
                   "layout=(string)interleaved"));

/* A fresh stream with the current settings (any pending frames are forgotten). */
static gboolean
renew_stream (GstQomniVocoder *self, GError **error)
{
  g_mutex_lock (&self->settings_lock);
  const int chunk = self->chunk_frames, left = self->left_context;
  g_mutex_unlock (&self->settings_lock);
  g_clear_pointer (&self->stream, qomni_code2wav_stream_free);
  self->stream = qomni_code2wav_stream_new (self->c2w, chunk, left, error);
  self->stream_chunk = chunk;
  self->stream_left = left;
  return self->stream != NULL;
}

static void
reset_stream (GstQomniVocoder *self)
{
  if (self->adapter)
    gst_adapter_clear (self->adapter);
  self->open = FALSE;
  self->base = GST_CLOCK_TIME_NONE;
  self->samples = 0;
  self->end = GST_CLOCK_TIME_NONE;
  self->discont = TRUE;
}

static GstClockTime
sample_time (GstQomniVocoder *self, guint64 n)
{
  return self->base + gst_util_uint64_scale_int (n, GST_SECOND, RATE);
}

/* Pushes n samples (taking wav) stamped from the sample counter. */
static GstFlowReturn
push_samples (GstQomniVocoder *self, float *wav, int n)
{
  if (n <= 0) {
    g_free (wav);
    return GST_FLOW_OK;
  }
  GstBuffer *out = gst_buffer_new_wrapped (wav, (gsize) n * sizeof (float));
  GST_BUFFER_PTS (out) = sample_time (self, self->samples);
  GST_BUFFER_DURATION (out) = sample_time (self, self->samples + n) - GST_BUFFER_PTS (out);
  GST_BUFFER_OFFSET (out) = self->samples;
  GST_BUFFER_OFFSET_END (out) = self->samples + n;
  if (self->discont) {
    GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
  self->samples += n;
  self->end = sample_time (self, self->samples);
  GST_LOG_OBJECT (self, "%d samples at %" GST_TIME_FORMAT, n,
                  GST_TIME_ARGS (GST_BUFFER_PTS (out)));
  return gst_pad_push (self->srcpad, out);
}

static void
post_error (GstQomniVocoder *self, GError *error, const char *what)
{
  QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "%s", what);
  g_error_free (error);
}

/* Decodes the frames still pending and closes the utterance. */
static GstFlowReturn
drain (GstQomniVocoder *self)
{
  if (!self->open)
    return GST_FLOW_OK;
  self->open = FALSE;
  float *wav = NULL;
  int n = 0;
  GError *error = NULL;
  const int pending = qomni_code2wav_stream_pending (self->stream);
  if (!qomni_code2wav_stream_finish (self->stream, &wav, &n, &error)) {
    post_error (self, error, "Could not decode the last codec frames");
    return GST_FLOW_ERROR;
  }
  GST_DEBUG_OBJECT (self, "drained %d pending frames into %d samples", pending, n);
  return push_samples (self, wav, n);
}

/* A frame that opens an utterance: drains the previous one, applies changed settings,
 * and places the new audio at pts (or right after what came before). */
static GstFlowReturn
open_utterance (GstQomniVocoder *self, GstClockTime pts)
{
  GstFlowReturn ret = drain (self);
  if (ret != GST_FLOW_OK)
    return ret;
  g_mutex_lock (&self->settings_lock);
  const gboolean changed = self->chunk_frames != self->stream_chunk ||
                           self->left_context != self->stream_left;
  g_mutex_unlock (&self->settings_lock);
  GError *error = NULL;
  if (changed && !renew_stream (self, &error)) {
    post_error (self, error, "Bad chunk-frames or left-context");
    return GST_FLOW_ERROR;
  }
  GstClockTime start = pts;
  if (!GST_CLOCK_TIME_IS_VALID (start))
    start = GST_CLOCK_TIME_IS_VALID (self->end) ? self->end : 0;
  if (GST_CLOCK_TIME_IS_VALID (self->end)) {
    if (start < self->end)
      start = self->end;
    else if (start > self->end)
      gst_pad_push_event (self->srcpad, gst_event_new_gap (self->end, start - self->end));
  }
  self->base = start;
  self->samples = 0;
  self->open = TRUE;
  self->discont = TRUE;
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_qomni_vocoder_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (parent);
  if (!self->have_caps) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No codec format was negotiated"),
                       ("a buffer arrived before the caps event"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const gsize frame_bytes = (gsize) self->groups * sizeof (gint32);
  GstFlowReturn ret = GST_FLOW_OK;
  const gboolean starts = !self->open || GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT);
  GstClockTime pts = GST_BUFFER_PTS (buf);
  if (starts) {
    if (gst_adapter_available (self->adapter) > 0) {
      GST_WARNING_OBJECT (self, "dropping %" G_GSIZE_FORMAT " bytes of an incomplete frame "
                          "at a discontinuity", gst_adapter_available (self->adapter));
      gst_adapter_clear (self->adapter);
    }
    ret = open_utterance (self, pts);
  }
  /* A buffer may hold several frames, or split one (a byte stream from a file): bytes
   * wait in the adapter until a whole frame is there. */
  if (ret == GST_FLOW_OK)
    gst_adapter_push (self->adapter, buf);
  else
    gst_buffer_unref (buf);
  while (ret == GST_FLOW_OK && gst_adapter_available (self->adapter) >= frame_bytes) {
    gint32 raw[MAX_GROUPS];
    int frame[MAX_GROUPS];
    gst_adapter_copy (self->adapter, raw, 0, frame_bytes);
    gst_adapter_flush (self->adapter, frame_bytes);
    for (int q = 0; q < self->groups; q++)
      frame[q] = GINT32_FROM_LE (raw[q]);
    float *wav = NULL;
    int n = 0;
    GError *error = NULL;
    if (!qomni_code2wav_stream_push (self->stream, frame, &wav, &n, &error)) {
      post_error (self, error, "Bad codec frame");
      ret = GST_FLOW_ERROR;
      break;
    }
    ret = push_samples (self, wav, n);
  }
  return ret;
}

static gboolean
set_format (GstQomniVocoder *self, GstCaps *caps)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  int codebooks = 0;
  if (!gst_structure_get_int (s, "codebooks", &codebooks) || codebooks != self->groups) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("Codec frames of %d codebooks, but this model's Code2Wav takes %d",
                        codebooks, self->groups), ("caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  GstCaps *out = gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "F32LE",
                                      "rate", G_TYPE_INT, RATE, "channels", G_TYPE_INT, 1,
                                      "layout", G_TYPE_STRING, "interleaved", NULL);
  gboolean ok = gst_pad_set_caps (self->srcpad, out);
  gst_caps_unref (out);
  self->have_caps = ok;
  return ok;
}

static gboolean
gst_qomni_vocoder_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (parent);
  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps (event, &caps);
    gboolean ok = set_format (self, caps);
    gst_event_unref (event);
    return ok;
  }
  case GST_EVENT_CUSTOM_DOWNSTREAM:
    if (qomni_gst_codec_is_utterance_end (event)) {
      /* the talker finished an answer: its last frames can be heard now */
      gboolean ok = drain (self) == GST_FLOW_OK;
      gst_event_unref (event);
      return ok;
    }
    break;
  case GST_EVENT_GAP:
  case GST_EVENT_EOS: {
    const gsize left = gst_adapter_available (self->adapter);
    if (left > 0) {
      GST_ELEMENT_WARNING (self, STREAM, DECODE,
                           ("Dropping an incomplete codec frame (%" G_GSIZE_FORMAT " of %d "
                            "bytes)", left, self->groups * 4), (NULL));
      gst_adapter_clear (self->adapter);
    }
    drain (self);
    if (GST_EVENT_TYPE (event) == GST_EVENT_GAP) {
      GstClockTime ts, dur;
      gst_event_parse_gap (event, &ts, &dur);
      if (GST_CLOCK_TIME_IS_VALID (ts) && GST_CLOCK_TIME_IS_VALID (dur) &&
          (!GST_CLOCK_TIME_IS_VALID (self->end) || ts + dur > self->end))
        self->end = ts + dur;
    }
    break;
  }
  case GST_EVENT_FLUSH_STOP: {
    /* serialized: the stream lock is held and the chain function is not running */
    reset_stream (self);
    GError *error = NULL;
    if (!renew_stream (self, &error)) {
      post_error (self, error, "Could not restart the decoder");
      gst_event_unref (event);
      return FALSE;
    }
    break;
  }
  default:
    break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_qomni_vocoder_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (parent);
  if (qomni_gst_model_handle_context_query (GST_ELEMENT (self), query, self->model) ||
      qomni_gst_device_handle_context_query (GST_ELEMENT (self), query, self->device_shared))
    return TRUE;
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_qomni_vocoder_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (parent);
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_LATENCY: {
    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency (query, &live, &min, &max);
    g_mutex_lock (&self->settings_lock);
    /* a frame waits until its chunk is complete, then the chunk is decoded */
    const GstClockTime own = self->chunk_frames * QOMNI_CODEC_FRAME_DURATION +
                             self->latency_ms * GST_MSECOND;
    g_mutex_unlock (&self->settings_lock);
    if (live) {
      min += own;
      if (GST_CLOCK_TIME_IS_VALID (max))
        max += own;
    }
    GST_DEBUG_OBJECT (self, "latency: live %d, min %" GST_TIME_FORMAT, live,
                      GST_TIME_ARGS (min));
    gst_query_set_latency (query, live, min, max);
    return TRUE;
  }
  case GST_QUERY_CONTEXT:
    if (qomni_gst_model_handle_context_query (GST_ELEMENT (self), query, self->model) ||
        qomni_gst_device_handle_context_query (GST_ELEMENT (self), query, self->device_shared))
      return TRUE;
    break;
  default:
    break;
  }
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
open_model (GstQomniVocoder *self)
{
  g_mutex_lock (&self->settings_lock);
  g_autofree char *path = g_strdup (self->model_path);
  g_autofree char *device = g_strdup (self->device);
  g_mutex_unlock (&self->settings_lock);
  GError *error = NULL;
  if (!qomni_gst_device_ensure (GST_ELEMENT (self), device, &self->device_shared, &error)) {
    post_error (self, error, "Cannot use the requested device");
    return FALSE;
  }
  self->model = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
  if (self->model)
    self->c2w = qomni_code2wav_new_on (self->model->weights, self->model->config,
                                       qomni_gst_device_vk (self->device_shared), &error);
  if (!self->c2w) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not load the Code2Wav vocoder of "
                                         "model %s", path ? path : "(shared)");
    g_error_free (error);
    return FALSE;
  }
  self->groups = qomni_code2wav_num_quantizers (self->c2w);
  g_assert (self->groups <= MAX_GROUPS);
  if (qomni_code2wav_samples_per_frame (self->c2w) * 25 != RATE * 2) {
    g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%d samples per 80 ms frame is not 24 kHz",
                 qomni_code2wav_samples_per_frame (self->c2w));
    post_error (self, error, "Unsupported Code2Wav");
    return FALSE;
  }
  if (!renew_stream (self, &error)) {
    post_error (self, error, "Bad chunk-frames or left-context");
    return FALSE;
  }
  return TRUE;
}

static void
close_model (GstQomniVocoder *self)
{
  g_clear_pointer (&self->stream, qomni_code2wav_stream_free);
  g_clear_pointer (&self->c2w, qomni_code2wav_free);
  g_clear_pointer (&self->model, qomni_gst_model_release);
  g_clear_pointer (&self->device_shared, qomni_gst_device_unref);
}

static GstStateChangeReturn
gst_qomni_vocoder_change_state (GstElement *element, GstStateChange transition)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (element);
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY:
    if (!open_model (self)) {
      close_model (self);
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  case GST_STATE_CHANGE_READY_TO_PAUSED: {
    reset_stream (self);
    self->have_caps = FALSE;
    GError *error = NULL;
    if (!renew_stream (self, &error)) {
      post_error (self, error, "Bad chunk-frames or left-context");
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  }
  default:
    break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;
  switch (transition) {
  case GST_STATE_CHANGE_PAUSED_TO_READY:
    reset_stream (self);
    break;
  case GST_STATE_CHANGE_READY_TO_NULL:
    close_model (self);
    break;
  default:
    break;
  }
  return ret;
}

static void
gst_qomni_vocoder_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (object);
  if ((prop_id == PROP_MODEL || prop_id == PROP_DEVICE) && !qomni_gst_property_settable_now (GST_ELEMENT (self), pspec))
    return;
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    g_free (self->model_path);
    self->model_path = g_value_dup_string (value);
    break;
  case PROP_DEVICE:
    g_free (self->device);
    self->device = g_value_dup_string (value);
    break;
  case PROP_CHUNK_FRAMES:
    self->chunk_frames = g_value_get_int (value);
    break;
  case PROP_LEFT_CONTEXT:
    self->left_context = g_value_get_int (value);
    break;
  case PROP_LATENCY:
    self->latency_ms = g_value_get_uint (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
  if (prop_id == PROP_CHUNK_FRAMES || prop_id == PROP_LATENCY)
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_qomni_vocoder_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (object);
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    g_value_set_string (value, self->model_path);
    break;
  case PROP_DEVICE:
    g_value_set_string (value, self->device);
    break;
  case PROP_CHUNK_FRAMES:
    g_value_set_int (value, self->chunk_frames);
    break;
  case PROP_LEFT_CONTEXT:
    g_value_set_int (value, self->left_context);
    break;
  case PROP_LATENCY:
    g_value_set_uint (value, self->latency_ms);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
}

static void
gst_qomni_vocoder_finalize (GObject *object)
{
  GstQomniVocoder *self = GST_QOMNI_VOCODER (object);
  close_model (self);
  g_clear_object (&self->adapter);
  g_free (self->model_path);
  g_free (self->device);
  g_mutex_clear (&self->settings_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_qomni_vocoder_class_init (GstQomniVocoderClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  gobject_class->set_property = gst_qomni_vocoder_set_property;
  gobject_class->get_property = gst_qomni_vocoder_get_property;
  gobject_class->finalize = gst_qomni_vocoder_finalize;
  element_class->change_state = gst_qomni_vocoder_change_state;

  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  g_object_class_install_property (gobject_class, PROP_MODEL,
    g_param_spec_string ("model", "Model",
                         "Checkpoint folder (config.json + safetensors); unset: use the model "
                         "of a neighbouring qomni element",
                         NULL, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
    g_param_spec_string ("device", "Device", "Where to compute: auto or cpu (the CPU), vulkan or vulkan:N (Code2Wav on that GPU, shared with the other qomni elements through the qomni.vulkan.device context)", "auto",
                         rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CHUNK_FRAMES,
    g_param_spec_int ("chunk-frames", "Chunk frames",
                      "Frames decoded per call (80 ms each): the latency this element adds; "
                      "applies from the next utterance", 1, 4096, DEFAULT_CHUNK_FRAMES,
                      rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LEFT_CONTEXT,
    g_param_spec_int ("left-context", "Left context",
                      "Earlier frames decoded in front of each chunk (their samples are "
                      "dropped); applies from the next utterance", 0, 4096,
                      DEFAULT_LEFT_CONTEXT, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
    g_param_spec_uint ("latency", "Latency",
                       "Processing time in ms one chunk may take, added with the chunk's "
                       "duration to upstream's latency", 0, 60000, DEFAULT_LATENCY_MS,
                       rw | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Qwen3-Omni Code2Wav vocoder",
    "Codec/Decoder/Audio",
    "Decodes 16-codebook speech codec frames into 24 kHz mono audio, a few frames at a time",
    "qomni authors");
}

static void
gst_qomni_vocoder_init (GstQomniVocoder *self)
{
  g_mutex_init (&self->settings_lock);
  self->device = g_strdup ("auto");
  self->chunk_frames = DEFAULT_CHUNK_FRAMES;
  self->left_context = DEFAULT_LEFT_CONTEXT;
  self->latency_ms = DEFAULT_LATENCY_MS;
  self->adapter = gst_adapter_new ();
  reset_stream (self);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_qomni_vocoder_chain);
  gst_pad_set_event_function (self->sinkpad, gst_qomni_vocoder_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_qomni_vocoder_sink_query);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, gst_qomni_vocoder_src_query);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
