/* qomni — private: the integer fields of the config structs, one table each, so that the
 * reader (config.c) and the writer (config-write.c) walk the same list. */
#pragma once

#include "config.h"

#include <stddef.h>

typedef struct {
  const char *json;   /* the release's field name */
  size_t offset;      /* of the int in its struct */
  int def;            /* value when absent; -1: required */
} QomniIntField;

#define QOMNI_INT_FIELD(type, json, member, def) { json, offsetof (type, member), def }

static const QomniIntField qomni_audio_fields[] = {
  QOMNI_INT_FIELD (QomniAudioConfig, "num_mel_bins", num_mel_bins, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "d_model", d_model, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "encoder_layers", encoder_layers, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "encoder_attention_heads", encoder_attention_heads, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "encoder_ffn_dim", encoder_ffn_dim, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "downsample_hidden_size", downsample_hidden_size, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "n_window", n_window, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "n_window_infer", n_window_infer, -1),
  QOMNI_INT_FIELD (QomniAudioConfig, "conv_chunksize", conv_chunksize, 500),
  QOMNI_INT_FIELD (QomniAudioConfig, "max_source_positions", max_source_positions, 1500),
  QOMNI_INT_FIELD (QomniAudioConfig, "output_dim", output_dim, -1),
};

static const QomniIntField qomni_vision_fields[] = {
  QOMNI_INT_FIELD (QomniVisionConfig, "depth", depth, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "hidden_size", hidden_size, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "num_heads", num_heads, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "intermediate_size", intermediate_size, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "patch_size", patch_size, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "temporal_patch_size", temporal_patch_size, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "in_channels", in_channels, 3),
  QOMNI_INT_FIELD (QomniVisionConfig, "spatial_merge_size", spatial_merge_size, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "num_position_embeddings", num_position_embeddings, -1),
  QOMNI_INT_FIELD (QomniVisionConfig, "out_hidden_size", out_hidden_size, -1),
};

/* Release values as defaults where a field may be absent: the class defaults in
 * transformers differ from the release and must not be used (architecture notes §13.1). */
static const QomniIntField qomni_thinker_token_fields[] = {
  QOMNI_INT_FIELD (QomniThinkerConfig, "audio_token_id", audio_token_id, 151675),
  QOMNI_INT_FIELD (QomniThinkerConfig, "audio_start_token_id", audio_start_token_id, 151669),
  QOMNI_INT_FIELD (QomniThinkerConfig, "audio_end_token_id", audio_end_token_id, 151670),
  QOMNI_INT_FIELD (QomniThinkerConfig, "image_token_id", image_token_id, 151655),
  QOMNI_INT_FIELD (QomniThinkerConfig, "video_token_id", video_token_id, 151656),
  QOMNI_INT_FIELD (QomniThinkerConfig, "vision_start_token_id", vision_start_token_id, 151652),
  QOMNI_INT_FIELD (QomniThinkerConfig, "vision_end_token_id", vision_end_token_id, 151653),
  QOMNI_INT_FIELD (QomniThinkerConfig, "position_id_per_seconds", position_id_per_seconds, 13),
};

static const QomniIntField qomni_talker_fields[] = {
  QOMNI_INT_FIELD (QomniTalkerConfig, "accept_hidden_layer", accept_hidden_layer, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "thinker_hidden_size", thinker_hidden_size, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "num_code_groups", num_code_groups, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_pad_id", codec_pad_id, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_bos_id", codec_bos_id, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_eos_token_id", codec_eos_id, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_nothink_id", codec_nothink_id, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_think_bos_id", codec_think_bos_id, -1),
  QOMNI_INT_FIELD (QomniTalkerConfig, "codec_think_eos_id", codec_think_eos_id, -1),
};

static const QomniIntField qomni_top_token_fields[] = {
  QOMNI_INT_FIELD (QomniConfig, "im_start_token_id", im_start_token_id, 151644),
  QOMNI_INT_FIELD (QomniConfig, "im_end_token_id", im_end_token_id, 151645),
  QOMNI_INT_FIELD (QomniConfig, "system_token_id", system_token_id, 8948),
  QOMNI_INT_FIELD (QomniConfig, "user_token_id", user_token_id, 872),
  QOMNI_INT_FIELD (QomniConfig, "assistant_token_id", assistant_token_id, 77091),
  QOMNI_INT_FIELD (QomniConfig, "tts_pad_token_id", tts_pad_token_id, 151671),
  QOMNI_INT_FIELD (QomniConfig, "tts_bos_token_id", tts_bos_token_id, 151672),
  QOMNI_INT_FIELD (QomniConfig, "tts_eos_token_id", tts_eos_token_id, 151673),
};

static inline int *
qomni_int_field (const QomniIntField *f, void *base)
{
  return (int *) ((char *) base + f->offset);
}
