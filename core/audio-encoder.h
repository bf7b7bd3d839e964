/* qomni — the thinker's audio encoder ("AuT", architecture notes §4) on the CPU.
 *
 *   QomniAudioEncoder *enc = qomni_audio_encoder_new (weights, config, &error);
 *   int n_tok = qomni_audio_encoder_n_tokens (enc, T);
 *   float *rows = g_new (float, n_tok * qomni_audio_encoder_output_dim (enc));
 *   qomni_audio_encoder_encode (enc, features, T, rows, &error);   // features [128, T]
 *   qomni_thinker_prefill (thinker, ids, n, rows, n_tok, NULL, 0, logits, &error);
 *   qomni_audio_encoder_free (enc);
 *
 * One call encodes one audio: the mel frames are cut into 100-frame chunks (the tail chunk
 * zero-padded to the common chunk length), each chunk goes through three stride-2 3×3
 * convolutions with GELU, conv_out and sinusoidal positions that restart per chunk; the
 * valid tokens (ceil(r/8) for a chunk of r frames) pass 32 pre-LayerNorm layers whose
 * attention is bidirectional inside windows of n_window_infer frames (8 chunks, 104 tokens
 * in the release) and blind across them; then ln_post, proj1, GELU, proj2.
 *
 * Windows are independent, so the encoder runs one window at a time and its memory does
 * not grow with the length of the audio: all scratch is sized at creation for one window.
 * The weights are borrowed and must outlive the encoder. Not thread-safe.
 */
#pragma once

#include "config.h"
#include "weights.h"

#include <stdint.h>

G_BEGIN_DECLS

typedef struct _QomniAudioEncoder QomniAudioEncoder;

typedef struct _QomniVk QomniVk;

/* The sizes both encoders (CPU and Vulkan) support; QOMNI_ERROR_UNSUPPORTED naming them
 * otherwise. */
gboolean qomni_audio_config_check (const QomniAudioConfig *audio, GError **error);
/* (transfer full) Reads thinker.audio_tower.* with shape checks against
 * config->thinker.audio. */
QomniAudioEncoder *qomni_audio_encoder_new (const QomniWeights *weights,
                                            const QomniConfig *config, GError **error);
/* The same on a Vulkan device (borrowed; vk NULL: the CPU). Encode behaves alike: one
 * command buffer per call (audio-encoder-vk.h); tracing is refused there
 * (QOMNI_ERROR_UNSUPPORTED from encode: the stages stay on the GPU). Without Vulkan in
 * this build a non-NULL vk is QOMNI_ERROR_UNSUPPORTED. */
QomniAudioEncoder *qomni_audio_encoder_new_on (const QomniWeights *weights,
                                               const QomniConfig *config, QomniVk *vk,
                                               GError **error);
gboolean qomni_audio_encoder_on_gpu (const QomniAudioEncoder *enc);
void qomni_audio_encoder_free (QomniAudioEncoder *enc);

/* Width of each output row (the thinker's hidden size: `output_dim`, 2048 in the release). */
int qomni_audio_encoder_output_dim (const QomniAudioEncoder *enc);

/* Tokens produced for T mel frames: 13·floor(T/100) + ceil((T mod 100)/8) for the release
 * (computed from n_window). 0 for T <= 0. */
int qomni_audio_encoder_n_tokens (const QomniAudioEncoder *enc, int n_frames);

/* features [n_mels, T] (as qomni_mel_compute writes them) -> out [n_tokens, output_dim].
 * T must be >= 1 (QOMNI_ERROR_INVALID_INPUT otherwise). */
gboolean qomni_audio_encoder_encode (QomniAudioEncoder *enc, const float *features,
                                     int n_frames, float *out, GError **error);

/* Optional per-stage observer for tests and dumps: name is the reference's module name
 * ("conv2d1", "conv2d2", "conv2d3", "conv_out", "layers.0", …, "ln_post", "proj1", "proj2")
 * and data is that module's output as a PyTorch forward hook sees it, so before the GELU
 * that follows conv2dN and proj1, and before the positions are added to conv_out. Layouts
 * are the reference trace's: conv2dN [chunks, C, F, W], conv_out [chunks, W3, d_model]
 * (padded tail positions included), the rest [tokens, width]. Every stage is reported once
 * per encode call, after the whole audio has been processed; data is only valid during the
 * call. Tracing keeps every stage of the whole audio in memory. */
typedef void (*QomniAudioTraceFn) (const char *name, const float *data, const int64_t *shape,
                                   int ndim, gpointer user);
void qomni_audio_encoder_set_trace (QomniAudioEncoder *enc, QomniAudioTraceFn fn,
                                    gpointer user);

G_END_DECLS
