/* qomni — config.json writer and built-in shapes. */
#include "config.h"
#include "config-fields.h"
#include "error.h"

#include <json-glib/json-glib.h>
#include <string.h>

static void
member_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static void
member_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_double_value (b, v);
}

static void
member_bool (JsonBuilder *b, const char *name, gboolean v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, v);
}

static void
member_string (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, v);
}

static void
member_ints (JsonBuilder *b, const char *name, const int *v, int n)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    json_builder_add_int_value (b, v[i]);
  json_builder_end_array (b);
}

static void
member_int_fields (JsonBuilder *b, const QomniIntField *fields, guint n, const void *base)
{
  for (guint i = 0; i < n; i++)
    member_int (b, fields[i].json, *qomni_int_field (&fields[i], (void *) base));
}

static void
write_rope (JsonBuilder *b, const QomniTextConfig *t)
{
  json_builder_set_member_name (b, "rope_parameters");
  json_builder_begin_object (b);
  member_double (b, "rope_theta", t->rope_theta);
  member_string (b, "rope_type", "default");
  if (t->mrope_section[0]) {
    member_ints (b, "mrope_section", t->mrope_section, 3);
    member_bool (b, "interleaved", t->mrope_interleaved);
    member_bool (b, "mrope_interleaved", t->mrope_interleaved);
  }
  json_builder_end_object (b);
}

static void
write_text (JsonBuilder *b, const QomniTextConfig *t, const char *model_type,
            const char *experts_field)
{
  member_string (b, "model_type", model_type);
  member_int (b, "vocab_size", t->vocab_size);
  member_int (b, "hidden_size", t->hidden_size);
  member_int (b, "num_hidden_layers", t->num_hidden_layers);
  member_int (b, "num_attention_heads", t->num_attention_heads);
  member_int (b, "num_key_value_heads", t->num_key_value_heads);
  member_int (b, "head_dim", t->head_dim);
  member_int (b, "intermediate_size", t->intermediate_size);
  if (experts_field) {
    member_int (b, "moe_intermediate_size", t->moe_intermediate_size);
    member_int (b, experts_field, t->num_experts);
    member_int (b, "num_experts_per_tok", t->num_experts_per_tok);
    member_bool (b, "norm_topk_prob", t->norm_topk_prob);
    member_int (b, "shared_expert_intermediate_size", t->shared_expert_intermediate_size);
    member_int (b, "decoder_sparse_step", MAX (t->decoder_sparse_step, 1));
    member_ints (b, "mlp_only_layers", t->mlp_only_layers, t->n_mlp_only_layers);
  }
  member_string (b, "hidden_act", "silu");
  member_double (b, "rms_norm_eps", t->rms_norm_eps);
  member_bool (b, "attention_bias", FALSE);
  member_bool (b, "tie_word_embeddings", t->tie_word_embeddings);
  json_builder_set_member_name (b, "sliding_window");
  if (t->sliding_window)
    json_builder_add_int_value (b, t->sliding_window);
  else
    json_builder_add_null_value (b);
  write_rope (b, t);
}

char *
qomni_config_to_json (const QomniConfig *c)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const QomniThinkerConfig *th = &c->thinker;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "architectures");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, "Qwen3OmniMoeForConditionalGeneration");
  json_builder_end_array (b);
  member_string (b, "model_type", "qwen3_omni_moe");
  member_string (b, "dtype", "bfloat16");
  member_bool (b, "enable_audio_output", c->enable_audio_output);
  member_int_fields (b, qomni_top_token_fields, G_N_ELEMENTS (qomni_top_token_fields), c);

  json_builder_set_member_name (b, "thinker_config");
  json_builder_begin_object (b);
  member_string (b, "model_type", "qwen3_omni_moe_thinker");
  member_int_fields (b, qomni_thinker_token_fields, G_N_ELEMENTS (qomni_thinker_token_fields),
                     th);
  member_bool (b, "tie_word_embeddings", th->text.tie_word_embeddings);
  json_builder_set_member_name (b, "text_config");
  json_builder_begin_object (b);
  write_text (b, &th->text, "qwen3_omni_moe_text", "num_experts");
  json_builder_end_object (b);
  if (th->audio.d_model) {
    const QomniAudioConfig *a = &th->audio;
    json_builder_set_member_name (b, "audio_config");
    json_builder_begin_object (b);
    member_string (b, "model_type", "qwen3_omni_moe_audio_encoder");
    member_int_fields (b, qomni_audio_fields, G_N_ELEMENTS (qomni_audio_fields), a);
    member_string (b, "activation_function", "gelu");
    member_bool (b, "scale_embedding", FALSE);
    json_builder_end_object (b);
  }
  if (th->vision.depth) {
    const QomniVisionConfig *v = &th->vision;
    json_builder_set_member_name (b, "vision_config");
    json_builder_begin_object (b);
    member_string (b, "model_type", "qwen3_omni_moe_vision_encoder");
    member_int_fields (b, qomni_vision_fields, G_N_ELEMENTS (qomni_vision_fields), v);
    member_ints (b, "deepstack_visual_indexes", v->deepstack_visual_indexes, v->n_deepstack);
    member_string (b, "hidden_act", "gelu_pytorch_tanh");
    json_builder_end_object (b);
  }
  json_builder_end_object (b);

  if (c->talker.present) {
    const QomniTalkerConfig *t = &c->talker;
    json_builder_set_member_name (b, "talker_config");
    json_builder_begin_object (b);
    member_int_fields (b, qomni_talker_fields, G_N_ELEMENTS (qomni_talker_fields), t);
    member_int (b, "audio_token_id", th->audio_token_id);
    member_int (b, "audio_start_token_id", th->audio_start_token_id);
    member_int (b, "audio_end_token_id", th->audio_end_token_id);
    member_int (b, "image_token_id", th->image_token_id);
    member_int (b, "video_token_id", th->video_token_id);
    member_int (b, "vision_start_token_id", th->vision_start_token_id);
    member_int (b, "position_id_per_seconds", th->position_id_per_seconds);
    member_int (b, "spatial_merge_size", MAX (th->vision.spatial_merge_size, 2));
    json_builder_set_member_name (b, "speaker_id");
    json_builder_begin_object (b);
    for (int i = 0; i < t->n_speakers; i++)
      member_int (b, t->speakers[i].name, t->speakers[i].codec_id);
    json_builder_end_object (b);
    json_builder_set_member_name (b, "text_config");
    json_builder_begin_object (b);
    write_text (b, &t->text, "qwen3_omni_moe_talker_text", "num_local_experts");
    json_builder_end_object (b);
    json_builder_set_member_name (b, "code_predictor_config");
    json_builder_begin_object (b);
    write_text (b, &t->code_predictor, "qwen3_omni_moe_talker_code_predictor", NULL);
    member_int (b, "num_code_groups", t->num_code_groups);
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  if (c->code2wav.present) {
    const QomniCode2WavConfig *w = &c->code2wav;
    const QomniTextConfig *t = &w->transformer;
    json_builder_set_member_name (b, "code2wav_config");
    json_builder_begin_object (b);
    member_int (b, "codebook_size", w->codebook_size);
    member_int (b, "num_quantizers", w->num_quantizers);
    member_int (b, "hidden_size", t->hidden_size);
    member_int (b, "num_hidden_layers", t->num_hidden_layers);
    member_int (b, "num_attention_heads", t->num_attention_heads);
    member_int (b, "num_key_value_heads", t->num_key_value_heads);
    member_int (b, "intermediate_size", t->intermediate_size);
    member_double (b, "rms_norm_eps", t->rms_norm_eps);
    member_int (b, "sliding_window", t->sliding_window);
    member_int (b, "decoder_dim", w->decoder_dim);
    member_ints (b, "upsample_rates", w->upsample_rates, w->n_upsample_rates);
    member_ints (b, "upsampling_ratios", w->upsampling_ratios, w->n_upsampling_ratios);
    member_double (b, "layer_scale_initial_scale", w->layer_scale_initial_scale);
    write_rope (b, t);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, TRUE);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/* Widths of one preset; everything else follows the release. */
typedef struct {
  const char *name;
  int vocab, th_hidden, th_layers, th_heads, th_kv, th_hd, th_moe, th_experts, th_topk;
  int mrope[3];
  int au_mel, au_d, au_layers, au_heads, au_ffn, au_down, au_win_infer, au_out;
  int vi_depth, vi_hidden, vi_heads, vi_inter, vi_out, vi_deepstack[3];
  int tk_hidden, tk_layers, tk_heads, tk_kv, tk_hd, tk_inter, tk_moe, tk_experts, tk_topk,
      tk_shared, tk_accept;
  int tk_mrope[3];
  int cp_hidden, cp_layers, cp_heads, cp_kv, cp_hd, cp_inter;
  int cw_hidden, cw_layers, cw_heads, cw_inter, cw_decoder;
} Preset;

static const Preset presets[] = {
  { "tiny", 152064, 32, 3, 4, 2, 16, 32, 8, 2, { 4, 2, 2 },
    128, 32, 2, 4, 64, 16, 200, 32,
    2, 32, 2, 64, 32, { 0, 1, -1 },
    32, 2, 4, 2, 8, 64, 16, 8, 2, 24, 2, { 2, 1, 1 },
    32, 2, 4, 2, 8, 64,
    32, 2, 4, 64, 64 },
  { "full", 152064, 2048, 48, 32, 4, 128, 768, 128, 8, { 24, 20, 20 },
    128, 1280, 32, 20, 5120, 480, 800, 2048,
    27, 1152, 16, 4304, 2048, { 8, 16, 24 },
    1024, 20, 16, 2, 128, 2048, 384, 128, 6, 768, 24, { 24, 20, 20 },
    1024, 5, 16, 8, 128, 3072,
    1024, 8, 16, 3072, 1536 },
};

QomniConfig *
qomni_config_preset (const char *name, GError **error)
{
  const Preset *p = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    if (strcmp (presets[i].name, name) == 0)
      p = &presets[i];
  if (!p) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "unknown preset '%s' (known: tiny, full)", name);
    return NULL;
  }
  QomniConfig *c = g_new0 (QomniConfig, 1);
  QomniTextConfig *t = &c->thinker.text;
  *t = (QomniTextConfig) {
    .vocab_size = p->vocab, .hidden_size = p->th_hidden, .num_hidden_layers = p->th_layers,
    .num_attention_heads = p->th_heads, .num_key_value_heads = p->th_kv, .head_dim = p->th_hd,
    .intermediate_size = p->th_moe, .moe_intermediate_size = p->th_moe,
    .num_experts = p->th_experts, .num_experts_per_tok = p->th_topk, .norm_topk_prob = TRUE,
    .decoder_sparse_step = 1, .rms_norm_eps = 1e-6, .rope_theta = 1e6,
    .mrope_section = { p->mrope[0], p->mrope[1], p->mrope[2] }, .mrope_interleaved = TRUE,
  };
  t->mlp_only_layers = g_new0 (int, 1);
  c->thinker.audio = (QomniAudioConfig) {
    .num_mel_bins = p->au_mel, .d_model = p->au_d, .encoder_layers = p->au_layers,
    .encoder_attention_heads = p->au_heads, .encoder_ffn_dim = p->au_ffn,
    .downsample_hidden_size = p->au_down, .n_window = 50, .n_window_infer = p->au_win_infer,
    .conv_chunksize = 500, .max_source_positions = 1500, .output_dim = p->au_out,
  };
  QomniVisionConfig *v = &c->thinker.vision;
  *v = (QomniVisionConfig) {
    .depth = p->vi_depth, .hidden_size = p->vi_hidden, .num_heads = p->vi_heads,
    .intermediate_size = p->vi_inter, .patch_size = 16, .temporal_patch_size = 2,
    .in_channels = 3, .spatial_merge_size = 2, .num_position_embeddings = 2304,
    .out_hidden_size = p->vi_out, .rope_theta = 10000.0,
  };
  for (int i = 0; i < 3 && p->vi_deepstack[i] >= 0; i++)
    v->deepstack_visual_indexes[v->n_deepstack++] = p->vi_deepstack[i];
  QomniThinkerConfig *th = &c->thinker;
  th->audio_token_id = 151675;
  th->audio_start_token_id = 151669;
  th->audio_end_token_id = 151670;
  th->image_token_id = 151655;
  th->video_token_id = 151656;
  th->vision_start_token_id = 151652;
  th->vision_end_token_id = 151653;
  th->position_id_per_seconds = 13;

  QomniTalkerConfig *tk = &c->talker;
  tk->present = TRUE;
  tk->text = (QomniTextConfig) {
    .vocab_size = 3072, .hidden_size = p->tk_hidden, .num_hidden_layers = p->tk_layers,
    .num_attention_heads = p->tk_heads, .num_key_value_heads = p->tk_kv, .head_dim = p->tk_hd,
    .intermediate_size = p->tk_inter, .moe_intermediate_size = p->tk_moe,
    .num_experts = p->tk_experts, .num_experts_per_tok = p->tk_topk, .norm_topk_prob = TRUE,
    .shared_expert_intermediate_size = p->tk_shared, .decoder_sparse_step = 1,
    .rms_norm_eps = 1e-6, .rope_theta = 1e6,
    .mrope_section = { p->tk_mrope[0], p->tk_mrope[1], p->tk_mrope[2] },
    .mrope_interleaved = TRUE,
  };
  tk->text.mlp_only_layers = g_new0 (int, 1);
  tk->code_predictor = (QomniTextConfig) {
    .vocab_size = 2048, .hidden_size = p->cp_hidden, .num_hidden_layers = p->cp_layers,
    .num_attention_heads = p->cp_heads, .num_key_value_heads = p->cp_kv, .head_dim = p->cp_hd,
    .intermediate_size = p->cp_inter, .rms_norm_eps = 1e-6, .rope_theta = 1e6,
  };
  tk->code_predictor.mlp_only_layers = g_new0 (int, 1);
  tk->accept_hidden_layer = p->tk_accept;
  tk->thinker_hidden_size = p->th_hidden;
  tk->num_code_groups = 16;
  tk->codec_pad_id = 2148;
  tk->codec_bos_id = 2149;
  tk->codec_eos_id = 2150;
  tk->codec_nothink_id = 2155;
  tk->codec_think_bos_id = 2156;
  tk->codec_think_eos_id = 2157;
  static const struct { const char *name; int id; } speakers[] = {
    { "aiden", 2303 }, { "chelsie", 2301 }, { "ethan", 2302 },
  };
  tk->n_speakers = G_N_ELEMENTS (speakers);
  tk->speakers = g_new0 (QomniSpeaker, tk->n_speakers);
  for (int i = 0; i < tk->n_speakers; i++) {
    tk->speakers[i].name = g_strdup (speakers[i].name);
    tk->speakers[i].codec_id = speakers[i].id;
  }

  QomniCode2WavConfig *w = &c->code2wav;
  w->present = TRUE;
  w->transformer = (QomniTextConfig) {
    .hidden_size = p->cw_hidden, .num_hidden_layers = p->cw_layers,
    .num_attention_heads = p->cw_heads, .num_key_value_heads = p->cw_heads,
    .head_dim = p->cw_hidden / p->cw_heads, .intermediate_size = p->cw_inter,
    .rms_norm_eps = 1e-5, .rope_theta = 10000.0, .sliding_window = 72,
  };
  w->transformer.mlp_only_layers = g_new0 (int, 1);
  w->codebook_size = 2048;
  w->num_quantizers = 16;
  w->decoder_dim = p->cw_decoder;
  w->n_upsample_rates = 4;
  memcpy (w->upsample_rates, (int[]) { 8, 5, 4, 3 }, sizeof (int) * 4);
  w->n_upsampling_ratios = 2;
  memcpy (w->upsampling_ratios, (int[]) { 2, 2 }, sizeof (int) * 2);
  w->layer_scale_initial_scale = 0.01;

  c->enable_audio_output = TRUE;
  c->im_start_token_id = 151644;
  c->im_end_token_id = 151645;
  c->system_token_id = 8948;
  c->user_token_id = 872;
  c->assistant_token_id = 77091;
  c->tts_pad_token_id = 151671;
  c->tts_bos_token_id = 151672;
  c->tts_eos_token_id = 151673;
  return c;
}
