/* qomni — the audio front end: Whisper-style log-mel features as Qwen3-Omni's processor
 * computes them (architecture notes §3).
 *
 *   QomniMel *m = qomni_mel_new (128);
 *   int T = qomni_mel_n_frames (n_samples);
 *   float *features = g_new (float, 128 * T);                 // [128, T]
 *   if (!qomni_mel_compute (m, pcm, n_samples, features, &error))
 *     ...
 *   qomni_mel_free (m);
 *
 * Input: mono float PCM at 16 kHz (resample beforehand). Recipe: reflect padding of 200
 * samples on both sides, 400-point frames every 160 samples, periodic Hann window, power
 * spectrum (201 bins), 128 Slaney mel filters with Slaney area normalisation over 0..8000 Hz,
 * log10 (max(mel, 1e-10)), clamp to (max − 8) over the whole utterance, (x + 4) / 4; the last
 * STFT frame is dropped, so T = floor(n_samples / 160).
 *
 * A QomniMel holds the filter bank, the window and an FFT plan; it is not thread-safe
 * (use one per thread). Utterances are processed one at a time: the (max − 8) clamp is per
 * call, as for a batch of one in the reference.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QOMNI_MEL_SAMPLE_RATE 16000
#define QOMNI_MEL_N_FFT 400
#define QOMNI_MEL_HOP 160

typedef struct _QomniMel QomniMel;

/* (transfer full) n_mels: 128 for Qwen3-Omni. */
QomniMel *qomni_mel_new (int n_mels);
void qomni_mel_free (QomniMel *m);

/* Number of mel frames for n samples: floor(n / 160). */
int qomni_mel_n_frames (int n_samples);

/* Writes features [n_mels, T] (row-major, mel-bin major like the reference),
 * T = qomni_mel_n_frames (n_samples). Non-finite samples are treated as 0. n_samples must
 * be >= 1; returns FALSE with a GError (QOMNI_ERROR_INVALID_INPUT) when T would be 0. */
gboolean qomni_mel_compute (QomniMel *m, const float *pcm, int n_samples, float *features,
                            GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniMel, qomni_mel_free)

G_END_DECLS
