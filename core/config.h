/* qomni — the Qwen3-Omni config.json tree, read with json-glib.
 *
 * Field names are the release's. Fields the model cannot run without are required: a
 * config that lacks one fails with a QOMNI_ERROR naming its path
 * ("thinker_config.text_config.hidden_size"). Older configs keep the rope settings in
 * `rope_scaling` + `rope_theta`; newer ones in `rope_parameters`; both are read.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A decoder-only LM: the thinker's text model, the talker's, the code predictor,
 * Code2Wav's pre-transformer. */
typedef struct {
  int vocab_size;
  int hidden_size;
  int num_hidden_layers;
  int num_attention_heads;
  int num_key_value_heads;
  int head_dim;
  int intermediate_size;               /* dense MLP width (talker: projection width) */
  int moe_intermediate_size;           /* 0 when the model is dense */
  int num_experts;                     /* thinker `num_experts`, talker `num_local_experts` */
  int num_experts_per_tok;
  int shared_expert_intermediate_size; /* 0: no shared expert */
  gboolean norm_topk_prob;
  int decoder_sparse_step;
  int *mlp_only_layers;                /* layers with a dense MLP instead of MoE */
  int n_mlp_only_layers;
  double rms_norm_eps;
  double rope_theta;
  int mrope_section[3];                /* all 0 for plain 1-D RoPE */
  gboolean mrope_interleaved;
  int sliding_window;                  /* 0: none */
  gboolean tie_word_embeddings;
} QomniTextConfig;

typedef struct {
  int num_mel_bins;
  int d_model;
  int encoder_layers;
  int encoder_attention_heads;
  int encoder_ffn_dim;
  int downsample_hidden_size;
  int n_window;
  int n_window_infer;
  int conv_chunksize;
  int max_source_positions;
  int output_dim;
} QomniAudioConfig;

typedef struct {
  int depth;
  int hidden_size;
  int num_heads;
  int intermediate_size;
  int patch_size;
  int temporal_patch_size;
  int in_channels;
  int spatial_merge_size;
  int num_position_embeddings;
  int out_hidden_size;
  int deepstack_visual_indexes[8];
  int n_deepstack;
  double rope_theta;
} QomniVisionConfig;

typedef struct {
  QomniTextConfig text;
  QomniAudioConfig audio;
  QomniVisionConfig vision;
  int audio_token_id;
  int audio_start_token_id;
  int audio_end_token_id;
  int image_token_id;
  int video_token_id;
  int vision_start_token_id;
  int vision_end_token_id;
  int position_id_per_seconds;
} QomniThinkerConfig;

typedef struct {
  char *name;     /* lower case, e.g. "ethan" */
  int codec_id;
} QomniSpeaker;

typedef struct {
  gboolean present;
  QomniTextConfig text;
  QomniTextConfig code_predictor;
  int accept_hidden_layer;
  int thinker_hidden_size;
  int num_code_groups;
  int codec_pad_id, codec_bos_id, codec_eos_id;
  int codec_nothink_id, codec_think_bos_id, codec_think_eos_id;
  QomniSpeaker *speakers;
  int n_speakers;
} QomniTalkerConfig;

typedef struct {
  gboolean present;
  QomniTextConfig transformer;  /* the sliding-window pre-transformer */
  int codebook_size;
  int num_quantizers;
  int decoder_dim;
  int upsample_rates[4];
  int n_upsample_rates;
  int upsampling_ratios[4];
  int n_upsampling_ratios;
  double layer_scale_initial_scale;
} QomniCode2WavConfig;

typedef struct {
  QomniThinkerConfig thinker;
  QomniTalkerConfig talker;
  QomniCode2WavConfig code2wav;
  gboolean enable_audio_output;
  int im_start_token_id, im_end_token_id;
  int system_token_id, user_token_id, assistant_token_id;
  int tts_pad_token_id, tts_bos_token_id, tts_eos_token_id;
} QomniConfig;

/* (transfer full) Reads a config.json file. */
QomniConfig *qomni_config_load (const char *path, GError **error);
/* (transfer full) Reads a config.json held in memory; `origin` names it in errors. */
QomniConfig *qomni_config_load_from_data (const char *json, gssize len, const char *origin,
                                          GError **error);
void qomni_config_free (QomniConfig *config);

/* The codec id of a speaker by name (case-insensitive), or -1. */
int qomni_config_speaker_id (const QomniConfig *config, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniConfig, qomni_config_free)

G_END_DECLS

G_BEGIN_DECLS
/* (transfer full) The config as release-style config.json text (field names as the
 * release writes them), readable by qomni_config_load and by transformers. */
char *qomni_config_to_json (const QomniConfig *config);
/* (transfer full) A built-in shape: "tiny" (the widths of the test fixture) or "full"
 * (the released 30B-A3B). NULL with an error for an unknown name. */
QomniConfig *qomni_config_preset (const char *name, GError **error);
G_END_DECLS
