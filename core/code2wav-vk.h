/* qomni — Code2Wav on the Vulkan device (the math of code2wav.c). Reached through
 * qomni_code2wav_new_on (weights, config, vk, &error); callers keep the code2wav.h API.
 *
 * Weights are uploaded once per (device, weight store) and shared by every decoder made
 * from them (qomni_vk_shared_get; each has its own activations): the code embedding, the pre-transformer's matrices and every
 * convolution kernel in their stored dtype and PyTorch layout (f32, f16 or bf16; anything
 * else is converted to f32), the small vectors (biases, norms, layer scales, SnakeBeta's
 * exp α and 1/(exp β + 1e-9)) in one f32 buffer. Activations are planned for the largest
 * call seen and grow like the CPU's scratch. One decode call is one command buffer,
 * submitted once: codes and RoPE tables go in through a host-visible buffer, the samples
 * come back through another; nothing is read back in between.
 */
#pragma once

#include "code2wav.h"
#include "vk-device.h"

G_BEGIN_DECLS

typedef struct _QomniVkCode2Wav QomniVkCode2Wav;

/* (transfer full) vk and the weights are borrowed. */
QomniVkCode2Wav *qomni_vk_code2wav_new (QomniVk *vk, const QomniWeights *weights,
                                        const QomniConfig *config, GError **error);
void qomni_vk_code2wav_free (QomniVkCode2Wav *g);

int qomni_vk_code2wav_samples_per_frame (const QomniVkCode2Wav *g);
int qomni_vk_code2wav_trim (const QomniVkCode2Wav *g);
/* The stages of QomniCode2WavTrace, read back after each (a submission per stage while a
 * trace is set; what the hook writes is uploaded again). */
void qomni_vk_code2wav_set_trace (QomniVkCode2Wav *g, QomniCode2WavTrace trace, gpointer user);

/* One Code2Wav call over nf frames, codes [Q, ·] with row stride `stride` (already checked
 * to lie in the codebook): writes the clamped samples from skip·spf on into
 * out [nf·spf − trim − skip·spf]. */
gboolean qomni_vk_code2wav_run (QomniVkCode2Wav *g, const int *codes, int stride, int nf,
                                int skip, float *out, GError **error);

G_END_DECLS
