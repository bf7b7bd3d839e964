/* qomnitalker — thinker states → codec frames.
 *
 * A PROMPT buffer starts an utterance (qomni_talker_start), each TOKEN buffer adds the
 * rows of answer tokens, END ends the text. After every buffer the talker steps as far as
 * the text it has allows (frame k needs answer row k, or the end of the text) and pushes
 * each frame at once, so speech starts one talker step after the first answer token and
 * the frames are exactly those of the whole-answer run. Work happens in the chain
 * function, in the upstream streaming thread: put a queue before this element so the
 * thinker keeps generating while the talker steps.
 *
 * Frame k of an utterance is stamped base + k · 80 ms, where base is the PROMPT buffer's
 * PTS (the moment the answer starts on the input timeline), moved forward when needed so
 * utterances never overlap.
 */
#include "gstqomnitalker.h"
#include "qomni-codec.h"
#include "qomni-gst.h"
#include "qomni-states.h"

#include "error.h"
#include "talker.h"

GST_DEBUG_CATEGORY_STATIC (gst_qomni_talker_debug);
#define GST_CAT_DEFAULT gst_qomni_talker_debug

/* Talker positions: the prompt plus one per frame. 4096 frames (the reference's
 * talker_max_new_tokens, 5.5 min of speech) and a prompt of up to 4096 rows. */
#define MAX_CTX 8192
#define DEFAULT_MAX_FRAMES 4096
#define DEFAULT_SPEAKER "ethan"
#define DEFAULT_TEMPERATURE 0.9f
#define DEFAULT_TOP_K 50
#define DEFAULT_TOP_P 1.0f
#define DEFAULT_REPETITION_PENALTY 1.05f
/* What one talker step (decoder + 15 code-predictor passes) costs, reported in the latency
 * query on top of upstream's: the first frame leaves this long after the first answer
 * token arrives. The tiny fixture needs ~2 ms; the released model on 16 CPU cores ~150 ms. */
#define DEFAULT_LATENCY_MS 200
#define MAX_GROUPS 64

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_SPEAKER,
  PROP_TEMPERATURE,
  PROP_TOP_K,
  PROP_TOP_P,
  PROP_REPETITION_PENALTY,
  PROP_GREEDY,
  PROP_SEED,
  PROP_MAX_FRAMES,
  PROP_LATENCY,
};

struct _GstQomniTalker {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* properties, under settings_lock; sampling and speaker apply from the next utterance */
  GMutex settings_lock;
  char *model_path;
  char *device;
  char *speaker;
  float temperature, top_p, repetition_penalty;
  int top_k;
  gboolean greedy;
  guint64 seed;
  int max_frames;
  guint latency_ms;

  /* READY and up */
  QomniModel *model;
  QomniGstDevice *device_shared;  /* NULL on the CPU */
  QomniTalker *talker;
  int groups, width;

  /* streaming state, under the sink pad's stream lock */
  gboolean active;          /* an utterance was started and has not sent utterance-end */
  gboolean done;            /* the talker returned DONE for the utterance */
  GstClockTime base;        /* PTS of the utterance's frame 0 */
  GstClockTime next_pts;    /* end of the last frame pushed, or NONE */
  int n_frames;             /* frames of the utterance pushed */
  guint utterance;          /* utterances started since the stream began */
  gboolean have_caps;
};

#define gst_qomni_talker_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstQomniTalker, gst_qomni_talker, GST_TYPE_ELEMENT,
                         GST_DEBUG_CATEGORY_INIT (gst_qomni_talker_debug, "qomnitalker", 0,
                                                  "Qwen3-Omni talker"));
GST_ELEMENT_REGISTER_DEFINE (qomnitalker, "qomnitalker", GST_RANK_NONE, GST_TYPE_QOMNI_TALKER);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
  "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (QOMNI_STATES_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
  "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (QOMNI_CODEC_CAPS));

static void
reset_stream (GstQomniTalker *self)
{
  self->active = FALSE;
  self->done = FALSE;
  self->base = GST_CLOCK_TIME_NONE;
  self->next_pts = GST_CLOCK_TIME_NONE;
  self->n_frames = 0;
  self->utterance = 0;
}

/* The talker options from the settings; FALSE (error set) for an unknown speaker. */
static gboolean
snapshot_options (GstQomniTalker *self, QomniTalkerOptions *opt, GError **error)
{
  const QomniConfig *c = self->model->config;
  qomni_talker_options_init (opt, c);
  g_mutex_lock (&self->settings_lock);
  g_autofree char *speaker = g_strdup (self->speaker);
  opt->talker.temperature = self->temperature;
  opt->talker.top_k = self->top_k;
  opt->talker.top_p = self->top_p;
  opt->talker.repetition_penalty = self->repetition_penalty;
  opt->talker.seed = self->seed;
  opt->code_predictor.seed = self->seed + 1;
  if (self->greedy)
    qomni_talker_options_greedy (opt);
  opt->max_frames = self->max_frames;
  g_mutex_unlock (&self->settings_lock);
  if (speaker && *speaker) {
    opt->speaker_codec_id = qomni_config_speaker_id (c, speaker);
    if (opt->speaker_codec_id < 0) {
      GString *known = g_string_new (NULL);
      for (int i = 0; i < c->talker.n_speakers; i++)
        g_string_append_printf (known, "%s%s", i ? ", " : "", c->talker.speakers[i].name);
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "unknown speaker '%s' (this model has: %s)", speaker, known->str);
      g_string_free (known, TRUE);
      return FALSE;
    }
  }
  return TRUE;
}

static GstFlowReturn
push_frame (GstQomniTalker *self, const int *codes)
{
  GstBuffer *out = qomni_gst_codec_new (codes, 1, self->groups);
  const GstClockTime pts = self->base + (GstClockTime) self->n_frames * QOMNI_CODEC_FRAME_DURATION;
  GST_BUFFER_PTS (out) = pts;
  GST_BUFFER_DURATION (out) = QOMNI_CODEC_FRAME_DURATION;
  GST_BUFFER_OFFSET (out) = (guint64) self->n_frames;
  if (self->n_frames == 0)
    GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_DISCONT);
  self->n_frames++;
  self->next_pts = pts + QOMNI_CODEC_FRAME_DURATION;
  GST_LOG_OBJECT (self, "utterance %u frame %d at %" GST_TIME_FORMAT ": c0 %d",
                  self->utterance, self->n_frames - 1, GST_TIME_ARGS (pts), codes[0]);
  return gst_pad_push (self->srcpad, out);
}

/* The talker is done with the utterance: tell downstream so a vocoder drains. */
static void
finish_utterance (GstQomniTalker *self)
{
  if (!self->active)
    return;
  GST_DEBUG_OBJECT (self, "utterance %u: %d frames", self->utterance, self->n_frames);
  gst_pad_push_event (self->srcpad, qomni_gst_codec_utterance_end_new (self->utterance));
  self->active = FALSE;
  self->utterance++;
}

/* Steps while the text allows; pushes every frame. */
static GstFlowReturn
run (GstQomniTalker *self)
{
  int codes[MAX_GROUPS];
  while (self->active && !self->done) {
    GError *error = NULL;
    switch (qomni_talker_step (self->talker, codes, &error)) {
    case QOMNI_TALKER_FRAME: {
      GstFlowReturn ret = push_frame (self, codes);
      if (ret != GST_FLOW_OK) {
        GST_DEBUG_OBJECT (self, "push: %s", gst_flow_get_name (ret));
        return ret;
      }
      break;
    }
    case QOMNI_TALKER_NEED_TEXT:
      return GST_FLOW_OK;
    case QOMNI_TALKER_DONE:
      self->done = TRUE;
      finish_utterance (self);
      return GST_FLOW_OK;
    case QOMNI_TALKER_ERROR:
      QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "The talker failed at frame %d",
                                           self->n_frames);
      g_error_free (error);
      return GST_FLOW_ERROR;
    }
  }
  return GST_FLOW_OK;
}

/* Ends the text of the open utterance and makes its remaining frames. */
static GstFlowReturn
drain (GstQomniTalker *self)
{
  if (!self->active)
    return GST_FLOW_OK;
  if (!self->done)
    qomni_talker_end_text (self->talker);
  GstFlowReturn ret = run (self);
  finish_utterance (self);
  return ret;
}

static GstFlowReturn
start_utterance (GstQomniTalker *self, GstBuffer *buf, const QomniStatesHeader *h,
                 const guint8 *data)
{
  GError *error = NULL;
  QomniTalkerOptions opt;
  if (!snapshot_options (self, &opt, &error) ||
      !qomni_talker_start (self->talker, qomni_gst_states_ids (data, h), (int) h->n_rows,
                           qomni_gst_states_embed (data, h), qomni_gst_states_hidden (data, h),
                           qomni_gst_states_grids (data, h), (int) h->n_grids, &opt, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not start the talker on a "
                                         "prompt of %u positions", h->n_rows);
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
  GstClockTime base = GST_BUFFER_PTS (buf);
  if (!GST_CLOCK_TIME_IS_VALID (base) && h->pts != G_MAXUINT64)
    base = h->pts + (h->duration != G_MAXUINT64 ? h->duration : 0);
  if (!GST_CLOCK_TIME_IS_VALID (base))
    base = GST_CLOCK_TIME_IS_VALID (self->next_pts) ? self->next_pts : 0;
  if (GST_CLOCK_TIME_IS_VALID (self->next_pts) && base < self->next_pts)
    base = self->next_pts;
  self->base = base;
  self->active = TRUE;
  self->done = FALSE;
  self->n_frames = 0;
  GST_DEBUG_OBJECT (self, "utterance %u: prompt of %u positions, speaker %d, frames from %"
                    GST_TIME_FORMAT, self->utterance, h->n_rows, opt.speaker_codec_id,
                    GST_TIME_ARGS (base));
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_qomni_talker_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (parent);
  if (!self->have_caps) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("No thinker-states format was negotiated"),
                       ("a buffer arrived before the caps event"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ)) {
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read an input buffer"), (NULL));
    return GST_FLOW_ERROR;
  }
  GstFlowReturn ret = GST_FLOW_OK;
  GError *error = NULL;
  QomniStatesHeader h;
  if (!qomni_gst_states_parse (map.data, map.size, &h, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Malformed thinker states");
    g_error_free (error);
    ret = GST_FLOW_ERROR;
  } else if (h.kind != QOMNI_STATES_END && (int) h.width != self->width) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("Thinker rows are %u wide but this model's talker takes %d", h.width,
                        self->width), (NULL));
    ret = GST_FLOW_ERROR;
  } else {
    switch (h.kind) {
    case QOMNI_STATES_PROMPT:
      /* a new answer before the previous one ended: the previous one is complete */
      ret = drain (self);
      if (ret == GST_FLOW_OK)
        ret = start_utterance (self, buf, &h, map.data);
      break;
    case QOMNI_STATES_TOKEN:
      if (!self->active) {
        GST_DEBUG_OBJECT (self, "dropping %u answer rows: no utterance is open", h.n_rows);
        break;
      }
      if (!self->done) {
        const float *rows = qomni_gst_states_embed (map.data, &h);
        for (guint i = 0; i < h.n_rows; i++)
          qomni_talker_push_text (self->talker, rows + (gsize) i * h.width);
      }
      break;
    case QOMNI_STATES_END:
      ret = drain (self);
      break;
    }
    if (ret == GST_FLOW_OK)
      ret = run (self);
  }
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  return ret;
}

static gboolean
set_format (GstQomniTalker *self, GstCaps *caps)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  int width = 0;
  if (!gst_structure_get_int (s, "width", &width) || width != self->width) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("The thinker's rows are %d wide, this model's talker takes %d; are "
                        "the thinker and the talker the same model?", width, self->width),
                       ("caps %" GST_PTR_FORMAT, caps));
    return FALSE;
  }
  GstCaps *out = qomni_gst_codec_caps (self->groups);
  gboolean ok = gst_pad_set_caps (self->srcpad, out);
  gst_caps_unref (out);
  self->have_caps = ok;
  return ok;
}

static gboolean
gst_qomni_talker_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (parent);
  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps (event, &caps);
    gboolean ok = set_format (self, caps);
    gst_event_unref (event);
    return ok;
  }
  case GST_EVENT_EOS:
    /* the thinker stopped without END: what it said is the whole answer */
    drain (self);
    break;
  case GST_EVENT_FLUSH_STOP:
    /* serialized: the stream lock is held, the chain function is not running */
    reset_stream (self);
    break;
  default:
    break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_qomni_talker_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (parent);
  if (qomni_gst_model_handle_context_query (GST_ELEMENT (self), query, self->model) ||
      qomni_gst_device_handle_context_query (GST_ELEMENT (self), query, self->device_shared))
    return TRUE;
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_qomni_talker_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (parent);
  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_LATENCY: {
    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency (query, &live, &min, &max);
    g_mutex_lock (&self->settings_lock);
    const GstClockTime own = self->latency_ms * GST_MSECOND;
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
open_model (GstQomniTalker *self)
{
  g_mutex_lock (&self->settings_lock);
  g_autofree char *path = g_strdup (self->model_path);
  g_autofree char *device = g_strdup (self->device);
  g_mutex_unlock (&self->settings_lock);
  GError *error = NULL;
  if (!qomni_gst_device_ensure (GST_ELEMENT (self), device, &self->device_shared, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Cannot use the requested device");
    g_error_free (error);
    return FALSE;
  }
  self->model = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
  if (self->model)
    self->talker = qomni_talker_new_on (self->model->weights, self->model->config, MAX_CTX,
                                        qomni_gst_device_vk (self->device_shared), &error);
  if (!self->talker) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not load the talker of model %s",
                                         path ? path : "(shared)");
    g_error_free (error);
    return FALSE;
  }
  self->groups = qomni_talker_groups (self->talker);
  self->width = qomni_talker_thinker_hidden_size (self->talker);
  g_assert (self->groups <= MAX_GROUPS);
  /* an unknown speaker is refused now rather than at the first answer */
  QomniTalkerOptions opt;
  if (!snapshot_options (self, &opt, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Bad speaker property");
    g_error_free (error);
    return FALSE;
  }
  return TRUE;
}

static void
close_model (GstQomniTalker *self)
{
  g_clear_pointer (&self->talker, qomni_talker_free);
  g_clear_pointer (&self->model, qomni_gst_model_release);
  g_clear_pointer (&self->device_shared, qomni_gst_device_unref);
}

static GstStateChangeReturn
gst_qomni_talker_change_state (GstElement *element, GstStateChange transition)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (element);
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY:
    if (!open_model (self)) {
      close_model (self);
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  case GST_STATE_CHANGE_READY_TO_PAUSED:
    reset_stream (self);
    self->have_caps = FALSE;
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
gst_qomni_talker_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (object);
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
  case PROP_SPEAKER:
    g_free (self->speaker);
    self->speaker = g_value_dup_string (value);
    break;
  case PROP_TEMPERATURE:
    self->temperature = g_value_get_float (value);
    break;
  case PROP_TOP_K:
    self->top_k = g_value_get_int (value);
    break;
  case PROP_TOP_P:
    self->top_p = g_value_get_float (value);
    break;
  case PROP_REPETITION_PENALTY:
    self->repetition_penalty = g_value_get_float (value);
    break;
  case PROP_GREEDY:
    self->greedy = g_value_get_boolean (value);
    break;
  case PROP_SEED:
    self->seed = g_value_get_uint64 (value);
    break;
  case PROP_MAX_FRAMES:
    self->max_frames = g_value_get_int (value);
    break;
  case PROP_LATENCY:
    self->latency_ms = g_value_get_uint (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
  if (prop_id == PROP_LATENCY)
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_latency (GST_OBJECT (self)));
}

static void
gst_qomni_talker_get_property (GObject *object, guint prop_id, GValue *value,
                               GParamSpec *pspec)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (object);
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    g_value_set_string (value, self->model_path);
    break;
  case PROP_DEVICE:
    g_value_set_string (value, self->device);
    break;
  case PROP_SPEAKER:
    g_value_set_string (value, self->speaker);
    break;
  case PROP_TEMPERATURE:
    g_value_set_float (value, self->temperature);
    break;
  case PROP_TOP_K:
    g_value_set_int (value, self->top_k);
    break;
  case PROP_TOP_P:
    g_value_set_float (value, self->top_p);
    break;
  case PROP_REPETITION_PENALTY:
    g_value_set_float (value, self->repetition_penalty);
    break;
  case PROP_GREEDY:
    g_value_set_boolean (value, self->greedy);
    break;
  case PROP_SEED:
    g_value_set_uint64 (value, self->seed);
    break;
  case PROP_MAX_FRAMES:
    g_value_set_int (value, self->max_frames);
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
gst_qomni_talker_finalize (GObject *object)
{
  GstQomniTalker *self = GST_QOMNI_TALKER (object);
  close_model (self);
  g_free (self->model_path);
  g_free (self->device);
  g_free (self->speaker);
  g_mutex_clear (&self->settings_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_qomni_talker_class_init (GstQomniTalkerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  gobject_class->set_property = gst_qomni_talker_set_property;
  gobject_class->get_property = gst_qomni_talker_get_property;
  gobject_class->finalize = gst_qomni_talker_finalize;
  element_class->change_state = gst_qomni_talker_change_state;

  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  g_object_class_install_property (gobject_class, PROP_MODEL,
    g_param_spec_string ("model", "Model",
                         "Checkpoint folder (config.json + safetensors); unset: use the model "
                         "of a neighbouring qomni element",
                         NULL, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
    g_param_spec_string ("device", "Device", "Where to compute: auto or cpu (the CPU), vulkan or vulkan:N (the talker and the code predictor on that GPU, shared with the other qomni elements through the qomni.vulkan.device context)", "auto",
                         rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SPEAKER,
    g_param_spec_string ("speaker", "Speaker",
                         "Voice, by the model's speaker names (the release has ethan, "
                         "chelsie, aiden); applies from the next answer",
                         DEFAULT_SPEAKER, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
    g_param_spec_float ("temperature", "Temperature",
                        "Talker sampling temperature (codebook 0); 0 or greedy=true: argmax",
                        0.0f, 10.0f, DEFAULT_TEMPERATURE, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
    g_param_spec_int ("top-k", "Top k", "Talker top-k (0: off)", 0, G_MAXINT, DEFAULT_TOP_K,
                      rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TOP_P,
    g_param_spec_float ("top-p", "Top p", "Talker nucleus sampling (1: off)", 0.0f, 1.0f,
                        DEFAULT_TOP_P, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_REPETITION_PENALTY,
    g_param_spec_float ("repetition-penalty", "Repetition penalty",
                        "Penalty on codebook-0 ids already spoken (1: off); kept when greedy",
                        0.01f, 10.0f, DEFAULT_REPETITION_PENALTY,
                        rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_GREEDY,
    g_param_spec_boolean ("greedy", "Greedy",
                          "Argmax for the talker and the code predictor (the reference's "
                          "do_sample=False)", FALSE, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SEED,
    g_param_spec_uint64 ("seed", "Seed",
                         "Sampling seed of the talker (the code predictor uses seed + 1)", 0,
                         G_MAXUINT64, 0, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_FRAMES,
    g_param_spec_int ("max-frames", "Maximum frames",
                      "Talker steps per answer (80 ms each); 0: until the codec's end (or "
                      "the context is full)", 0, MAX_CTX, DEFAULT_MAX_FRAMES,
                      rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
    g_param_spec_uint ("latency", "Latency",
                       "Processing time in ms one talker step may take, added to upstream's "
                       "latency", 0, 60000, DEFAULT_LATENCY_MS,
                       rw | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Qwen3-Omni talker",
    "Codec/Encoder/Audio",
    "Turns the thinker's answer states into 16-codebook speech codec frames, one per 80 ms, "
    "while the answer is generated", "qomni authors");
}

static void
gst_qomni_talker_init (GstQomniTalker *self)
{
  g_mutex_init (&self->settings_lock);
  self->device = g_strdup ("auto");
  self->speaker = g_strdup (DEFAULT_SPEAKER);
  self->temperature = DEFAULT_TEMPERATURE;
  self->top_k = DEFAULT_TOP_K;
  self->top_p = DEFAULT_TOP_P;
  self->repetition_penalty = DEFAULT_REPETITION_PENALTY;
  self->max_frames = DEFAULT_MAX_FRAMES;
  self->latency_ms = DEFAULT_LATENCY_MS;
  reset_stream (self);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_qomni_talker_chain);
  gst_pad_set_event_function (self->sinkpad, gst_qomni_talker_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_qomni_talker_sink_query);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, gst_qomni_talker_src_query);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
