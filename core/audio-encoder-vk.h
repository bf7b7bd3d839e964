/* qomni — the AuT audio encoder on the Vulkan device (the math of audio-encoder.c).
 *
 *   QomniVkAudioEncoder *g = qomni_vk_audio_encoder_new (vk, weights, config,
 *                                                        QOMNI_DTYPE_BF16, &error);
 *   qomni_vk_audio_encoder_encode (g, features, T, out, &error);   // [128, T] -> [A, 2048]
 *   qomni_vk_audio_encoder_free (g);
 *
 * Applications use qomni_audio_encoder_new_on (audio-encoder.h), which wraps this.
 *
 * One encode is one command buffer, submitted once. Chunks of 100 mel frames go through
 * the three convolutions as im2col + the tiled matmul (a few chunks at a time, so the
 * im2col scratch stays under 64 MiB), conv_out writes straight into the layer input (which
 * holds the sinusoids already), and up to 16 attention windows (1664 tokens, about two
 * minutes of audio) run through the layers as one batch, attention confined to each window.
 * Longer audio takes several such passes inside the same command buffer, so the device's
 * scratch is fixed at creation whatever the length (only the host-visible features and
 * result buffers grow, to the longest audio seen). Weights stay in their stored dtype;
 * conv_out's columns are reordered at upload to the order the GPU front end produces (a
 * quantized conv_out is dequantized to f32 for that). The weights are uploaded once per
 * (device, weight store) and shared by every encoder made from them (qomni_vk_shared_get),
 * each with its own scratch; random ones (weights NULL) are each encoder's own.
 */
#pragma once

#include "config.h"
#include "tensor.h"
#include "vk-device.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniVkAudioEncoder QomniVkAudioEncoder;

/* (transfer full) weights NULL: random weights of random_dtype (f32 or bf16) made on the
 * GPU, for benchmarks. vk and weights are borrowed. */
QomniVkAudioEncoder *qomni_vk_audio_encoder_new (QomniVk *vk, const QomniWeights *weights,
                                                 const QomniConfig *config,
                                                 QomniDType random_dtype, GError **error);
void qomni_vk_audio_encoder_free (QomniVkAudioEncoder *enc);

int qomni_vk_audio_encoder_output_dim (const QomniVkAudioEncoder *enc);
int qomni_vk_audio_encoder_n_tokens (const QomniVkAudioEncoder *enc, int n_frames);

/* features [n_mels, T] -> out [n_tokens, output_dim], as qomni_audio_encoder_encode. */
gboolean qomni_vk_audio_encoder_encode (QomniVkAudioEncoder *enc, const float *features,
                                        int n_frames, float *out, GError **error);

G_END_DECLS
