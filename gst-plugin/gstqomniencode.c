/* qomniencode — audio and pictures → embeddings.
 *
 * Samples collect in one segment buffer until it holds `chunk-duration` of audio (or
 * `max-segment-duration` when chunk-duration is 0), or until EOS, a GAP, a discontinuity
 * or a new SEGMENT closes it; the closed segment goes through log-mel and the encoder and
 * leaves as one embeddings buffer stamped with the audio it covers. The 8 s default is
 * one attention window of the released encoder (n_window_infer = 800 mel frames): windows
 * never attend to each other, so cutting at window boundaries costs the encoder nothing.
 *
 * The `video_sink` request pad takes RGB pictures (section "Video" below): frames are
 * sampled at `video-fps`, resized as they arrive, and at the video pad's EOS go through the
 * vision encoder as one image (a single frame) or one video. While a video pad is linked
 * the audio segments are held and leave with the picture as its soundtrack.
 */
#include "gstqomniencode.h"
#include "qomni-embeddings.h"
#include "qomni-gst.h"

#include "audio-encoder.h"
#include "error.h"
#include "image.h"
#include "mel.h"
#include "vision-encoder.h"

#include <gst/audio/audio.h>
#include <gst/video/video.h>
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
  PROP_VIDEO_FPS,
  PROP_MAX_VIDEO_FRAMES,
  PROP_MAX_PIXELS,
};

#define DEFAULT_VIDEO_FPS 2.0
#define DEFAULT_MAX_VIDEO_FRAMES 768

/* The video_sink pad's state, under media_lock (the video and the audio streaming threads
 * both reach it). */
typedef struct {
  GstPad *pad;              /* the request pad, or NULL */
  GstVideoInfo info;
  gboolean have_info;
  double fps;               /* settings copied when the first frame arrives */
  guint max_frames;
  QomniImageParams image_params, video_params;
  guint8 *first;            /* the first frame, packed, at its own size (an image until a
                             * second frame makes it a video) */
  GPtrArray *frames;        /* video: kept frames resized to out_w × out_h */
  int out_w, out_h;
  int stride;               /* keep every stride-th sampled frame (grows to bound memory) */
  gint64 n_sampled;         /* frames taken at the sampling rate */
  GstClockTime first_pts, end;
  gboolean eos;
  /* the encoded picture waiting for the soundtrack to end (a buffer without audio rows) */
  GstBuffer *pending;
  /* audio held while a video pad is linked: rows, and what they cover */
  GArray *held_rows;
  guint32 held_samples, held_mel_frames;
  GstClockTime held_pts, held_duration;
  gboolean audio_eos;
} VideoState;

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
  QomniGstDevice *device_shared;  /* joined, not yet computed on */
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

  /* pictures: properties under settings_lock, the rest under media_lock */
  double video_fps;
  guint max_video_frames;
  guint max_pixels;
  GMutex media_lock;
  QomniVisionEncoder *vision;   /* made when the first picture is encoded */
  VideoState video;
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
static GstStaticPadTemplate video_sink_template = GST_STATIC_PAD_TEMPLATE (
  "video_sink", GST_PAD_SINK, GST_PAD_REQUEST,
  GST_STATIC_CAPS ("video/x-raw, format=(string)RGB"));

static gboolean video_hold_audio (GstQomniEncode *self, GstBuffer *out);

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
  if (video_hold_audio (self, out))
    return GST_FLOW_OK;
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


/* ---- Video: the video_sink request pad ------------------------------------------------
 *
 * Pictures arrive as RGB frames. Frames are sampled at video-fps by timestamp (every frame
 * when timestamps are missing). The first is kept as it is; from the second on the stream
 * is a video: every kept frame is resized right away (Pillow-exact bicubic, the video pixel
 * budget), and when more than 2·max-video-frames are kept every other one is dropped and
 * later ones are taken half as often, so memory stays bounded. At EOS a single frame is
 * encoded as an image, several as one video (max-video-frames picked evenly, an even
 * count). The buffer waits for the soundtrack's EOS when the audio sink is linked too. */

static void
video_reset (GstQomniEncode *self)
{
  VideoState *v = &self->video;
  g_clear_pointer (&v->first, g_free);
  g_clear_pointer (&v->frames, g_ptr_array_unref);
  gst_clear_buffer (&v->pending);
  if (v->held_rows)
    g_array_set_size (v->held_rows, 0);
  v->held_samples = v->held_mel_frames = 0;
  v->held_pts = v->held_duration = GST_CLOCK_TIME_NONE;
  v->stride = 1;
  v->n_sampled = 0;
  v->first_pts = v->end = GST_CLOCK_TIME_NONE;
  v->eos = v->audio_eos = FALSE;
}

/* Whether audio must wait for the picture: a video pad is linked and its picture has not
 * left yet. Call with media_lock held. */
static gboolean
video_wants_audio_locked (GstQomniEncode *self)
{
  const VideoState *v = &self->video;
  return v->pad && gst_pad_is_linked (v->pad) && (!v->eos || v->pending);
}

/* Keeps an audio embeddings buffer as the soundtrack of the picture to come; FALSE when
 * there is no picture to wait for (the caller pushes it). Takes out when TRUE. */
static gboolean
video_hold_audio (GstQomniEncode *self, GstBuffer *out)
{
  g_mutex_lock (&self->media_lock);
  VideoState *v = &self->video;
  if (!video_wants_audio_locked (self)) {
    g_mutex_unlock (&self->media_lock);
    return FALSE;
  }
  GstMapInfo map;
  if (gst_buffer_map (out, &map, GST_MAP_READ)) {
    const QomniEmbeddingsHeader *h = (const QomniEmbeddingsHeader *) map.data;
    if (!v->held_rows)
      v->held_rows = g_array_new (FALSE, FALSE, sizeof (float));
    g_array_append_vals (v->held_rows, qomni_gst_embeddings_rows (map.data),
                         (guint) h->n_rows * h->width);
    v->held_samples += h->n_samples;
    v->held_mel_frames += h->n_mel_frames;
    if (!GST_CLOCK_TIME_IS_VALID (v->held_pts))
      v->held_pts = h->pts;
    v->held_duration = GST_CLOCK_TIME_IS_VALID (v->held_duration)
                         ? v->held_duration + h->duration : h->duration;
    gst_buffer_unmap (out, &map);
  }
  g_mutex_unlock (&self->media_lock);
  gst_buffer_unref (out);
  return TRUE;
}

/* (transfer full) The picture with the held soundtrack appended (or picture itself when
 * none is held). Call with media_lock held. */
static GstBuffer *
video_attach_soundtrack_locked (GstQomniEncode *self, GstBuffer *picture)
{
  VideoState *v = &self->video;
  if (!v->held_rows || v->held_rows->len == 0)
    return picture;
  GstMapInfo in, out;
  gst_buffer_map (picture, &in, GST_MAP_READ);
  QomniEmbeddingsHeader h;
  memcpy (&h, in.data, sizeof h);
  h.n_audio_rows = v->held_rows->len / h.width;
  h.n_samples = v->held_samples;
  h.n_mel_frames = v->held_mel_frames;
  GstBuffer *with = qomni_gst_embeddings_new (&h);
  gst_buffer_map (with, &out, GST_MAP_WRITE);
  const gsize picture_floats = (gsize) h.n_rows * h.width * (1 + h.n_deepstack);
  memcpy (qomni_gst_embeddings_rows (out.data), qomni_gst_embeddings_rows (in.data),
          picture_floats * sizeof (float));
  memcpy (qomni_gst_embeddings_audio_rows (out.data), v->held_rows->data,
          (gsize) v->held_rows->len * sizeof (float));
  gst_buffer_unmap (with, &out);
  gst_buffer_unmap (picture, &in);
  gst_buffer_copy_into (with, picture, GST_BUFFER_COPY_METADATA, 0, -1);
  gst_buffer_unref (picture);
  g_array_set_size (v->held_rows, 0);
  v->held_samples = v->held_mel_frames = 0;
  v->held_pts = v->held_duration = GST_CLOCK_TIME_NONE;
  return with;
}

/* (transfer full) The held audio as a plain audio buffer, or NULL when none is held. Call
 * with media_lock held. */
static GstBuffer *
video_held_as_audio_locked (GstQomniEncode *self)
{
  VideoState *v = &self->video;
  if (!v->held_rows || v->held_rows->len == 0)
    return NULL;
  QomniEmbeddingsHeader h = {
    .n_rows = v->held_rows->len / self->width,
    .width = (guint32) self->width,
    .flags = QOMNI_EMBEDDINGS_FLAG_UTTERANCE_END,
    .pts = v->held_pts,
    .duration = v->held_duration,
    .n_samples = v->held_samples,
    .n_mel_frames = v->held_mel_frames,
  };
  GstBuffer *out = qomni_gst_embeddings_new (&h);
  GstMapInfo map;
  gst_buffer_map (out, &map, GST_MAP_WRITE);
  memcpy (qomni_gst_embeddings_rows (map.data), v->held_rows->data,
          (gsize) v->held_rows->len * sizeof (float));
  gst_buffer_unmap (out, &map);
  GST_BUFFER_PTS (out) = h.pts;
  GST_BUFFER_DURATION (out) = h.duration;
  g_array_set_size (v->held_rows, 0);
  v->held_samples = v->held_mel_frames = 0;
  v->held_pts = v->held_duration = GST_CLOCK_TIME_NONE;
  return out;
}

/* Resizes one frame (packed or with the given stride) into a new out_w × out_h frame. */
static guint8 *
video_resize (const VideoState *v, const guint8 *src, int w, int h, int stride, GError **error)
{
  guint8 *dst = g_try_malloc ((gsize) v->out_w * v->out_h * 3);
  if (!dst) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for a %dx%d frame",
                 v->out_w, v->out_h);
    return NULL;
  }
  if (!qomni_image_resize_rgb (src, w, h, stride, dst, v->out_w, v->out_h, error)) {
    g_free (dst);
    return NULL;
  }
  return dst;
}

/* Keeps one sampled frame. Call with media_lock held. */
static gboolean
video_keep_frame_locked (GstQomniEncode *self, GstVideoFrame *frame, GError **error)
{
  VideoState *v = &self->video;
  const int w = GST_VIDEO_FRAME_WIDTH (frame), h = GST_VIDEO_FRAME_HEIGHT (frame);
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);
  const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  if (!v->first && !v->frames) {
    v->first = g_try_malloc ((gsize) w * h * 3);
    if (!v->first) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for a %dx%d picture",
                   w, h);
      return FALSE;
    }
    for (int y = 0; y < h; y++)
      memcpy (v->first + (gsize) y * w * 3, data + (gsize) y * stride, (gsize) w * 3);
    return TRUE;
  }
  if (!v->frames) {
    /* a second frame: this is a video; the first frame joins it at the video size */
    if (!qomni_image_smart_resize (h, w, &v->video_params, &v->out_h, &v->out_w, error))
      return FALSE;
    v->frames = g_ptr_array_new_with_free_func (g_free);
    guint8 *f0 = video_resize (v, v->first, w, h, w * 3, error);
    if (!f0)
      return FALSE;
    g_ptr_array_add (v->frames, f0);
    g_clear_pointer (&v->first, g_free);
  }
  guint8 *f = video_resize (v, data, w, h, stride, error);
  if (!f)
    return FALSE;
  g_ptr_array_add (v->frames, f);
  if (v->frames->len >= 2 * v->max_frames) {
    /* every other frame goes; later frames are taken half as often */
    GPtrArray *thin = g_ptr_array_new_full (v->max_frames + 1, g_free);
    for (guint i = 0; i < v->frames->len; i++) {
      if (i % 2 == 0)
        g_ptr_array_add (thin, v->frames->pdata[i]);
      else
        g_free (v->frames->pdata[i]);
    }
    g_ptr_array_set_free_func (v->frames, NULL);
    g_ptr_array_unref (v->frames);
    v->frames = thin;
    v->stride *= 2;
  }
  return TRUE;
}

static GstFlowReturn
video_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  g_mutex_lock (&self->media_lock);
  VideoState *v = &self->video;
  if (!v->have_info) {
    g_mutex_unlock (&self->media_lock);
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No video format was negotiated"),
                       ("a buffer arrived on video_sink before the caps event"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (v->n_sampled == 0 && !v->first && !v->frames) {
    g_mutex_lock (&self->settings_lock);
    v->fps = self->video_fps;
    v->max_frames = self->max_video_frames;
    v->image_params = QOMNI_IMAGE_PARAMS_DEFAULT;
    v->video_params = QOMNI_VIDEO_PARAMS_DEFAULT;
    if (self->max_pixels > 0) {
      v->image_params.max_pixels = self->max_pixels;
      v->image_params.min_pixels = MIN (v->image_params.min_pixels, (int64_t) self->max_pixels);
      v->video_params.max_pixels = self->max_pixels;
      v->video_params.min_pixels = MIN (v->video_params.min_pixels, (int64_t) self->max_pixels);
    }
    g_mutex_unlock (&self->settings_lock);
  }
  /* sampling by timestamp: take the frame when it reaches the next sampling instant */
  const GstClockTime pts = GST_BUFFER_PTS (buf);
  gboolean take = TRUE;
  if (GST_CLOCK_TIME_IS_VALID (pts)) {
    if (!GST_CLOCK_TIME_IS_VALID (v->first_pts))
      v->first_pts = pts;
    const GstClockTime due = v->first_pts + (GstClockTime) (v->n_sampled * (GST_SECOND / v->fps));
    take = pts + GST_MSECOND >= due;
    const GstClockTime dur = GST_BUFFER_DURATION (buf);
    v->end = pts + (GST_CLOCK_TIME_IS_VALID (dur) ? dur : 0);
  }
  GError *error = NULL;
  gboolean ok = TRUE;
  if (take && !v->eos) {
    GstVideoFrame frame;
    if (v->n_sampled % v->stride == 0) {
      if (!gst_video_frame_map (&frame, &v->info, buf, GST_MAP_READ)) {
        g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_FORMAT,
                     "a video buffer of %" G_GSIZE_FORMAT " bytes does not hold a %dx%d RGB "
                     "frame", gst_buffer_get_size (buf), GST_VIDEO_INFO_WIDTH (&v->info),
                     GST_VIDEO_INFO_HEIGHT (&v->info));
        ok = FALSE;
      } else {
        ok = video_keep_frame_locked (self, &frame, &error);
        gst_video_frame_unmap (&frame);
      }
    }
    v->n_sampled++;
  }
  g_mutex_unlock (&self->media_lock);
  gst_buffer_unref (buf);
  if (!ok) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not take a video frame");
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

/* (transfer full) The kept frames through the vision encoder as one embeddings buffer, or
 * NULL: with *error on failure, without when no frame came. Call with media_lock held. */
static GstBuffer *
video_encode_locked (GstQomniEncode *self, GError **error)
{
  VideoState *v = &self->video;
  if (!v->first && !v->frames)
    return NULL;
  float *pixels = NULL;
  int grid[3];
  gboolean ok;
  QomniEmbeddingsHeader h = { 0 };
  const int T = self->model->config->thinker.vision.temporal_patch_size;
  if (v->first) {
    const int w = GST_VIDEO_INFO_WIDTH (&v->info), hh = GST_VIDEO_INFO_HEIGHT (&v->info);
    ok = qomni_image_preprocess (v->first, w, hh, 3 * w, &v->image_params, &pixels, grid, error);
    h.kind = QOMNI_EMBEDDINGS_KIND_IMAGE;
  } else {
    /* max_frames picked evenly over the kept ones (round(linspace)), an even count */
    const int kept = (int) v->frames->len;
    int n = MIN (kept, (int) v->max_frames);
    if (n > 1)
      n -= n % 2;
    const guint8 **pick = g_new (const guint8 *, n);
    for (int i = 0; i < n; i++)
      pick[i] = v->frames->pdata[n > 1 ? (int) nearbyint ((double) i * (kept - 1) / (n - 1)) : 0];
    QomniImageParams p = v->video_params;
    p.temporal_patch_size = T;
    ok = qomni_video_preprocess (pick, n, v->out_w, v->out_h, 3 * v->out_w, &p, &pixels, grid,
                                 error);
    g_free (pick);
    h.kind = QOMNI_EMBEDDINGS_KIND_VIDEO;
    /* the kept frames stand for fps · n / sampled frames per second of video */
    const double fps = v->fps * n / (double) MAX (v->n_sampled, 1);
    h.second_per_grid = (float) (T / fps);
  }
  if (ok && !self->vision)
    ok = (self->vision = qomni_vision_encoder_new (self->model->weights, self->model->config,
                                                   error)) != NULL;
  if (!ok) {
    g_free (pixels);
    return NULL;
  }
  const int n_tok = qomni_vision_encoder_n_tokens (self->vision, grid);
  const int K = qomni_vision_encoder_n_deepstack (self->vision);
  h.n_rows = (guint32) n_tok;
  h.width = (guint32) qomni_vision_encoder_output_dim (self->vision);
  h.n_deepstack = (guint8) K;
  h.grid_t = (guint32) grid[0];
  h.grid_h = (guint32) grid[1];
  h.grid_w = (guint32) grid[2];
  h.pts = v->first_pts;
  h.duration = GST_CLOCK_TIME_IS_VALID (v->first_pts) && GST_CLOCK_TIME_IS_VALID (v->end)
                 ? v->end - v->first_pts : GST_CLOCK_TIME_NONE;
  GstBuffer *out = qomni_gst_embeddings_new (&h);
  GstMapInfo map;
  gst_buffer_map (out, &map, GST_MAP_WRITE);
  gint64 t0 = g_get_monotonic_time ();
  ok = qomni_vision_encoder_encode (self->vision, pixels, grid,
                                    qomni_gst_embeddings_rows (map.data),
                                    K ? qomni_gst_embeddings_deepstack (map.data) : NULL, error);
  gst_buffer_unmap (out, &map);
  g_free (pixels);
  if (!ok) {
    gst_buffer_unref (out);
    return NULL;
  }
  GST_DEBUG_OBJECT (self, "%s grid %d×%d×%d → %d rows in %.1f ms",
                    h.kind == QOMNI_EMBEDDINGS_KIND_IMAGE ? "image" : "video", grid[0], grid[1],
                    grid[2], n_tok, (g_get_monotonic_time () - t0) / 1000.0);
  GST_BUFFER_PTS (out) = h.pts;
  GST_BUFFER_DURATION (out) = h.duration;
  g_clear_pointer (&v->first, g_free);
  g_clear_pointer (&v->frames, g_ptr_array_unref);
  return out;
}

/* The video pad's EOS: encode; push the picture now (with what audio was held) unless the
 * soundtrack is still running. TRUE when EOS may go downstream now. */
static gboolean
video_eos (GstQomniEncode *self, GstFlowReturn *ret)
{
  GError *error = NULL;
  g_mutex_lock (&self->media_lock);
  VideoState *v = &self->video;
  GstBuffer *out = v->eos ? NULL : video_encode_locked (self, &error);
  v->eos = TRUE;
  const gboolean wait = out && gst_pad_is_linked (self->sinkpad) && !v->audio_eos;
  if (wait)
    v->pending = out;
  else if (out)
    out = video_attach_soundtrack_locked (self, out);
  else if (!error)
    out = video_held_as_audio_locked (self);   /* no picture came: the sound goes alone */
  const gboolean audio_done = !gst_pad_is_linked (self->sinkpad) || v->audio_eos;
  g_mutex_unlock (&self->media_lock);
  *ret = GST_FLOW_OK;
  if (error) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not encode the picture");
    g_error_free (error);
    *ret = GST_FLOW_ERROR;
    return audio_done;
  }
  if (out && !wait)
    *ret = gst_pad_push (self->srcpad, out);
  return audio_done;
}

/* The audio pad's EOS (after its last segment was closed): push a picture that waited for
 * its soundtrack. TRUE when EOS may go downstream now. */
static gboolean
video_audio_eos (GstQomniEncode *self)
{
  g_mutex_lock (&self->media_lock);
  VideoState *v = &self->video;
  v->audio_eos = TRUE;
  if (!v->pad || !gst_pad_is_linked (v->pad)) {
    g_mutex_unlock (&self->media_lock);
    return TRUE;
  }
  GstBuffer *out = NULL;
  if (v->pending) {
    out = video_attach_soundtrack_locked (self, v->pending);
    v->pending = NULL;
  }
  const gboolean done = v->eos;
  g_mutex_unlock (&self->media_lock);
  if (out)
    gst_pad_push (self->srcpad, out);
  return done;
}

static gboolean
video_set_format (GstQomniEncode *self, GstCaps *caps)
{
  GstVideoInfo info;
  if (!gst_video_info_from_caps (&info, caps) ||
      GST_VIDEO_INFO_FORMAT (&info) != GST_VIDEO_FORMAT_RGB) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("qomniencode's video_sink takes packed RGB pictures; put videoconvert "
                        "before it"), ("caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  const gint64 pixels = (gint64) GST_VIDEO_INFO_WIDTH (&info) * GST_VIDEO_INFO_HEIGHT (&info);
  if (pixels > QOMNI_IMAGE_PARAMS_DEFAULT.max_input_pixels) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("Pictures of %dx%d are refused: more than %" G_GINT64_FORMAT " pixels; "
                        "scale them down first (videoscale)", GST_VIDEO_INFO_WIDTH (&info),
                        GST_VIDEO_INFO_HEIGHT (&info),
                        (gint64) QOMNI_IMAGE_PARAMS_DEFAULT.max_input_pixels), (NULL));
    return FALSE;
  }
  g_mutex_lock (&self->media_lock);
  if (self->video.have_info && (self->video.first || self->video.frames) &&
      (GST_VIDEO_INFO_WIDTH (&info) != GST_VIDEO_INFO_WIDTH (&self->video.info) ||
       GST_VIDEO_INFO_HEIGHT (&info) != GST_VIDEO_INFO_HEIGHT (&self->video.info))) {
    g_mutex_unlock (&self->media_lock);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("The picture size changed within one video (%dx%d → %dx%d)",
                        GST_VIDEO_INFO_WIDTH (&self->video.info),
                        GST_VIDEO_INFO_HEIGHT (&self->video.info), GST_VIDEO_INFO_WIDTH (&info),
                        GST_VIDEO_INFO_HEIGHT (&info)), (NULL));
    return FALSE;
  }
  self->video.info = info;
  self->video.have_info = TRUE;
  g_mutex_unlock (&self->media_lock);
  if (gst_pad_has_current_caps (self->srcpad))
    return TRUE;
  GstCaps *out = qomni_gst_embeddings_caps (self->width);
  gboolean ok = gst_pad_set_caps (self->srcpad, out);
  gst_caps_unref (out);
  return ok;
}

static gboolean
video_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps (event, &caps);
    gboolean ok = video_set_format (self, caps);
    gst_event_unref (event);
    return ok;
  }
  case GST_EVENT_STREAM_START:
  case GST_EVENT_SEGMENT: {
    /* the output stream's own events come from the audio pad when it runs; without it
     * they come from here */
    GstEvent *have = gst_pad_get_sticky_event (self->srcpad, GST_EVENT_TYPE (event), 0);
    if (have) {
      gst_event_unref (have);
      gst_event_unref (event);
      return TRUE;
    }
    return gst_pad_push_event (self->srcpad, event);
  }
  case GST_EVENT_EOS: {
    GstFlowReturn ret;
    const gboolean forward = video_eos (self, &ret);
    if (forward)
      return gst_pad_push_event (self->srcpad, event);
    gst_event_unref (event);
    return ret == GST_FLOW_OK;
  }
  case GST_EVENT_FLUSH_STOP:
    g_mutex_lock (&self->media_lock);
    video_reset (self);
    g_mutex_unlock (&self->media_lock);
    return gst_pad_event_default (pad, parent, event);
  case GST_EVENT_FLUSH_START:
    return gst_pad_event_default (pad, parent, event);
  default:
    /* tags, gaps and the like describe the pictures, not the embeddings */
    gst_event_unref (event);
    return TRUE;
  }
}

static gboolean
video_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (parent);
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_ACCEPT_CAPS: {
    /* any fixed raw video is "accepted" so that video_set_format says what is wrong */
    GstCaps *caps;
    gst_query_parse_accept_caps (query, &caps);
    GstStructure *st = gst_caps_get_size (caps) ? gst_caps_get_structure (caps, 0) : NULL;
    if (st && gst_structure_has_name (st, "video/x-raw") && gst_caps_is_fixed (caps)) {
      gst_query_set_accept_caps_result (query, TRUE);
      return TRUE;
    }
    break;
  }
  case GST_QUERY_CONTEXT:
    if (qomni_gst_model_handle_context_query (GST_ELEMENT (self), query, self->model))
      return TRUE;
    break;
  case GST_QUERY_ALLOCATION:
    /* frames are copied or resized at once: any allocator, no meta needed */
    return FALSE;
  default:
    break;
  }
  return gst_pad_query_default (pad, parent, query);
}

static GstPad *
gst_qomni_encode_request_new_pad (GstElement *element, GstPadTemplate *templ,
                                  const gchar *name, const GstCaps *caps)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (element);
  g_mutex_lock (&self->media_lock);
  if (self->video.pad) {
    g_mutex_unlock (&self->media_lock);
    GST_WARNING_OBJECT (self, "qomniencode has one video_sink pad, and it exists");
    return NULL;
  }
  GstPad *pad = gst_pad_new_from_template (templ, "video_sink");
  gst_pad_set_chain_function (pad, video_chain);
  gst_pad_set_event_function (pad, video_sink_event);
  gst_pad_set_query_function (pad, video_sink_query);
  self->video.pad = pad;
  video_reset (self);
  g_mutex_unlock (&self->media_lock);
  if (GST_STATE (element) > GST_STATE_READY)
    gst_pad_set_active (pad, TRUE);
  gst_element_add_pad (element, pad);
  return pad;
}

static void
gst_qomni_encode_release_pad (GstElement *element, GstPad *pad)
{
  GstQomniEncode *self = GST_QOMNI_ENCODE (element);
  g_mutex_lock (&self->media_lock);
  if (self->video.pad == pad) {
    self->video.pad = NULL;
    video_reset (self);
  }
  g_mutex_unlock (&self->media_lock);
  gst_element_remove_pad (element, pad);
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
    /* with pictures coming too, EOS goes on when both streams ended */
    if (GST_EVENT_TYPE (event) == GST_EVENT_EOS && !video_audio_eos (self)) {
      gst_event_unref (event);
      return TRUE;
    }
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
   * agree on one), but its convolutions and layers still run on the CPU: the audio
   * encoder's shaders are not written yet. */
  if (!qomni_gst_device_ensure (GST_ELEMENT (self), device, &self->device_shared, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Cannot use the requested device");
    g_error_free (error);
    return FALSE;
  }
  if (self->device_shared)
    GST_INFO_OBJECT (self, "device=%s: the audio encoder still computes on the CPU", device);
  self->model = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
  if (self->model)
    self->encoder = qomni_audio_encoder_new (self->model->weights, self->model->config, &error);
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
  g_clear_pointer (&self->vision, qomni_vision_encoder_free);
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
    g_mutex_lock (&self->media_lock);
    video_reset (self);
    self->video.have_info = FALSE;
    g_mutex_unlock (&self->media_lock);
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
    g_mutex_lock (&self->media_lock);
    video_reset (self);
    g_mutex_unlock (&self->media_lock);
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
  case PROP_VIDEO_FPS:
    self->video_fps = g_value_get_double (value);
    break;
  case PROP_MAX_VIDEO_FRAMES:
    self->max_video_frames = g_value_get_uint (value);
    break;
  case PROP_MAX_PIXELS:
    self->max_pixels = g_value_get_uint (value);
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
  case PROP_VIDEO_FPS:
    g_value_set_double (value, self->video_fps);
    break;
  case PROP_MAX_VIDEO_FRAMES:
    g_value_set_uint (value, self->max_video_frames);
    break;
  case PROP_MAX_PIXELS:
    g_value_set_uint (value, self->max_pixels);
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
  video_reset (self);
  if (self->video.held_rows)
    g_array_free (self->video.held_rows, TRUE);
  g_free (self->model_path);
  g_free (self->device);
  g_mutex_clear (&self->settings_lock);
  g_mutex_clear (&self->media_lock);
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
    g_param_spec_string ("device", "Device", "Where to compute: auto or cpu; vulkan or vulkan:N joins the shared device (the encoder itself still runs on the CPU)", "auto",
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

  g_object_class_install_property (gobject_class, PROP_VIDEO_FPS,
    g_param_spec_double ("video-fps", "Video frame rate",
                         "Frames per second sampled from video_sink (2, as qwen-omni-utils)",
                         0.05, 120.0, DEFAULT_VIDEO_FPS,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                         GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_VIDEO_FRAMES,
    g_param_spec_uint ("max-video-frames", "Most video frames",
                       "Most frames of one video, spread evenly over it (768, as "
                       "qwen-omni-utils)", 1, 16384, DEFAULT_MAX_VIDEO_FRAMES,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                       GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_PIXELS,
    g_param_spec_uint ("max-pixels", "Most pixels",
                       "Resize pictures to at most this many pixels (multiples of 32 a side); "
                       "0: the processor's budgets, 12845056 for an image and 786432 for a "
                       "video frame", 0, G_MAXINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                       GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_add_static_pad_template (element_class, &video_sink_template);
  element_class->request_new_pad = gst_qomni_encode_request_new_pad;
  element_class->release_pad = gst_qomni_encode_release_pad;
  gst_element_class_set_static_metadata (element_class, "Qwen3-Omni audio and vision encoder",
    "Filter/Audio/Video/Analyzer",
    "Turns 16 kHz mono audio and RGB pictures into Qwen3-Omni embeddings (log-mel + AuT "
    "encoder; the vision encoder with DeepStack)",
    "qomni authors");
}

static void
gst_qomni_encode_init (GstQomniEncode *self)
{
  g_mutex_init (&self->settings_lock);
  g_mutex_init (&self->media_lock);
  self->video_fps = DEFAULT_VIDEO_FPS;
  self->max_video_frames = DEFAULT_MAX_VIDEO_FRAMES;
  video_reset (self);
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
