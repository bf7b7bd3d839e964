/* Code2Wav on the Vulkan path (tiny-omni fixture, float32 weights) against the CPU decoder
 * and against transformers. Exit 77 without a device.
 *
 * - Each stage fed the reference's input (through the trace hook): within 1e-5 of the
 *   reference (max-abs relative error, as test-speech checks the CPU), so every GPU stage
 *   is exact up to float32 summation order.
 * - End to end, the waveforms of code2wav.codes (whole, and chunked 16/5): NMSE ≤ 1e-6
 *   against the CPU decoder, and within WAV_TOL (1e-2 max abs) of the reference as the CPU
 *   test allows. The fixture's random vocoder swings to ±92 before the clamp and
 *   amplifies float32 rounding ~100× through the decoder blocks: the CPU itself is ~4.6e-3
 *   from the reference, and the GPU, summing in another order, is as far from both.
 * - The frame-by-frame stream 16/5 equals the chunked decode exactly.
 * - A second decoder of the same store shares the weights: no device memory at creation,
 *   the same samples bit for bit, still working after the first is freed.
 */
#include "refs.h"
#include "code2wav.h"
#include "config.h"
#include "error.h"
#include "vk-device.h"

#include <stdio.h>
#include <string.h>

#define STAGE_TOL 1e-5
#define WAV_TOL 1e-2
#define GPU_CPU_NMSE 1e-6

static int failures;
static QomniWeights *refs;

static void
check (const char *what, double err, double tol)
{
  const gboolean ok = err <= tol;
  failures += !ok;
  printf ("%s %-52s %.2e (max %.0e)\n", ok ? "ok  " : "FAIL", what, err, tol);
}

typedef struct {
  gboolean seen[8];
} StageCheck;

/* Compares a stage with the reference and replaces it by the reference, so each stage is
 * measured on its own. The reference is channel-major [C, T] (pre_transformer: [T, C]). */
static void
trace_inject (const char *stage, float *x, int T, int C, gpointer user)
{
  StageCheck *sc = user;
  g_autofree char *name = g_strdup_printf ("trace.code2wav.%s", stage);
  const QomniTensor *rt = qomni_weights_find (refs, name);
  if (!rt)
    return;
  g_assert_cmpint (qomni_tensor_nelements (rt), ==, (int64_t) T * C);
  const gboolean time_major = g_str_equal (stage, "pre_transformer");
  const float *r = rt->data;
  g_autofree float *got = g_new (float, (gsize) T * C);
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++)
      got[time_major ? (gsize) t * C + c : (gsize) c * T + t] = x[(gsize) t * C + c];
  g_autofree char *what = g_strdup_printf ("%s from the reference input", name);
  check (what, rel_error (got, r, (int64_t) T * C), STAGE_TOL);
  if (g_str_has_prefix (stage, "decoder."))
    sc->seen[atoi (stage + 8)] = TRUE;
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++)
      x[(gsize) t * C + c] = r[time_major ? (gsize) t * C + c : (gsize) c * T + t];
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    g_error_free (error);
    return 77;
  }
  RefsTiny tiny;
  refs_tiny_load (&tiny);
  refs = tiny.refs;
  QomniCode2Wav *cpu = qomni_code2wav_new (tiny.w, tiny.cfg, &error);
  g_assert_no_error (error);
  QomniCode2Wav *gpu = qomni_code2wav_new_on (tiny.w, tiny.cfg, vk, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qomni_code2wav_samples_per_frame (gpu), ==, 1920);
  g_assert_cmpint (qomni_code2wav_trim (gpu), ==, 555);
  int n_codes;
  g_autofree int *codes = refs_ints (refs, "code2wav.codes", &n_codes);
  g_assert_cmpint (n_codes, ==, 16 * 40);

  /* every stage on its own */
  float *wav, *ref_wav;
  int n, n_ref;
  StageCheck sc = { { FALSE } };
  qomni_code2wav_set_trace (gpu, trace_inject, &sc);
  g_assert_true (qomni_code2wav_decode (gpu, codes, 40, &wav, &n, &error));
  g_assert_no_error (error);
  qomni_code2wav_set_trace (gpu, NULL, NULL);
  for (int i = 0; i <= 6; i++)
    g_assert_true (sc.seen[i]);
  g_assert_cmpint (n, ==, 76245);
  check ("code2wav.wav (clamp of the reference decoder.6)", rel_error (wav, refs_f32 (refs,
         "code2wav.wav", n), n), 1e-7);
  g_free (wav);

  /* end to end: one call, then chunks of 16 with 5 frames of left context */
  for (int chunked = 0; chunked < 2; chunked++) {
    const char *rname = chunked ? "code2wav.wav_chunked_16_5" : "code2wav.wav";
    gint64 t0 = g_get_monotonic_time ();
    gboolean ok = chunked ? qomni_code2wav_chunked_decode (gpu, codes, 40, 16, 5, &wav, &n, &error)
                          : qomni_code2wav_decode (gpu, codes, 40, &wav, &n, &error);
    const double dt = (g_get_monotonic_time () - t0) * 1e-6;
    g_assert_no_error (error);
    g_assert_true (ok);
    ok = chunked ? qomni_code2wav_chunked_decode (cpu, codes, 40, 16, 5, &ref_wav, &n_ref, &error)
                 : qomni_code2wav_decode (cpu, codes, 40, &ref_wav, &n_ref, &error);
    g_assert_no_error (error);
    g_assert_cmpint (n, ==, n_ref);
    g_assert_cmpint (n, ==, chunked ? 75135 : 76245);
    char what[96];
    snprintf (what, sizeof what, "%s: GPU vs CPU (nmse)", rname);
    check (what, nmse (wav, ref_wav, n), GPU_CPU_NMSE);
    snprintf (what, sizeof what, "%s: GPU vs reference (max abs)", rname);
    check (what, rel_error (wav, refs_f32 (refs, rname, n), n), WAV_TOL);
    snprintf (what, sizeof what, "%s: CPU vs reference (max abs)", rname);
    check (what, rel_error (ref_wav, refs_f32 (refs, rname, n), n), WAV_TOL);
    printf ("# %s on %s: %.3f s for 3.2 s of speech\n", rname, qomni_vk_device_name (vk), dt);
    g_free (ref_wav);
    if (!chunked) {
      g_free (wav);
      continue;
    }

    /* streamed frame by frame: the same samples as the chunked call */
    QomniCode2WavStream *s = qomni_code2wav_stream_new (gpu, 16, 5, &error);
    g_assert_no_error (error);
    g_autofree float *all = g_new (float, n);
    int done = 0;
    for (int f = 0; f <= 40; f++) {
      int frame[16];
      for (int q = 0; q < 16; q++)
        frame[q] = codes[q * 40 + (f < 40 ? f : 0)];
      float *part;
      int np;
      ok = f < 40 ? qomni_code2wav_stream_push (s, frame, &part, &np, &error)
                  : qomni_code2wav_stream_finish (s, &part, &np, &error);
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (done + np, <=, n);
      if (np)
        memcpy (all + done, part, sizeof (float) * np);
      done += np;
      g_free (part);
    }
    g_assert_cmpint (done, ==, n);
    check ("streamed 16/5 vs chunked 16/5 on the GPU (nmse)", nmse (all, wav, n), 0.0);
    qomni_code2wav_stream_free (s);
    g_free (wav);
  }

  /* a call longer than one dispatch grid holds (5000 frames = 9.6 M samples): a clear
   * error, and the decoder still works afterwards */
  {
    const int F = 5000;
    g_autofree int *many = g_new0 (int, 16 * F);
    g_assert_false (qomni_code2wav_decode (gpu, many, F, &wav, &n, &error));
    g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED);
    printf ("# %s\n", error->message);
    g_clear_error (&error);
    g_assert_true (qomni_code2wav_decode (gpu, many, 3, &wav, &n, &error));
    g_assert_no_error (error);
    g_assert_cmpint (n, ==, 3 * 1920 - 555);
    g_free (wav);
  }

  /* a second decoder of the same store shares the first's upload: it adds no device memory
   * until it runs (its activations come with its first call), gives the first's samples
   * bit for bit, and keeps working once the first is freed */
  {
    const uint64_t before = qomni_vk_allocated (vk);
    QomniCode2Wav *gpu2 = qomni_code2wav_new_on (tiny.w, tiny.cfg, vk, &error);
    g_assert_no_error (error);
    const uint64_t added = qomni_vk_allocated (vk) - before;
    float *wav1, *wav2, *wav3;
    int n1, n2, n3;
    g_assert_true (qomni_code2wav_decode (gpu, codes, 40, &wav1, &n1, &error));
    g_assert_true (qomni_code2wav_decode (gpu2, codes, 40, &wav2, &n2, &error));
    qomni_code2wav_free (gpu);
    g_assert_true (qomni_code2wav_decode (gpu2, codes, 40, &wav3, &n3, &error));
    const gboolean same = n1 == n2 && n1 == n3
                          && memcmp (wav1, wav2, sizeof (float) * (size_t) n1) == 0
                          && memcmp (wav1, wav3, sizeof (float) * (size_t) n1) == 0;
    printf ("%s a second decoder: +%" G_GUINT64_FORMAT " B at creation (want 0), samples "
            "%s the first's, before and after the first is freed\n",
            added == 0 && same ? "ok  " : "FAIL", added, same ? "equal" : "differ from");
    failures += added != 0 || !same;
    g_free (wav1);
    g_free (wav2);
    g_free (wav3);
    gpu = gpu2;
  }

  /* bad input: a clear error, nothing decoded */
  codes[3] = 5000;
  g_assert_false (qomni_code2wav_decode (gpu, codes, 40, &wav, &n, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  qomni_code2wav_free (gpu);
  qomni_code2wav_free (cpu);
  refs_tiny_clear (&tiny);
  qomni_vk_free (vk);
  printf ("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
