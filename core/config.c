/* qomni — config.json reader. */
#include "config.h"
#include "config-fields.h"
#include "error.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* A cursor over one JSON object that remembers its dotted path for error messages and
 * stops at the first error. */
typedef struct {
  JsonObject *obj;
  const char *origin;  /* the file */
  char *path;          /* "thinker_config.text_config" */
  GError **error;
  gboolean *failed;
} Reader;

static Reader
reader_child (Reader *parent, const char *member, gboolean required)
{
  Reader r = { NULL, parent->origin, NULL, parent->error, parent->failed };
  r.path = parent->path[0] ? g_strdup_printf ("%s.%s", parent->path, member) : g_strdup (member);
  if (*parent->failed || !parent->obj)
    return r;
  JsonNode *n = json_object_get_member (parent->obj, member);
  if (n && JSON_NODE_HOLDS_OBJECT (n))
    r.obj = json_node_get_object (n);
  else if (required) {
    g_set_error (parent->error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "%s: config field '%s' is missing or not an object", parent->origin, r.path);
    *parent->failed = TRUE;
  }
  return r;
}

static JsonNode *
reader_value (Reader *r, const char *member)
{
  if (*r->failed || !r->obj)
    return NULL;
  JsonNode *n = json_object_get_member (r->obj, member);
  if (n && JSON_NODE_HOLDS_NULL (n))
    return NULL;
  return n;
}

static void
reader_fail (Reader *r, const char *member, const char *what)
{
  if (*r->failed)
    return;
  g_set_error (r->error, QOMNI_ERROR, QOMNI_ERROR_MISSING, "%s: config field '%s%s%s' %s",
               r->origin, r->path, r->path[0] ? "." : "", member, what);
  *r->failed = TRUE;
}

/* An integer field; `def` < 0 means required, else the default when absent or null. */
static int
get_int (Reader *r, const char *member, int def)
{
  JsonNode *n = reader_value (r, member);
  if (!n) {
    if (def < 0)
      reader_fail (r, member, "is missing");
    return def < 0 ? 0 : def;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64) {
    reader_fail (r, member, "is not an integer");
    return 0;
  }
  gint64 v = json_node_get_int (n);
  if (v < 0 || v > G_MAXINT) {
    reader_fail (r, member, "is out of range");
    return 0;
  }
  return (int) v;
}

static int
req_int (Reader *r, const char *member)
{
  return get_int (r, member, -1);
}

static void
get_int_fields (Reader *r, const QomniIntField *fields, guint n, void *base)
{
  for (guint i = 0; i < n; i++)
    *qomni_int_field (&fields[i], base) = get_int (r, fields[i].json, fields[i].def);
}

static double
get_double (Reader *r, const char *member, double def, gboolean required)
{
  JsonNode *n = reader_value (r, member);
  if (!n) {
    if (required)
      reader_fail (r, member, "is missing");
    return def;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || (json_node_get_value_type (n) != G_TYPE_INT64 &&
                                     json_node_get_value_type (n) != G_TYPE_DOUBLE)) {
    reader_fail (r, member, "is not a number");
    return def;
  }
  return json_node_get_double (n);
}

static gboolean
get_bool (Reader *r, const char *member, gboolean def)
{
  JsonNode *n = reader_value (r, member);
  if (!n)
    return def;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
    reader_fail (r, member, "is not a boolean");
    return def;
  }
  return json_node_get_boolean (n);
}

/* An integer array into out[max]; returns the count. */
static int
get_int_array (Reader *r, const char *member, int *out, int max, gboolean required)
{
  JsonNode *n = reader_value (r, member);
  if (!n) {
    if (required)
      reader_fail (r, member, "is missing");
    return 0;
  }
  if (!JSON_NODE_HOLDS_ARRAY (n)) {
    reader_fail (r, member, "is not an array");
    return 0;
  }
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  if ((int) len > max) {
    reader_fail (r, member, "has too many entries");
    return 0;
  }
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64) {
      reader_fail (r, member, "holds a non-integer");
      return 0;
    }
    out[i] = (int) json_node_get_int (e);
  }
  return (int) len;
}

static void
read_rope (Reader *r, QomniTextConfig *t)
{
  /* New layout: rope_parameters {rope_theta, mrope_section, interleaved};
   * old layout: rope_theta beside rope_scaling {mrope_section, interleaved}. */
  Reader params = reader_child (r, "rope_parameters", FALSE);
  Reader scaling = reader_child (r, "rope_scaling", FALSE);
  Reader *src = params.obj ? &params : (scaling.obj ? &scaling : NULL);
  t->rope_theta = get_double (r, "rope_theta", 0.0, FALSE);
  if (params.obj && t->rope_theta == 0.0)
    t->rope_theta = get_double (&params, "rope_theta", 0.0, FALSE);
  if (t->rope_theta == 0.0)
    reader_fail (r, "rope_parameters.rope_theta", "is missing");
  if (src) {
    int n = get_int_array (src, "mrope_section", t->mrope_section, 3, FALSE);
    if (n != 0 && n != 3)
      reader_fail (src, "mrope_section", "must have three entries");
    t->mrope_interleaved = get_bool (src, "interleaved", FALSE) ||
                           get_bool (src, "mrope_interleaved", FALSE);
  }
  g_free (params.path);
  g_free (scaling.path);
}

static void
read_text (Reader *r, QomniTextConfig *t, const char *experts_field)
{
  t->vocab_size = req_int (r, "vocab_size");
  t->hidden_size = req_int (r, "hidden_size");
  t->num_hidden_layers = req_int (r, "num_hidden_layers");
  t->num_attention_heads = req_int (r, "num_attention_heads");
  t->num_key_value_heads = get_int (r, "num_key_value_heads", t->num_attention_heads);
  int def_hd = t->num_attention_heads ? t->hidden_size / t->num_attention_heads : 0;
  t->head_dim = get_int (r, "head_dim", def_hd);
  t->intermediate_size = get_int (r, "intermediate_size", 0);
  t->moe_intermediate_size = get_int (r, "moe_intermediate_size", 0);
  t->num_experts = experts_field ? get_int (r, experts_field, 0) : 0;
  t->num_experts_per_tok = get_int (r, "num_experts_per_tok", 0);
  t->shared_expert_intermediate_size = get_int (r, "shared_expert_intermediate_size", 0);
  t->norm_topk_prob = get_bool (r, "norm_topk_prob", FALSE);
  t->decoder_sparse_step = get_int (r, "decoder_sparse_step", 1);
  int only[256];
  t->n_mlp_only_layers = get_int_array (r, "mlp_only_layers", only, 256, FALSE);
  t->mlp_only_layers = g_memdup2 (only, sizeof (int) * (gsize) MAX (t->n_mlp_only_layers, 1));
  t->rms_norm_eps = get_double (r, "rms_norm_eps", 1e-6, FALSE);
  t->sliding_window = get_int (r, "sliding_window", 0);
  t->tie_word_embeddings = get_bool (r, "tie_word_embeddings", FALSE);
  read_rope (r, t);
  if (*r->failed)
    return;
  if (t->num_key_value_heads == 0 || t->num_attention_heads % t->num_key_value_heads != 0)
    reader_fail (r, "num_key_value_heads", "must divide num_attention_heads");
  else if (t->num_experts && (t->num_experts_per_tok == 0 ||
                              t->num_experts_per_tok > t->num_experts ||
                              t->moe_intermediate_size == 0))
    reader_fail (r, "num_experts_per_tok", "must be between 1 and the expert count, with "
                 "moe_intermediate_size set");
  else if (t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2] > t->head_dim / 2)
    reader_fail (r, "rope_parameters.mrope_section", "covers more than head_dim/2 slots");
  else if (t->head_dim == 0 || t->head_dim % 2)
    reader_fail (r, "head_dim", "must be even and non-zero");
}

static void
read_audio (Reader *r, QomniAudioConfig *a)
{
  get_int_fields (r, qomni_audio_fields, G_N_ELEMENTS (qomni_audio_fields), a);
}

static void
read_vision (Reader *r, QomniVisionConfig *v)
{
  get_int_fields (r, qomni_vision_fields, G_N_ELEMENTS (qomni_vision_fields), v);
  v->n_deepstack = get_int_array (r, "deepstack_visual_indexes", v->deepstack_visual_indexes,
                                  8, FALSE);
  Reader rope = reader_child (r, "rope_parameters", FALSE);
  v->rope_theta = rope.obj ? get_double (&rope, "rope_theta", 10000.0, FALSE) : 10000.0;
  g_free (rope.path);
}

static void
read_talker (Reader *r, QomniTalkerConfig *t)
{
  t->present = TRUE;
  Reader text = reader_child (r, "text_config", TRUE);
  read_text (&text, &t->text, "num_local_experts");
  /* Some configs spell the talker's expert count like the thinker's. */
  if (!*r->failed && t->text.num_experts == 0)
    t->text.num_experts = get_int (&text, "num_experts", 0);
  Reader cp = reader_child (r, "code_predictor_config", TRUE);
  read_text (&cp, &t->code_predictor, NULL);
  get_int_fields (r, qomni_talker_fields, G_N_ELEMENTS (qomni_talker_fields), t);
  Reader spk = reader_child (r, "speaker_id", TRUE);
  if (spk.obj) {
    g_autoptr (GList) names = json_object_get_members (spk.obj);
    names = g_list_sort (names, (GCompareFunc) strcmp);
    t->n_speakers = (int) g_list_length (names);
    t->speakers = g_new0 (QomniSpeaker, MAX (t->n_speakers, 1));
    int i = 0;
    for (GList *l = names; l; l = l->next, i++) {
      t->speakers[i].name = g_ascii_strdown (l->data, -1);
      t->speakers[i].codec_id = req_int (&spk, l->data);
    }
  }
  g_free (text.path);
  g_free (cp.path);
  g_free (spk.path);
}

static void
read_code2wav (Reader *r, QomniCode2WavConfig *c)
{
  c->present = TRUE;
  QomniTextConfig *t = &c->transformer;
  t->hidden_size = req_int (r, "hidden_size");
  t->num_hidden_layers = req_int (r, "num_hidden_layers");
  t->num_attention_heads = req_int (r, "num_attention_heads");
  t->num_key_value_heads = get_int (r, "num_key_value_heads", t->num_attention_heads);
  t->head_dim = get_int (r, "head_dim", t->num_attention_heads ?
                         t->hidden_size / t->num_attention_heads : 0);
  t->intermediate_size = req_int (r, "intermediate_size");
  t->rms_norm_eps = get_double (r, "rms_norm_eps", 1e-5, FALSE);
  t->sliding_window = get_int (r, "sliding_window", 0);
  t->mlp_only_layers = g_new0 (int, 1);
  read_rope (r, t);
  c->codebook_size = req_int (r, "codebook_size");
  c->num_quantizers = req_int (r, "num_quantizers");
  c->decoder_dim = req_int (r, "decoder_dim");
  c->n_upsample_rates = get_int_array (r, "upsample_rates", c->upsample_rates, 4, TRUE);
  c->n_upsampling_ratios = get_int_array (r, "upsampling_ratios", c->upsampling_ratios, 4, TRUE);
  c->layer_scale_initial_scale = get_double (r, "layer_scale_initial_scale", 0.01, FALSE);
}

static QomniConfig *
read_root (JsonObject *root, const char *origin, GError **error)
{
  gboolean failed = FALSE;
  Reader r = { root, origin, (char *) "", error, &failed };
  QomniConfig *c = g_new0 (QomniConfig, 1);

  Reader th = reader_child (&r, "thinker_config", TRUE);
  Reader text = reader_child (&th, "text_config", TRUE);
  read_text (&text, &c->thinker.text, "num_experts");
  Reader audio = reader_child (&th, "audio_config", FALSE);
  if (audio.obj)
    read_audio (&audio, &c->thinker.audio);
  Reader vision = reader_child (&th, "vision_config", FALSE);
  if (vision.obj)
    read_vision (&vision, &c->thinker.vision);
  get_int_fields (&th, qomni_thinker_token_fields, G_N_ELEMENTS (qomni_thinker_token_fields),
                  &c->thinker);

  Reader talker = reader_child (&r, "talker_config", FALSE);
  if (talker.obj)
    read_talker (&talker, &c->talker);
  Reader c2w = reader_child (&r, "code2wav_config", FALSE);
  if (c2w.obj)
    read_code2wav (&c2w, &c->code2wav);

  c->enable_audio_output = get_bool (&r, "enable_audio_output", c->talker.present);
  get_int_fields (&r, qomni_top_token_fields, G_N_ELEMENTS (qomni_top_token_fields), c);

  Reader *children[] = { &th, &text, &audio, &vision, &talker, &c2w };
  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    g_free (children[i]->path);
  if (failed) {
    qomni_config_free (c);
    return NULL;
  }
  return c;
}

QomniConfig *
qomni_config_load_from_data (const char *json, gssize len, const char *origin, GError **error)
{
  GError *local = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, json, len, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: %s", origin, local->message);
    g_error_free (local);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT, "%s: not a JSON object", origin);
    return NULL;
  }
  return read_root (json_node_get_object (root), origin, error);
}

QomniConfig *
qomni_config_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  GError *local = NULL;
  if (!g_file_get_contents (path, &text, &len, &local)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot read config %s: %s", path,
                 local->message);
    g_error_free (local);
    return NULL;
  }
  return qomni_config_load_from_data (text, (gssize) len, path, error);
}

static void
text_clear (QomniTextConfig *t)
{
  g_free (t->mlp_only_layers);
}

void
qomni_config_free (QomniConfig *c)
{
  if (!c)
    return;
  text_clear (&c->thinker.text);
  text_clear (&c->talker.text);
  text_clear (&c->talker.code_predictor);
  text_clear (&c->code2wav.transformer);
  for (int i = 0; i < c->talker.n_speakers; i++)
    g_free (c->talker.speakers[i].name);
  g_free (c->talker.speakers);
  g_free (c);
}

int
qomni_config_speaker_id (const QomniConfig *c, const char *name)
{
  for (int i = 0; i < c->talker.n_speakers; i++)
    if (g_ascii_strcasecmp (c->talker.speakers[i].name, name) == 0)
      return c->talker.speakers[i].codec_id;
  return -1;
}
