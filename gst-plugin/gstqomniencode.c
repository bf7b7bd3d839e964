/* qomniencode — audio → embeddings.
 *
 * Samples collect in one segment buffer until it holds `chunk-duration` of audio (or
 * `max-segment-duration` when chunk-duration is 0), or until EOS, a GAP, a discontinuity
 * or a new SEGMENT closes it; the closed segment goes through log-mel and the encoder and
 * leaves as one embeddings buffer stamped with the audio it covers. The 8 s default is
 * one attention window of the released encoder (n_window_infer = 800 mel frames): windows
 * never attend to each other, so cutting at window boundaries costs the encoder nothing.
 */
#include "gstqomniencode.h"
#include "qomni-embeddings.h"
#include "qomni-gst.h"

#include "audio-encoder.h"
#include "error.h"
#include "mel.h"

#include <gst/audio/audio.h>
#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_qomni_encode_debug);
#define GST_CAT_DEFAULT gst_qomni_encode_debug

#define RATE 16000
#define N_MELS 128
#define DEFAULT_CHUNK_MS 8000
#define DEFAULT_MAX_SEGMENT_MS 30000
#define MIN_SEGMENT_MS 1000
#define MAX_SEGMENT_MS 600000
/* What the latency query adds beyond the chunk itself: the encoder's time for a chunk. On
 * the CPU the full encoder needs roughly 0.1 s per second of audio on 16 cores. */
#define PROCESSING_LATENCY (200 * GST_MSECOND)
/* A timestamp this far from where the previous buffer ended starts a new segment. */
#define DISCONT_TOLERANCE (40 * GST_MSECOND)

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_CHUNK_DURATION,
  PROP_MAX_SEGMENT_DURATION,
};

struct _GstQomniEncode {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* properties, under settings_lock */
  GMutex settings_lock;
  char *model_path;
  char *device;
  guint chunk_ms;
  guint max_segment_ms;

  /* READY and up: the model and the math (built at NULL→READY) */
  QomniModel *model;
  QomniMel *mel;
  QomniAudioEncoder *encoder;
  QomniGstDevice *device_shared;  /* NULL on the CPU */
  int width;

  /* streaming state, under the sink pad's stream lock */
  gboolean s16;           /* input is S16LE (else F32LE) */
  gboolean have_format;
  float *pcm;             /* [cap_samples] the open segment */
  int n_pcm, cap_samples;
  float *features;        /* [N_MELS, cap_samples / 160] */
  GstClockTime seg_pts;   /* stream time of pcm[0], or NONE */
  gboolean discont;
  guint32 segment_index;
};

#define gst_qomni_encode_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstQomniEncode, gst_qomni_encode, GST_TYPE_ELEMENT,
                         GST_DEBUG_CATEGORY_INIT (gst_qomni_encode_debug, "qomniencode", 0,
                                                  "Qwen3-Omni audio encoder"));
GST_ELEMENT_REGISTER_DEFINE (qomniencode, "qomniencode", GST_RANK_NONE, GST_TYPE_QOMNI_ENCODE);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
  "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
  GST_STATIC_CAPS ("audio/x-raw, format=(string){ F32LE, S16LE }, rate=(int)16000, "
                   "channels=(int)1, layout=(string)interleaved"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
  "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (QOMNI_EMBEDDINGS_CAPS));

/* Samples a segment may hold, from the settings. */
static int
segment_limit (GstQomniEncode *self)
{
  g_mutex_lock (&self->settings_lock);
  guint ms = self->chunk_ms ? MIN (self->chunk_ms, self->max_segment_ms) : self->max_segment_ms;
  g_mutex_unlock (&self->settings_lock);
  return (int) ms * (RATE / 1000);
}

static void
reset_stream (GstQomniEncode *self)
{
  self->n_pcm = 0;
  self->seg_pts = GST_CLOCK_TIME_NONE;
  self->discont = FALSE;
  self->segment_index = 0;
}

/* Sizes the segment and feature buffers for `samples`; grows only (a property change while
 * playing is the one reason to come here outside NULL→READY). */
static void
ensure_capacity (GstQomniEncode *self, int samples)
{
  if (samples <= self->cap_samples)
    return;
  self->pcm = g_renew (float, self->pcm, samples);
  self->features = g_renew (float, self->features, (gsize) N_MELS * qomni_mel_n_frames (samples));
  self->cap_samples = samples;
}

static GstClockTime
samples_to_time (int n)
{
  return gst_util_uint64_scale_int (n, GST_SECOND, RATE);
}

static void
push_gap (GstQomniEncode *self, GstClockTime pts, GstClockTime duration)
{
  if (GST_CLOCK_TIME_IS_VALID (pts))
    gst_pad_push_event (self->srcpad, gst_event_new_gap (pts, duration));
}

/* Encodes the open segment and pushes it; empties the segment either way. */
static GstFlowReturn
close_segment (GstQomniEncode *self, guint32 flags)
{
  const int n = self->n_pcm;
  const GstClockTime pts = self->seg_pts, duration = samples_to_time (n);
  self->n_pcm = 0;
  if (GST_CLOCK_TIME_IS_VALID (self->seg_pts))
    self->seg_pts += duration;
  if (n == 0)
    return GST_FLOW_OK;
  /* Shorter than one mel hop (10 ms) there is no frame to encode. Padding it would make the
   * thinker answer a click; it is dropped, and a GAP keeps downstream's clock moving. */
  if (n < QOMNI_MEL_HOP) {
    GST_WARNING_OBJECT (self, "dropping a segment of %d samples (%.1f ms): shorter than one "
                        "mel frame", n, n * 1000.0 / RATE);
    push_gap (self, pts, duration);
    return GST_FLOW_OK;
  }
  const int T = qomni_mel_n_frames (n);
  const int A = qomni_audio_encoder_n_tokens (self->encoder, T);
  QomniEmbeddingsHeader h = {
    .n_rows = (guint32) A,
    .width = (guint32) self->width,
    .flags = flags | (self->discont ? QOMNI_EMBEDDINGS_FLAG_DISCONT : 0),
    .pts = pts,
    .duration = duration,
    .n_samples = (guint32) n,
    .n_mel_frames = (guint32) T,
    .segment_index = self->segment_index++,
  };
  GstBuffer *out = qomni_gst_embeddings_new (&h);
  GstMapInfo map;
  gst_buffer_map (out, &map, GST_MAP_WRITE);
  GError *error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = qomni_mel_compute (self->mel, self->pcm, n, self->features, &error) &&
                qomni_audio_encoder_encode (self->encoder, self->features, T,
                                            qomni_gst_embeddings_rows (map.data), &error);
  gst_buffer_unmap (out, &map);
  if (!ok) {
    gst_buffer_unref (out);
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not encode %.2f s of audio",
                                         n / (double) RATE);
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
  GST_DEBUG_OBJECT (self, "segment %u: %d samples, %d mel frames → %d rows in %.1f ms",
                    h.segment_index, n, T, A, (g_get_monotonic_time () - t0) / 1000.0);
  GST_BUFFER_PTS (out) = pts;
  GST_BUFFER_DURATION (out) = duration;
  if (self->discont) {
    GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_DISCONT);
    self->discont = FALSE;
  }
  return gst_pad_push (self->srcpad, out);
}

static GstFlowReturn
gst_qomni_encode_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  GstFlowReturn ret = GST_FLOW_OK;
  if (!self->have_format) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No audio format was negotiated"),
                       ("a buffer arrived before the caps event"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const int limit = segment_limit (self);
  ensure_capacity (self, limit);

  const GstClockTime pts = GST_BUFFER_PTS (buf);
  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT) && self->n_pcm > 0)
    self->discont = TRUE;
  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    const GstClockTime expect = GST_CLOCK_TIME_IS_VALID (self->seg_pts)
                                  ? self->seg_pts + samples_to_time (self->n_pcm)
                                  : GST_CLOCK_TIME_NONE;
    if (self->n_pcm > 0 && GST_CLOCK_TIME_IS_VALID (expect) &&
        (pts > expect + DISCONT_TOLERANCE || pts + DISCONT_TOLERANCE < expect)) {
      GST_INFO_OBJECT (self, "timestamp jump %" GST_TIME_FORMAT " → %" GST_TIME_FORMAT
                       ": closing the segment", GST_TIME_ARGS (expect), GST_TIME_ARGS (pts));
      ret = close_segment (self, QOMNI_EMBEDDINGS_FLAG_UTTERANCE_END);
      self->discont = TRUE;
    }
    if (self->n_pcm == 0)
      self->seg_pts = pts;
  }

  GstMapInfo map;
  if (ret != GST_FLOW_OK || !gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    return ret;
  }
  const int bps = self->s16 ? 2 : 4;
  const int n = (int) (map.size / bps);
  for (int i = 0; i < n && ret == GST_FLOW_OK;) {
    const int take = MIN (n - i, limit - self->n_pcm);
    float *dst = self->pcm + self->n_pcm;
    if (self->s16) {
      const gint16 *src = (const gint16 *) map.data + i;
      for (int j = 0; j < take; j++)
        dst[j] = GINT16_FROM_LE (src[j]) * (1.0f / 32768.0f);
    } else {
      const float *src = (const float *) map.data + i;
      /* NaN and ±Inf are treated as silence (0), as the mel front end does */
      for (int j = 0; j < take; j++)
        dst[j] = isfinite (src[j]) ? src[j] : 0.0f;
    }
    self->n_pcm += take;
    i += take;
    if (self->n_pcm >= limit)
      ret = close_segment (self, QOMNI_EMBEDDINGS_FLAG_NONE);
  }
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  return ret;
}

static gboolean
set_format (GstQomniEncode *self, GstCaps *caps)
{
  GstAudioInfo info;
  if (!gst_audio_info_from_caps (&info, caps)) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("qomniencode takes raw audio, not %s",
                                              gst_structure_get_name (
                                                gst_caps_get_structure (caps, 0))),
                       ("caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  const GstAudioFormat f = GST_AUDIO_INFO_FORMAT (&info);
  if (GST_AUDIO_INFO_RATE (&info) != RATE || GST_AUDIO_INFO_CHANNELS (&info) != 1 ||
      (f != GST_AUDIO_FORMAT_F32LE && f != GST_AUDIO_FORMAT_S16LE) ||
      GST_AUDIO_INFO_LAYOUT (&info) != GST_AUDIO_LAYOUT_INTERLEAVED) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("qomniencode needs 16000 Hz mono F32LE or S16LE audio, got %d Hz, %d "
                        "channel(s), %s; put audioconvert ! audioresample before it",
                        GST_AUDIO_INFO_RATE (&info), GST_AUDIO_INFO_CHANNELS (&info),
                        gst_audio_format_to_string (f)),
                       ("caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  self->s16 = f == GST_AUDIO_FORMAT_S16LE;
  self->have_format = TRUE;
  /* the output caps are known now (the width is the model's), and must precede the
   * SEGMENT event that follows on the sink pad */
  GstCaps *out = qomni_gst_embeddings_caps (self->width);
  gboolean ok = gst_pad_set_caps (self->srcpad, out);
  gst_caps_unref (out);
  return ok;
}

static gboolean
gst_qomni_encode_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps (event, &caps);
    gboolean ok = set_format (self, caps);
    gst_event_unref (event);
    return ok;
  }
  case GST_EVENT_GAP: {
    /* silence upstream: what came before is an utterance */
    if (close_segment (self, QOMNI_EMBEDDINGS_FLAG_UTTERANCE_END) != GST_FLOW_OK) {
      gst_event_unref (event);
      return FALSE;
    }
    GstClockTime ts, dur;
    gst_event_parse_gap (event, &ts, &dur);
    if (GST_CLOCK_TIME_IS_VALID (ts) && GST_CLOCK_TIME_IS_VALID (dur))
      self->seg_pts = ts + dur;
    break;
  }
  case GST_EVENT_EOS:
  case GST_EVENT_SEGMENT:
    /* a new timeline, or the end: the open segment is complete */
    close_segment (self, QOMNI_EMBEDDINGS_FLAG_UTTERANCE_END);
    if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT)
      self->seg_pts = GST_CLOCK_TIME_NONE;
    break;
  case GST_EVENT_FLUSH_STOP:
    reset_stream (self);
    break;
  default:
    break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_qomni_encode_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_ACCEPT_CAPS: {
    /* Any raw audio is "accepted" so that the caps event reaches set_format, which says
     * exactly what is wrong; the CAPS query still answers only 16 kHz mono, so converters
     * upstream pick the right format. */
    GstCaps *caps;
    gst_query_parse_accept_caps (query, &caps);
    GstStructure *s = gst_caps_get_size (caps) ? gst_caps_get_structure (caps, 0) : NULL;
    gboolean raw = s && gst_structure_has_name (s, "audio/x-raw") && gst_caps_is_fixed (caps);
    if (raw) {
      gst_query_set_accept_caps_result (query, TRUE);
      return TRUE;
    }
    break;
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
gst_qomni_encode_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_LATENCY: {
    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency (query, &live, &min, &max);
    /* a sample waits up to one chunk before it is encoded, then the encode itself */
    const GstClockTime own = samples_to_time (segment_limit (self)) + PROCESSING_LATENCY;
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
open_model (GstQomniEncode *self)
{
  g_mutex_lock (&self->settings_lock);
  g_autofree char *path = g_strdup (self->model_path);
  g_autofree char *device = g_strdup (self->device);
  g_mutex_unlock (&self->settings_lock);
  GError *error = NULL;
  /* With device=vulkan the encoder joins the pipeline's shared device (so the elements
   * agree on one) and runs its convolutions and layers there. */
  if (!qomni_gst_device_ensure (GST_ELEMENT (self), device, &self->device_shared, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Cannot use the requested device");
    g_error_free (error);
    return FALSE;
  }
  self->model = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
  if (self->model)
    self->encoder = qomni_audio_encoder_new_on (self->model->weights, self->model->config,
                                                qomni_gst_device_vk (self->device_shared),
                                                &error);
  if (!self->encoder) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not load the audio encoder of "
                                         "model %s", path ? path : "(none)");
    g_error_free (error);
    return FALSE;
  }
  self->mel = qomni_mel_new (N_MELS);
  self->width = qomni_audio_encoder_output_dim (self->encoder);
  ensure_capacity (self, segment_limit (self));
  return TRUE;
}

static void
close_model (GstQomniEncode *self)
{
  g_clear_pointer (&self->encoder, qomni_audio_encoder_free);
  g_clear_pointer (&self->device_shared, qomni_gst_device_unref);
  g_clear_pointer (&self->mel, qomni_mel_free);
  g_clear_pointer (&self->model, qomni_gst_model_release);
  g_clear_pointer (&self->pcm, g_free);
  g_clear_pointer (&self->features, g_free);
  self->cap_samples = 0;
}

static GstStateChangeReturn
gst_qomni_encode_change_state (GstElement *element, GstStateChange transition)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (element);
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY:
    if (!open_model (self)) {
      close_model (self);
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  case GST_STATE_CHANGE_READY_TO_PAUSED:
    reset_stream (self);
    self->have_format = FALSE;
    break;
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
gst_qomni_encode_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (object);
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
  case PROP_CHUNK_DURATION:
    self->chunk_ms = g_value_get_uint (value);
    break;
  case PROP_MAX_SEGMENT_DURATION:
    self->max_segment_ms = g_value_get_uint (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
  if (prop_id == PROP_CHUNK_DURATION || prop_id == PROP_MAX_SEGMENT_DURATION)
    gst_element_post_message (GST_ELEMENT (self),
                              gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_qomni_encode_get_property (GObject *object, guint prop_id, GValue *value,
                               GParamSpec *pspec)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (object);
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    g_value_set_string (value, self->model_path);
    break;
  case PROP_DEVICE:
    g_value_set_string (value, self->device);
    break;
  case PROP_CHUNK_DURATION:
    g_value_set_uint (value, self->chunk_ms);
    break;
  case PROP_MAX_SEGMENT_DURATION:
    g_value_set_uint (value, self->max_segment_ms);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
}

static void
gst_qomni_encode_finalize (GObject *object)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (object);
  close_model (self);
  g_free (self->model_path);
  g_free (self->device);
  g_mutex_clear (&self->settings_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_qomni_encode_class_init (GstQomniEncodeClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  gobject_class->set_property = gst_qomni_encode_set_property;
  gobject_class->get_property = gst_qomni_encode_get_property;
  gobject_class->finalize = gst_qomni_encode_finalize;
  element_class->change_state = gst_qomni_encode_change_state;

  g_object_class_install_property (gobject_class, PROP_MODEL,
    g_param_spec_string ("model", "Model",
                         "Checkpoint folder (config.json + safetensors); unset: use the model "
                         "of a neighbouring qomni element",
                         NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                         GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
    g_param_spec_string ("device", "Device", "Where to compute: auto or cpu (the CPU), vulkan or vulkan:N (the audio encoder on that GPU, shared with the other qomni elements through the qomni.vulkan.device context)", "auto",
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                         GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CHUNK_DURATION,
    g_param_spec_uint ("chunk-duration", "Chunk duration",
                       "Audio per segment in ms (8000 = one attention window of the encoder); "
                       "0: one segment per utterance, closed by EOS or a GAP (at most "
                       "max-segment-duration)",
                       0, MAX_SEGMENT_MS, DEFAULT_CHUNK_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                       GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_SEGMENT_DURATION,
    g_param_spec_uint ("max-segment-duration", "Maximum segment duration",
                       "Longest segment in ms; a longer one is cut here so memory stays "
                       "bounded",
                       MIN_SEGMENT_MS, MAX_SEGMENT_MS, DEFAULT_MAX_SEGMENT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                       GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Qwen3-Omni audio encoder",
    "Filter/Audio/Analyzer",
    "Turns 16 kHz mono speech into Qwen3-Omni audio embeddings (log-mel + AuT encoder)",
    "qomni authors");
}

static void
gst_qomni_encode_init (GstQomniEncode *self)
{
  g_mutex_init (&self->settings_lock);
  self->device = g_strdup ("auto");
  self->chunk_ms = DEFAULT_CHUNK_MS;
  self->max_segment_ms = DEFAULT_MAX_SEGMENT_MS;
  reset_stream (self);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_qomni_encode_chain);
  gst_pad_set_event_function (self->sinkpad, gst_qomni_encode_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_qomni_encode_sink_query);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, gst_qomni_encode_src_query);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
