/* qomni — log-mel features (architecture notes §3). */
#include "mel.h"
#include "error.h"

#include <gst/fft/gstfftf32.h>
#include <float.h>
#include <math.h>
#include <string.h>

#define N_BINS (QOMNI_MEL_N_FFT / 2 + 1)   /* 201 bins, 40 Hz apart */
#define HALF_FFT (QOMNI_MEL_N_FFT / 2)     /* reflect padding on each side (center=True) */

typedef struct {
  int lo, n;        /* the filter's non-zero bins are [lo, lo + n) */
  float *w;         /* [n] */
} MelFilter;

struct _QomniMel {
  int n_mels;
  float window[QOMNI_MEL_N_FFT];       /* periodic Hann */
  MelFilter *filters;                  /* [n_mels] */
  GstFFTF32 *fft;
  float frame[QOMNI_MEL_N_FFT];        /* windowed frame */
  GstFFTF32Complex spec[N_BINS];
  float power[N_BINS];
};

/* Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa htk=False). */
static double
hz_to_mel (double f)
{
  if (f < 1000.0)
    return 3.0 * f / 200.0;
  return 15.0 + 27.0 * log (f / 1000.0) / log (6.4);
}

static double
mel_to_hz (double m)
{
  if (m < 15.0)
    return 200.0 * m / 3.0;
  return 1000.0 * exp (log (6.4) * (m - 15.0) / 27.0);
}

QomniMel *
qomni_mel_new (int n_mels)
{
  g_return_val_if_fail (n_mels > 0, NULL);
  QomniMel *m = g_new0 (QomniMel, 1);
  m->n_mels = n_mels;
  m->fft = gst_fft_f32_new (QOMNI_MEL_N_FFT, FALSE);

  /* torch.hann_window (400, periodic=True): w[n] = 0.5 − 0.5·cos(2πn/400). */
  for (int n = 0; n < QOMNI_MEL_N_FFT; n++)
    m->window[n] = (float) (0.5 - 0.5 * cos (2.0 * G_PI * n / QOMNI_MEL_N_FFT));

  /* Filter bank as transformers' mel_filter_bank (norm="slaney", mel_scale="slaney")
   * builds it in float64 before the processor casts it to float32: n_mels + 2 points evenly
   * spaced in mel over 0..8000 Hz, triangles between neighbours, each row scaled by
   * 2 / (f[k+2] − f[k]) so that every filter has the same area. */
  const double mel_max = hz_to_mel (QOMNI_MEL_SAMPLE_RATE / 2.0);
  g_autofree double *f = g_new (double, n_mels + 2);
  const double step = mel_max / (n_mels + 1);   /* np.linspace: start + i·step, exact end */
  for (int i = 0; i < n_mels + 2; i++)
    f[i] = mel_to_hz (i == n_mels + 1 ? mel_max : i * step);
  m->filters = g_new0 (MelFilter, n_mels);
  double row[N_BINS];
  for (int k = 0; k < n_mels; k++) {
    const double enorm = 2.0 / (f[k + 2] - f[k]);
    int lo = -1, hi = -1;
    for (int j = 0; j < N_BINS; j++) {
      const double b = (double) j * QOMNI_MEL_SAMPLE_RATE / QOMNI_MEL_N_FFT;
      const double down = (b - f[k]) / (f[k + 1] - f[k]);
      const double up = (f[k + 2] - b) / (f[k + 2] - f[k + 1]);
      row[j] = MAX (0.0, MIN (down, up)) * enorm;
      if (row[j] > 0.0) {
        if (lo < 0)
          lo = j;
        hi = j + 1;
      }
    }
    /* With many mel bins a low filter can fall between two FFT bins and stay all zero,
     * as it does in the reference. */
    MelFilter *mf = &m->filters[k];
    mf->lo = MAX (lo, 0);
    mf->n = lo < 0 ? 0 : hi - lo;
    mf->w = g_new (float, MAX (mf->n, 1));
    for (int j = 0; j < mf->n; j++)
      mf->w[j] = (float) row[mf->lo + j];
  }
  return m;
}

void
qomni_mel_free (QomniMel *m)
{
  if (!m)
    return;
  for (int k = 0; k < m->n_mels; k++)
    g_free (m->filters[k].w);
  g_free (m->filters);
  if (m->fft)
    gst_fft_f32_free (m->fft);
  g_free (m);
}

int
qomni_mel_n_frames (int n_samples)
{
  return n_samples > 0 ? n_samples / QOMNI_MEL_HOP : 0;
}

/* Sample i of the reflect-padded signal (i may lie before 0 or past n − 1): mirrored at the
 * ends without repeating the edge sample, as torch.stft (center=True, pad_mode="reflect").
 * torch refuses a pad as long as the signal (n ≤ 200); for such short signals the mirror
 * repeats (period 2(n − 1)), as numpy's reflect padding does. */
static inline float
sample_at (const float *pcm, int n, int i)
{
  if (i < 0 || i >= n) {
    if (n == 1)
      i = 0;
    else {
      const int period = 2 * (n - 1);
      i %= period;
      if (i < 0)
        i += period;
      if (i >= n)
        i = period - i;
    }
  }
  const float v = pcm[i];
  return isfinite (v) ? v : 0.0f;
}

gboolean
qomni_mel_compute (QomniMel *m, const float *pcm, int n_samples, float *features,
                   GError **error)
{
  g_return_val_if_fail (m != NULL && features != NULL, FALSE);
  const int T = qomni_mel_n_frames (n_samples);
  if (T <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "%d audio samples are too few for one mel frame (at least %d are needed "
                 "at 16 kHz)", MAX (n_samples, 0), QOMNI_MEL_HOP);
    return FALSE;
  }
  g_return_val_if_fail (pcm != NULL, FALSE);
  const int n_mels = m->n_mels;
  float max_log = -INFINITY;

  for (int t = 0; t < T; t++) {
    /* Frame t covers samples [160t − 200, 160t + 200) of the unpadded signal. */
    const int start = t * QOMNI_MEL_HOP - HALF_FFT;
    if (start >= 0 && start + QOMNI_MEL_N_FFT <= n_samples) {
      const float *src = pcm + start;
      for (int i = 0; i < QOMNI_MEL_N_FFT; i++)
        m->frame[i] = (isfinite (src[i]) ? src[i] : 0.0f) * m->window[i];
    } else {
      for (int i = 0; i < QOMNI_MEL_N_FFT; i++)
        m->frame[i] = sample_at (pcm, n_samples, start + i) * m->window[i];
    }
    /* Power spectrum |X|² of the 201 non-negative frequencies (unnormalised DFT, as
     * torch.stft with normalized=False). */
    gst_fft_f32_fft (m->fft, m->frame, m->spec);
    for (int j = 0; j < N_BINS; j++)
      m->power[j] = m->spec[j].r * m->spec[j].r + m->spec[j].i * m->spec[j].i;

    /* mel [n_mels] = filters [n_mels, 201] · power [201], then log10 with the 1e-10 floor. */
    for (int k = 0; k < n_mels; k++) {
      const MelFilter *mf = &m->filters[k];
      double acc = 0.0;
      for (int j = 0; j < mf->n; j++)
        acc += (double) mf->w[j] * m->power[mf->lo + j];
      /* The floor also catches NaN; the ceiling keeps absurdly loud (finite) input finite. */
      if (!(acc >= 1e-10))
        acc = 1e-10;
      else if (acc > FLT_MAX)
        acc = FLT_MAX;
      const float l = log10f ((float) acc);
      features[(gsize) k * T + t] = l;
      max_log = MAX (max_log, l);
    }
  }

  /* Dynamic range: nothing below (max − 8) over the utterance, then (x + 4) / 4. */
  const float floor_log = max_log - 8.0f;
  const gsize total = (gsize) n_mels * T;
  for (gsize i = 0; i < total; i++)
    features[i] = (MAX (features[i], floor_log) + 4.0f) / 4.0f;
  return TRUE;
}
