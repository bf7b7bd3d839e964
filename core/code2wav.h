/* qomni — Code2Wav: codec frames to a 24 kHz waveform (architecture notes §10).
 *
 *   QomniCode2Wav *c = qomni_code2wav_new (weights, config, &error);
 *   float *wav; int n;
 *   qomni_code2wav_chunked_decode (c, codes, n_frames, 300, 25, &wav, &n, &error);
 *   ...
 *   g_free (wav);
 *   qomni_code2wav_free (c);
 *
 * Streaming, frame by frame, with the same output as chunked_decode (chunk, left):
 *
 *   QomniCode2WavStream *s = qomni_code2wav_stream_new (c, 16, 5, &error);
 *   for each frame:  qomni_code2wav_stream_push (s, frame16, &wav, &n, &error);  // n may be 0
 *   at the end:      qomni_code2wav_stream_finish (s, &wav, &n, &error);
 *
 * Layout: `codes` are codebook-major [num_quantizers, n_frames] (row q holds codebook q),
 * as the reference passes them; a streamed frame is its num_quantizers codes. Every code
 * must lie in [0, codebook_size); anything else is a QOMNI_ERROR_INVALID_INPUT.
 *
 * One decode call of F frames yields upsample·F − trim samples (1920·F − 555 for the
 * release): each k = 2s transposed convolution loses one step (pitfall 24), and the
 * pre-transformer positions restart at 0 every call. Scratch memory grows to the largest
 * call seen and is then reused; a decoder is not thread-safe.
 */
#pragma once

#include "config.h"
#include "weights.h"

G_BEGIN_DECLS

typedef struct _QomniCode2Wav QomniCode2Wav;
typedef struct _QomniCode2WavStream QomniCode2WavStream;

/* Observes intermediate stages: "pre_transformer" (after its final norm), "upsample.0",
 * "upsample.1", "decoder.0" … "decoder.6" (decoder.6 is before the clamp). x is
 * time-major [T, C]; the hook may change it (tests feed reference values to one stage). */
typedef void (*QomniCode2WavTrace) (const char *stage, float *x, int T, int C, gpointer user);

/* (transfer full) Weights are borrowed and must outlive the decoder. */
QomniCode2Wav *qomni_code2wav_new (const QomniWeights *weights, const QomniConfig *config,
                                   GError **error);
/* The same on a Vulkan device (borrowed; vk NULL: the CPU). Every call below behaves alike;
 * a decode call is one submission to the device (code2wav-vk.h). A build without Vulkan
 * answers QOMNI_ERROR_UNSUPPORTED for a device. */
typedef struct _QomniVk QomniVk;
QomniCode2Wav *qomni_code2wav_new_on (const QomniWeights *weights, const QomniConfig *config,
                                      QomniVk *vk, GError **error);
void qomni_code2wav_free (QomniCode2Wav *c);

int qomni_code2wav_num_quantizers (const QomniCode2Wav *c);
int qomni_code2wav_codebook_size (const QomniCode2Wav *c);
/* Samples per codec frame (1920) and samples each decode call loses at its end (555). */
int qomni_code2wav_samples_per_frame (const QomniCode2Wav *c);
int qomni_code2wav_trim (const QomniCode2Wav *c);

void qomni_code2wav_set_trace (QomniCode2Wav *c, QomniCode2WavTrace trace, gpointer user);

/* One call over all frames: codes [Q, n_frames] → *wav (transfer full)
 * [samples_per_frame·n_frames − trim]. n_frames must be ≥ 1. */
gboolean qomni_code2wav_decode (QomniCode2Wav *c, const int *codes, int n_frames, float **wav,
                                int *n_samples, GError **error);

/* The reference's chunked_decode: chunks of `chunk` frames, each decoded with up to
 * `left_context` frames before it whose samples are dropped. Each chunk yields
 * samples_per_frame·len − trim samples. Zero frames give an empty waveform (*wav NULL). */
gboolean qomni_code2wav_chunked_decode (QomniCode2Wav *c, const int *codes, int n_frames,
                                        int chunk, int left_context, float **wav,
                                        int *n_samples, GError **error);

/* (transfer full) An incremental chunked decoder over `c` (borrowed). */
QomniCode2WavStream *qomni_code2wav_stream_new (QomniCode2Wav *c, int chunk, int left_context,
                                                GError **error);
void qomni_code2wav_stream_free (QomniCode2WavStream *s);
/* Adds one frame (codes [Q]). When `chunk` frames are pending they are decoded and
 * *wav (transfer full) receives the new samples; otherwise *wav = NULL, *n_samples = 0.
 * A frame with a bad code is refused and the stream is unchanged. */
gboolean qomni_code2wav_stream_push (QomniCode2WavStream *s, const int *frame, float **wav,
                                     int *n_samples, GError **error);
/* Decodes the pending frames (if any) and starts the stream afresh. */
gboolean qomni_code2wav_stream_finish (QomniCode2WavStream *s, float **wav, int *n_samples,
                                       GError **error);
/* Frames pushed but not decoded yet. */
int qomni_code2wav_stream_pending (const QomniCode2WavStream *s);

G_END_DECLS
