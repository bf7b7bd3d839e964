/* qomnithinker — the thinker as an element.
 *
 * Each input buffer is one user turn: an embeddings buffer (one audio segment from
 * qomniencode, sent with the task's instruction; or an image or a video, maybe with its
 * soundtrack, sent with `prompt` or a request to describe it) or a text buffer (the user's
 * words). The
 * chain function builds the chat prompt, prefills and streams the answer downstream a token
 * at a time; a FLUSH_START interrupts it between tokens. After each answer it pushes the
 * `rstranscribe/final-transcript` event, as gst-plugins-rs transcribers do.
 *
 * Timestamps: the k-th text buffer of an answer to input [pts, pts + duration) gets
 * PTS = pts + k·duration/max-tokens and that step as its duration, so an answer stays inside
 * the segment it answers, in order; a GAP event then covers the rest of the segment.
 */
#include "gstqomnithinker.h"
#include "qomni-embeddings.h"
#include "qomni-gst.h"
#include "qomni-talker-pad.h"

#include "error.h"
#include "generate.h"
#include "thinker.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (gst_qomni_thinker_debug);
#define GST_CAT_DEFAULT gst_qomni_thinker_debug

typedef enum {
  TASK_TRANSCRIBE,
  TASK_TRANSLATE,
  TASK_ANSWER,
  TASK_CUSTOM,
} GstQomniThinkerTask;

#define DEFAULT_SYSTEM_PROMPT "You are a helpful assistant."
#define DEFAULT_TASK TASK_TRANSCRIBE
#define DEFAULT_LANGUAGE "English"
#define DEFAULT_MAX_TOKENS 256
#define DEFAULT_TEMPERATURE 0.7f
#define DEFAULT_TOP_K 20
#define DEFAULT_TOP_P 0.8f
#define DEFAULT_REPETITION_PENALTY 1.0f
#define DEFAULT_LATENCY_MS 2000
#define DEFAULT_CONTEXT_LENGTH 4096

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_SYSTEM_PROMPT,
  PROP_PROMPT,
  PROP_TASK,
  PROP_LANGUAGE,
  PROP_MAX_TOKENS,
  PROP_TEMPERATURE,
  PROP_TOP_K,
  PROP_TOP_P,
  PROP_REPETITION_PENALTY,
  PROP_SEED,
  PROP_KEEP_CONTEXT,
  PROP_LATENCY,
  PROP_CONTEXT_LENGTH,
};

/* What one answer needs from the settings, copied under the lock. */
typedef struct {
  char *system_prompt;
  char *instruction;     /* sent after the audio; may be "" */
  gboolean prompt_set;   /* `prompt` is set: it goes with pictures too */
  QomniGenerateParams gen;
  gboolean keep_context;
} Settings;

struct _GstQomniThinker {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* properties, under settings_lock */
  GMutex settings_lock;
  char *model_path, *device, *system_prompt, *prompt, *language;
  GstQomniThinkerTask task;
  guint max_tokens;
  float temperature, top_p, repetition_penalty;
  guint top_k;
  guint64 seed;
  gboolean keep_context;
  guint latency_ms, context_length;

  /* READY and up */
  QomniModel *model;
  QomniThinker *thinker;
  QomniGstDevice *device_shared;  /* NULL on the CPU */

  /* streaming state, under the sink pad's stream lock */
  gboolean text_input;   /* the sink caps are text/x-raw */
  gint cancel;           /* atomic: set by FLUSH_START, read between tokens */
  gboolean has_history;  /* the cache holds earlier turns (keep-context) */
  int unfed_id;          /* the last answer's final token, not yet in the cache; -1: none */
};

#define gst_qomni_thinker_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstQomniThinker, gst_qomni_thinker, GST_TYPE_ELEMENT,
                         GST_DEBUG_CATEGORY_INIT (gst_qomni_thinker_debug, "qomnithinker", 0,
                                                  "Qwen3-Omni thinker"));
GST_ELEMENT_REGISTER_DEFINE (qomnithinker, "qomnithinker", GST_RANK_NONE,
                             GST_TYPE_QOMNI_THINKER);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
  "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
  GST_STATIC_CAPS (QOMNI_EMBEDDINGS_CAPS "; text/x-raw, format=(string)utf8"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
  "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS ("text/x-raw, format=(string)utf8"));

GType
gst_qomni_thinker_task_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { TASK_TRANSCRIBE, "Transcribe the speech", "transcribe" },
    { TASK_TRANSLATE, "Translate the speech into `language`", "translate" },
    { TASK_ANSWER, "Answer what is said (the audio alone is the user's turn)", "answer" },
    { TASK_CUSTOM, "Send `prompt` with the audio", "custom" },
    { 0, NULL, NULL },
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstQomniThinkerTask", values));
  return type;
}

/* (transfer full) The instruction sent after the audio: `prompt` when set, else the
 * task's own. Call with settings_lock held. */
static char *
instruction_locked (GstQomniThinker *self)
{
  if (self->prompt && *self->prompt)
    return g_strdup (self->prompt);
  switch (self->task) {
  case TASK_TRANSCRIBE:
    return g_strdup ("Transcribe the audio into text.");
  case TASK_TRANSLATE:
    return g_strdup_printf ("Translate the speech into %s.",
                            self->language && *self->language ? self->language
                                                              : DEFAULT_LANGUAGE);
  case TASK_ANSWER:
  case TASK_CUSTOM:
    break;
  }
  return g_strdup ("");
}

static void
settings_get (GstQomniThinker *self, Settings *s)
{
  g_mutex_lock (&self->settings_lock);
  s->system_prompt = g_strdup (self->system_prompt ? self->system_prompt : "");
  s->instruction = instruction_locked (self);
  s->prompt_set = self->prompt && *self->prompt;
  s->gen = (QomniGenerateParams) {
    .sampling = { self->temperature, (int) self->top_k, self->top_p, self->repetition_penalty,
                  self->seed },
    .max_tokens = (int) self->max_tokens,
    .stop_ids = { -1, -1, -1, -1 },
  };
  s->keep_context = self->keep_context;
  g_mutex_unlock (&self->settings_lock);
}

static void
settings_clear (Settings *s)
{
  g_free (s->system_prompt);
  g_free (s->instruction);
}

static void
reset_conversation (GstQomniThinker *self)
{
  if (self->thinker)
    qomni_thinker_reset (self->thinker);
  self->has_history = FALSE;
  self->unfed_id = -1;
}

/* What one user turn holds besides its text. */
typedef struct {
  const float *audio;            /* [n_audio, H]: audio, or the picture's soundtrack */
  int n_audio;
  int kind;                      /* QOMNI_EMBEDDINGS_KIND_IMAGE / _VIDEO, or -1: no picture */
  QomniVisualRows visual;
  QomniMediaGrid grid;
} Turn;

/* (transfer full) The prompt ids of one user turn. Continuing a conversation it closes the
 * previous answer first (its last token and <|im_end|> were never fed). */
static int *
build_prompt (GstQomniThinker *self, const Settings *s, gboolean continuing, const Turn *turn,
              const char *user_text, int *n_ids, GError **error)
{
  const int n_audio = turn->n_audio;
  QomniChat *chat = qomni_chat_new ();
  if (continuing) {
    qomni_chat_text (chat, "<|im_end|>\n");
  } else if (*s->system_prompt) {
    /* an empty system-prompt leaves the system turn out, as a conversation without one */
    qomni_chat_begin (chat, "system");
    qomni_chat_text (chat, s->system_prompt);
    qomni_chat_end (chat);
  }
  qomni_chat_begin (chat, "user");
  if (turn->kind == QOMNI_EMBEDDINGS_KIND_VIDEO && n_audio > 0) {
    /* a video with its soundtrack: one run, frames and sound merged by time */
    qomni_chat_video_with_audio (chat, turn->grid.grid_t,
                                 turn->visual.n_rows / MAX (turn->grid.grid_t, 1),
                                 turn->grid.second_per_grid,
                                 self->model->config->thinker.position_id_per_seconds, n_audio);
  } else {
    if (turn->kind == QOMNI_EMBEDDINGS_KIND_IMAGE)
      qomni_chat_image (chat, turn->visual.n_rows);
    else if (turn->kind == QOMNI_EMBEDDINGS_KIND_VIDEO)
      qomni_chat_video (chat, turn->visual.n_rows);
    if (n_audio > 0)
      qomni_chat_audio (chat, n_audio);
  }
  qomni_chat_text (chat, user_text);
  qomni_chat_end (chat);
  qomni_chat_assistant_prompt (chat);
  int n = 0;
  int *ids = qomni_chat_tokenize (chat, self->model->tokenizer, &n, error);
  qomni_chat_free (chat);
  if (ids && continuing && self->unfed_id >= 0) {
    int *with = g_new (int, n + 1);
    with[0] = self->unfed_id;
    memcpy (with + 1, ids, sizeof (int) * n);
    g_free (ids);
    ids = with;
    n++;
  }
  *n_ids = n;
  return ids;
}

/* One answer being streamed. */
typedef struct {
  GstQomniThinker *self;
  GstClockTime pts, step;    /* step: NONE when the input had no duration */
  int k;                     /* text buffers pushed */
  GstFlowReturn ret;
  GstClockTime end;          /* where the last pushed buffer ends */
} Stream;

static gboolean
push_piece (int id, const char *text, gpointer user)
{
  Stream *st = user;
  GstQomniThinker *self = st->self;
  if (g_atomic_int_get (&self->cancel)) {
    st->ret = GST_FLOW_FLUSHING;
    return FALSE;
  }
  if (!*text)
    return TRUE;
  const gsize len = strlen (text);
  GstBuffer *buf = gst_buffer_new_memdup (text, len);
  if (GST_CLOCK_TIME_IS_VALID (st->pts)) {
    if (GST_CLOCK_TIME_IS_VALID (st->step)) {
      GST_BUFFER_PTS (buf) = st->pts + st->k * st->step;
      GST_BUFFER_DURATION (buf) = st->step;
      st->end = GST_BUFFER_PTS (buf) + st->step;
    } else {
      GST_BUFFER_PTS (buf) = st->pts;
    }
  }
  st->k++;
  st->ret = gst_pad_push (self->srcpad, buf);
  return st->ret == GST_FLOW_OK;
}

/* Answers one user turn: audio and/or a picture (or neither) and text. */
static GstFlowReturn
answer (GstQomniThinker *self, const Turn *turn, const char *user_text, GstClockTime pts,
        GstClockTime duration)
{
  Settings s;
  settings_get (self, &s);
  GError *error = NULL;
  const int n_audio = turn->n_audio;
  const char *text = user_text;
  if (turn->kind >= 0 && !s.prompt_set)
    text = turn->kind == QOMNI_EMBEDDINGS_KIND_IMAGE ? "Describe this image."
           : n_audio > 0                             ? "Describe this video and its sound."
                                                     : "Describe this video.";
  else if (turn->kind >= 0 || n_audio > 0)
    text = s.instruction;
  const int max_ctx = qomni_thinker_max_ctx (self->thinker);
  gboolean continuing = s.keep_context && self->has_history;
  if (!continuing)
    reset_conversation (self);
  int n = 0;
  int *ids = build_prompt (self, &s, continuing, turn, text, &n, &error);
  if (ids && continuing &&
      qomni_thinker_n_past (self->thinker) + n + s.gen.max_tokens > max_ctx) {
    GST_ELEMENT_WARNING (self, RESOURCE, NO_SPACE_LEFT,
                         ("The conversation filled the context (%d positions); starting a new "
                          "one", max_ctx), (NULL));
    g_free (ids);
    reset_conversation (self);
    continuing = FALSE;
    ids = build_prompt (self, &s, FALSE, turn, text, &n, &error);
  }
  if (!ids) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not build the prompt");
    g_error_free (error);
    settings_clear (&s);
    return GST_FLOW_ERROR;
  }
  if (n + s.gen.max_tokens > max_ctx) {
    GST_ELEMENT_WARNING (self, STREAM, TOO_LAZY,
                         ("A turn of %d tokens plus max-tokens %d does not fit the context of "
                          "%d positions; skipping it (raise context-length or lower "
                          "max-segment-duration)", n, s.gen.max_tokens, max_ctx), (NULL));
    g_free (ids);
    settings_clear (&s);
    return GST_FLOW_OK;
  }

  Stream st = {
    .self = self,
    .pts = pts,
    .step = GST_CLOCK_TIME_IS_VALID (pts) && GST_CLOCK_TIME_IS_VALID (duration)
              ? duration / MAX (s.gen.max_tokens, 1)
              : GST_CLOCK_TIME_NONE,
    .ret = GST_FLOW_OK,
    .end = pts,
  };
  GArray *out = g_array_new (FALSE, FALSE, sizeof (int));
  QomniGenerateStats stats = { 0 };
  const gboolean picture = turn->kind >= 0;
  /* the talker builds its 3-D positions from the same grid */
  qomni_talker_pads_begin (GST_ELEMENT (self), self->thinker, self->model->config, ids, n,
                           picture ? &turn->grid : NULL, picture ? 1 : 0, pts, duration);
  const QomniThinkerMedia media = {
    .audio = turn->audio, .n_audio = n_audio,
    .images = picture && turn->kind == QOMNI_EMBEDDINGS_KIND_IMAGE ? &turn->visual : NULL,
    .videos = picture && turn->kind == QOMNI_EMBEDDINGS_KIND_VIDEO ? &turn->visual : NULL,
    .grids = picture ? &turn->grid : NULL, .n_grids = picture ? 1 : 0,
  };
  gboolean ok = qomni_generate_media (self->thinker, self->model->tokenizer, ids, n, &media,
                                      &s.gen, push_piece, &st, out, &stats, &error);
  qomni_talker_pads_end (GST_ELEMENT (self), self->thinker);
  g_free (ids);
  GST_INFO_OBJECT (self, "answered %d prompt tokens (%d audio) with %d tokens; prefill %.1f "
                   "ms, decode %.1f ms", n, n_audio, stats.generated,
                   stats.prefill_seconds * 1e3, stats.decode_seconds * 1e3);
  if (!ok) {
    g_array_free (out, TRUE);
    settings_clear (&s);
    reset_conversation (self);
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Generation failed");
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
  if (st.ret == GST_FLOW_OK) {
    self->has_history = TRUE;
    self->unfed_id = stats.stopped || out->len == 0 ? -1
                                                    : g_array_index (out, int, out->len - 1);
    if (GST_CLOCK_TIME_IS_VALID (st.step) && st.end < pts + duration)
      gst_pad_push_event (self->srcpad, gst_event_new_gap (st.end, pts + duration - st.end));
    gst_pad_push_event (self->srcpad,
                        gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
                                              gst_structure_new_empty (
                                                "rstranscribe/final-transcript")));
  } else {
    /* interrupted: the cache holds half an answer */
    reset_conversation (self);
  }
  g_array_free (out, TRUE);
  settings_clear (&s);
  return st.ret;
}

static GstFlowReturn
chain_embeddings (GstQomniThinker *self, GstBuffer *buf)
{
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;
  QomniEmbeddingsHeader h;
  GError *error = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  const int H = qomni_thinker_hidden_size (self->thinker);
  if (!qomni_gst_embeddings_parse (map.data, map.size, &h, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Received a malformed embeddings buffer");
    g_error_free (error);
    ret = GST_FLOW_ERROR;
  } else if ((int) h.width != H) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                       ("Audio embeddings are %u wide but the thinker's hidden size is %d: "
                        "the encoder and the thinker use different models", h.width, H),
                       (NULL));
    ret = GST_FLOW_ERROR;
  } else if (h.n_rows > 0) {
    GstClockTime pts = GST_BUFFER_PTS (buf), dur = GST_BUFFER_DURATION (buf);
    if (!GST_CLOCK_TIME_IS_VALID (pts))
      pts = h.pts;
    if (!GST_CLOCK_TIME_IS_VALID (dur))
      dur = h.duration;
    Turn turn = { .kind = -1 };
    guint8 *data = map.data;
    if (h.kind == QOMNI_EMBEDDINGS_KIND_AUDIO) {
      turn.audio = qomni_gst_embeddings_rows (data);
      turn.n_audio = (int) h.n_rows;
      ret = answer (self, &turn, NULL, pts, dur);
    } else {
      const int merge = MAX (self->model->config->thinker.vision.spatial_merge_size, 1);
      const guint64 patches = (guint64) h.grid_t * h.grid_h * h.grid_w;
      if (h.grid_h % merge || h.grid_w % merge || patches != (guint64) h.n_rows * merge * merge) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT,
                           ("A picture of grid %u×%u×%u cannot have %u rows (merge %d)",
                            h.grid_t, h.grid_h, h.grid_w, h.n_rows, merge), (NULL));
        ret = GST_FLOW_ERROR;
      } else {
        /* audio rows only as a picture's soundtrack */
        turn.audio = h.n_audio_rows ? qomni_gst_embeddings_audio_rows (data) : NULL;
        turn.n_audio = (int) h.n_audio_rows;
        turn.kind = h.kind;
        turn.visual = (QomniVisualRows) {
          qomni_gst_embeddings_rows (data),
          h.n_deepstack ? qomni_gst_embeddings_deepstack (data) : NULL, (int) h.n_rows,
          h.n_deepstack };
        turn.grid = (QomniMediaGrid) { (int) h.grid_t, (int) h.grid_h, (int) h.grid_w,
                                       h.kind == QOMNI_EMBEDDINGS_KIND_VIDEO
                                         ? h.second_per_grid : 0.0f };
        ret = answer (self, &turn, NULL, pts, dur);
      }
    }
  }
  gst_buffer_unmap (buf, &map);
  return ret;
}

static GstFlowReturn
chain_text (GstQomniThinker *self, GstBuffer *buf)
{
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;
  GstFlowReturn ret = GST_FLOW_OK;
  const char *end = NULL;
  if (!g_utf8_validate ((const char *) map.data, (gssize) map.size, &end)) {
    GST_ELEMENT_WARNING (self, STREAM, DECODE,
                         ("Dropped a text turn that is not valid UTF-8"),
                         ("invalid byte at offset %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT,
                          (gsize) (end - (const char *) map.data), map.size));
  } else {
    g_autofree char *text = g_strndup ((const char *) map.data, map.size);
    g_strstrip (text);
    const Turn none = { .kind = -1 };
    if (*text)
      ret = answer (self, &none, text, GST_BUFFER_PTS (buf), GST_BUFFER_DURATION (buf));
  }
  gst_buffer_unmap (buf, &map);
  return ret;
}

static GstFlowReturn
gst_qomni_thinker_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (parent);
  GstFlowReturn ret = self->text_input ? chain_text (self, buf) : chain_embeddings (self, buf);
  gst_buffer_unref (buf);
  return ret;
}

static gboolean
set_input_caps (GstQomniThinker *self, GstCaps *caps)
{
  GstStructure *s = gst_caps_get_structure (caps, 0);
  if (gst_structure_has_name (s, QOMNI_EMBEDDINGS_MEDIA_TYPE)) {
    int width = 0;
    const int H = qomni_thinker_hidden_size (self->thinker);
    if (!gst_structure_get_int (s, "width", &width) || width != H) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
                         ("Audio embeddings are %d wide but the thinker's hidden size is %d: "
                          "the encoder and the thinker use different models", width, H),
                         ("caps %" GST_PTR_FORMAT, caps));
      return FALSE;
    }
    self->text_input = FALSE;
  } else {
    self->text_input = TRUE;
  }
  GstCaps *out = gst_static_pad_template_get_caps (&src_template);
  gboolean ok = gst_pad_set_caps (self->srcpad, out);
  gst_caps_unref (out);
  qomni_talker_pads_set_caps (GST_ELEMENT (self), qomni_thinker_hidden_size (self->thinker));
  return ok;
}

static gboolean
gst_qomni_thinker_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (parent);
  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS: {
    GstCaps *caps;
    gst_event_parse_caps (event, &caps);
    gboolean ok = set_input_caps (self, caps);
    gst_event_unref (event);
    return ok;
  }
  case GST_EVENT_SEGMENT: {
    const GstSegment *seg;
    gst_event_parse_segment (event, &seg);
    if (seg->format != GST_FORMAT_TIME) {
      /* text from a byte stream: the answers get a time line of their own */
      GstSegment time;
      gst_segment_init (&time, GST_FORMAT_TIME);
      gst_event_unref (event);
      return gst_pad_push_event (self->srcpad, gst_event_new_segment (&time));
    }
    break;
  }
  case GST_EVENT_FLUSH_START:
    g_atomic_int_set (&self->cancel, 1);
    break;
  case GST_EVENT_FLUSH_STOP:
    /* the core holds the stream lock here: the chain function has returned */
    g_atomic_int_set (&self->cancel, 0);
    reset_conversation (self);
    break;
  default:
    /* EOS and GAP: every answer is complete when the chain function returns, so there is
     * nothing to drain before forwarding them */
    break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_qomni_thinker_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (parent);
  if (qomni_gst_model_handle_context_query (GST_ELEMENT (self), query, self->model) ||
      qomni_gst_device_handle_context_query (GST_ELEMENT (self), query, self->device_shared))
    return TRUE;
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_qomni_thinker_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (parent);
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
open_model (GstQomniThinker *self)
{
  g_mutex_lock (&self->settings_lock);
  g_autofree char *path = g_strdup (self->model_path);
  g_autofree char *device = g_strdup (self->device);
  const int ctx = (int) self->context_length;
  g_mutex_unlock (&self->settings_lock);
  GError *error = NULL;
  if (!qomni_gst_device_ensure (GST_ELEMENT (self), device, &self->device_shared, &error)) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Cannot use the requested device");
    g_error_free (error);
    return FALSE;
  }
  self->model = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
  if (self->model)
    self->thinker = qomni_thinker_new_on (self->model->weights, self->model->config, ctx,
                                          qomni_gst_device_vk (self->device_shared), &error);
  if (!self->thinker) {
    QOMNI_GST_ELEMENT_ERROR_FROM_GERROR (self, error, "Could not load the thinker of model %s",
                                         path ? path : "(none)");
    g_error_free (error);
    return FALSE;
  }
  return TRUE;
}

static void
close_model (GstQomniThinker *self)
{
  g_clear_pointer (&self->thinker, qomni_thinker_free);
  g_clear_pointer (&self->model, qomni_gst_model_release);
  g_clear_pointer (&self->device_shared, qomni_gst_device_unref);
}

static GstStateChangeReturn
gst_qomni_thinker_change_state (GstElement *element, GstStateChange transition)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (element);
  switch (transition) {
  case GST_STATE_CHANGE_NULL_TO_READY:
    if (!open_model (self)) {
      close_model (self);
      return GST_STATE_CHANGE_FAILURE;
    }
    break;
  case GST_STATE_CHANGE_READY_TO_PAUSED:
    g_atomic_int_set (&self->cancel, 0);
    reset_conversation (self);
    break;
  case GST_STATE_CHANGE_PAUSED_TO_READY:
    /* deactivating the pads waits for the chain function: stop generating first */
    g_atomic_int_set (&self->cancel, 1);
    break;
  default:
    break;
  }
  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;
  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    close_model (self);
  return ret;
}

static void
replace_string (char **field, const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
gst_qomni_thinker_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (object);
  if ((prop_id == PROP_MODEL || prop_id == PROP_DEVICE || prop_id == PROP_CONTEXT_LENGTH) &&
      !qomni_gst_property_settable_now (GST_ELEMENT (self), pspec))
    return;
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    replace_string (&self->model_path, value);
    break;
  case PROP_DEVICE:
    replace_string (&self->device, value);
    break;
  case PROP_SYSTEM_PROMPT:
    replace_string (&self->system_prompt, value);
    break;
  case PROP_PROMPT:
    replace_string (&self->prompt, value);
    break;
  case PROP_LANGUAGE:
    replace_string (&self->language, value);
    break;
  case PROP_TASK:
    self->task = g_value_get_enum (value);
    break;
  case PROP_MAX_TOKENS:
    self->max_tokens = g_value_get_uint (value);
    break;
  case PROP_TEMPERATURE:
    self->temperature = g_value_get_float (value);
    break;
  case PROP_TOP_K:
    self->top_k = g_value_get_uint (value);
    break;
  case PROP_TOP_P:
    self->top_p = g_value_get_float (value);
    break;
  case PROP_REPETITION_PENALTY:
    self->repetition_penalty = g_value_get_float (value);
    break;
  case PROP_SEED:
    self->seed = g_value_get_uint64 (value);
    break;
  case PROP_KEEP_CONTEXT:
    self->keep_context = g_value_get_boolean (value);
    break;
  case PROP_LATENCY:
    self->latency_ms = g_value_get_uint (value);
    break;
  case PROP_CONTEXT_LENGTH:
    self->context_length = g_value_get_uint (value);
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
gst_qomni_thinker_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (object);
  g_mutex_lock (&self->settings_lock);
  switch (prop_id) {
  case PROP_MODEL:
    g_value_set_string (value, self->model_path);
    break;
  case PROP_DEVICE:
    g_value_set_string (value, self->device);
    break;
  case PROP_SYSTEM_PROMPT:
    g_value_set_string (value, self->system_prompt);
    break;
  case PROP_PROMPT:
    g_value_set_string (value, self->prompt);
    break;
  case PROP_LANGUAGE:
    g_value_set_string (value, self->language);
    break;
  case PROP_TASK:
    g_value_set_enum (value, self->task);
    break;
  case PROP_MAX_TOKENS:
    g_value_set_uint (value, self->max_tokens);
    break;
  case PROP_TEMPERATURE:
    g_value_set_float (value, self->temperature);
    break;
  case PROP_TOP_K:
    g_value_set_uint (value, self->top_k);
    break;
  case PROP_TOP_P:
    g_value_set_float (value, self->top_p);
    break;
  case PROP_REPETITION_PENALTY:
    g_value_set_float (value, self->repetition_penalty);
    break;
  case PROP_SEED:
    g_value_set_uint64 (value, self->seed);
    break;
  case PROP_KEEP_CONTEXT:
    g_value_set_boolean (value, self->keep_context);
    break;
  case PROP_LATENCY:
    g_value_set_uint (value, self->latency_ms);
    break;
  case PROP_CONTEXT_LENGTH:
    g_value_set_uint (value, self->context_length);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  g_mutex_unlock (&self->settings_lock);
}

static void
gst_qomni_thinker_finalize (GObject *object)
{
  GstQomniThinker *self = GST_QOMNI_THINKER (object);
  close_model (self);
  g_free (self->model_path);
  g_free (self->device);
  g_free (self->system_prompt);
  g_free (self->prompt);
  g_free (self->language);
  g_mutex_clear (&self->settings_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)

static void
gst_qomni_thinker_class_init (GstQomniThinkerClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  gobject_class->set_property = gst_qomni_thinker_set_property;
  gobject_class->get_property = gst_qomni_thinker_get_property;
  gobject_class->finalize = gst_qomni_thinker_finalize;
  element_class->change_state = gst_qomni_thinker_change_state;

  g_object_class_install_property (gobject_class, PROP_MODEL,
    g_param_spec_string ("model", "Model",
                         "Checkpoint folder (config.json + safetensors); unset: use the model "
                         "of a neighbouring qomni element", NULL, RW | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
    g_param_spec_string ("device", "Device", "Where to compute: auto or cpu (the CPU), vulkan or vulkan:N (the thinker on that GPU, shared with the other qomni elements through the qomni.vulkan.device context)", "auto",
                         RW | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SYSTEM_PROMPT,
    g_param_spec_string ("system-prompt", "System prompt", "The system turn of the chat (\"\": none)",
                         DEFAULT_SYSTEM_PROMPT, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PROMPT,
    g_param_spec_string ("prompt", "Prompt",
                         "Instruction sent after each audio segment; when set it replaces the "
                         "task's instruction", NULL, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TASK,
    g_param_spec_enum ("task", "Task", "What to do with the audio",
                       GST_TYPE_QOMNI_THINKER_TASK, DEFAULT_TASK,
                       RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LANGUAGE,
    g_param_spec_string ("language", "Language", "Target language of task=translate",
                         DEFAULT_LANGUAGE, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_TOKENS,
    g_param_spec_uint ("max-tokens", "Max tokens", "Most tokens in one answer", 1, 65536,
                       DEFAULT_MAX_TOKENS, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
    g_param_spec_float ("temperature", "Temperature", "Sampling temperature; 0 = greedy", 0.0f,
                        100.0f, DEFAULT_TEMPERATURE, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TOP_K,
    g_param_spec_uint ("top-k", "Top k", "Sample from the k most likely tokens; 0 = all", 0,
                       G_MAXINT, DEFAULT_TOP_K, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TOP_P,
    g_param_spec_float ("top-p", "Top p", "Nucleus mass; 1 = off", 0.0f, 1.0f, DEFAULT_TOP_P,
                        RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_REPETITION_PENALTY,
    g_param_spec_float ("repetition-penalty", "Repetition penalty",
                        "Hugging Face repetition penalty; 1 = off", 0.01f, 100.0f,
                        DEFAULT_REPETITION_PENALTY, RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SEED,
    g_param_spec_uint64 ("seed", "Seed", "Random seed of the sampler", 0, G_MAXUINT64, 0,
                         RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_KEEP_CONTEXT,
    g_param_spec_boolean ("keep-context", "Keep context",
                          "Carry the conversation across segments (one chat); when the "
                          "context fills it starts again with a warning", FALSE,
                          RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
    g_param_spec_uint ("latency", "Latency",
                       "Time in ms an answer may take, added to upstream's in the latency "
                       "query of a live pipeline", 0, G_MAXINT, DEFAULT_LATENCY_MS,
                       RW | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_CONTEXT_LENGTH,
    g_param_spec_uint ("context-length", "Context length",
                       "Positions the KV cache holds (memory is allocated at READY)", 64,
                       262144, DEFAULT_CONTEXT_LENGTH, RW | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  qomni_talker_pads_class_init (element_class);
  gst_element_class_set_static_metadata (element_class, "Qwen3-Omni thinker",
    "Filter/Text/Audio",
    "Answers audio embeddings or text turns with Qwen3-Omni's language model, streaming "
    "UTF-8 text", "qomni authors");
  gst_type_mark_as_plugin_api (GST_TYPE_QOMNI_THINKER_TASK, 0);
}

static void
gst_qomni_thinker_init (GstQomniThinker *self)
{
  g_mutex_init (&self->settings_lock);
  self->device = g_strdup ("auto");
  self->system_prompt = g_strdup (DEFAULT_SYSTEM_PROMPT);
  self->language = g_strdup (DEFAULT_LANGUAGE);
  self->task = DEFAULT_TASK;
  self->max_tokens = DEFAULT_MAX_TOKENS;
  self->temperature = DEFAULT_TEMPERATURE;
  self->top_k = DEFAULT_TOP_K;
  self->top_p = DEFAULT_TOP_P;
  self->repetition_penalty = DEFAULT_REPETITION_PENALTY;
  self->latency_ms = DEFAULT_LATENCY_MS;
  self->context_length = DEFAULT_CONTEXT_LENGTH;
  self->unfed_id = -1;

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_qomni_thinker_chain);
  gst_pad_set_event_function (self->sinkpad, gst_qomni_thinker_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_qomni_thinker_sink_query);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_query_function (self->srcpad, gst_qomni_thinker_src_query);
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
