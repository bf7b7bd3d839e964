/* qomni — image and video preprocessing (architecture notes §5). */
#include "image.h"
#include "error.h"

#include <math.h>
#include <string.h>

const QomniImageParams QOMNI_IMAGE_PARAMS_DEFAULT = {
  .patch_size = 16,
  .temporal_patch_size = 2,
  .merge_size = 2,
  .min_pixels = 3136,
  .max_pixels = 12845056,
  .max_input_pixels = 178956970,
  .mean = { 0.5f, 0.5f, 0.5f },
  .std = { 0.5f, 0.5f, 0.5f },
};

const QomniImageParams QOMNI_VIDEO_PARAMS_DEFAULT = {
  .patch_size = 16,
  .temporal_patch_size = 2,
  .merge_size = 2,
  .min_pixels = 128 * 32 * 32,
  .max_pixels = 768 * 32 * 32,
  .max_input_pixels = 178956970,
  .mean = { 0.5f, 0.5f, 0.5f },
  .std = { 0.5f, 0.5f, 0.5f },
};

/* Pillow's fixed-point precision for 8-bit images: 32 − 8 − 2 bits of fraction. */
#define PRECISION_BITS 22

static gboolean
check_params (const QomniImageParams *p, GError **error)
{
  if (p->patch_size <= 0 || p->merge_size <= 0 || p->temporal_patch_size <= 0
      || p->patch_size > 1024 || p->merge_size > 64 || p->temporal_patch_size > 64
      || p->min_pixels < 0 || p->max_pixels < (int64_t) p->patch_size * p->merge_size
                                                * p->patch_size * p->merge_size
      || p->std[0] == 0.0f || p->std[1] == 0.0f || p->std[2] == 0.0f) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "invalid image parameters: patch %d, merge %d, temporal patch %d, pixels "
                 "[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (max must hold one merge block), "
                 "std must be non-zero", p->patch_size, p->merge_size, p->temporal_patch_size,
                 p->min_pixels, p->max_pixels);
    return FALSE;
  }
  return TRUE;
}

gboolean
qomni_image_smart_resize (int height, int width, const QomniImageParams *p, int *out_height,
                          int *out_width, GError **error)
{
  if (!check_params (p, error))
    return FALSE;
  if (height <= 0 || width <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image size %dx%d (width × height) is empty", width, height);
    return FALSE;
  }
  const double ratio = (double) MAX (height, width) / MIN (height, width);
  if (ratio > 200.0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image %dx%d: the aspect ratio %.1f is above the model's limit of 200; crop "
                 "or pad it first", width, height, ratio);
    return FALSE;
  }
  const double f = (double) p->patch_size * p->merge_size;
  const double h = height, w = width;
  /* Python's round() sends ties to even, as nearbyint does in the default mode. */
  double hb = nearbyint (h / f) * f, wb = nearbyint (w / f) * f;
  if (hb * wb > (double) p->max_pixels) {
    const double beta = sqrt (h * w / (double) p->max_pixels);
    hb = MAX (f, floor (h / beta / f) * f);
    wb = MAX (f, floor (w / beta / f) * f);
  } else if (hb * wb < (double) p->min_pixels) {
    /* Tiny images (even 1×1) are scaled up to the pixel budget, not refused: the current
     * reference dropped the old "smaller than the factor" error. */
    const double beta = sqrt ((double) p->min_pixels / (h * w));
    hb = ceil (h * beta / f) * f;
    wb = ceil (w * beta / f) * f;
  }
  /* Both branches keep the area near [min, max]; anything beyond int range means absurd
   * parameters. */
  if (hb < f || wb < f || hb > 1 << 20 || wb > 1 << 20) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image %dx%d cannot be resized within the pixel budget [%" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT "]", width, height, p->min_pixels, p->max_pixels);
    return FALSE;
  }
  *out_height = (int) hb;
  *out_width = (int) wb;
  return TRUE;
}

/* ---- Pillow's BICUBIC resampler (Resample.c) ---- */

static double
bicubic (double x)
{
  const double a = -0.5;
  x = fabs (x);
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0)
    return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/* One axis: for output index o, taps [first[o], first[o] + count[o]) of the input with
 * fixed-point weights k[o·ksize + i]. */
typedef struct {
  int ksize;
  int *first, *count;
  int32_t *k;
} Axis;

static void
axis_clear (Axis *a)
{
  g_free (a->first);
  g_free (a->count);
  g_free (a->k);
}

static gboolean
axis_plan (Axis *a, int in_size, int out_size)
{
  const double scale = (double) in_size / out_size;
  /* When shrinking, the filter is stretched by the factor: that is the antialiasing. */
  const double filterscale = MAX (scale, 1.0);
  const double support = 2.0 * filterscale;
  a->ksize = (int) ceil (support) * 2 + 1;
  a->first = g_try_new (int, out_size);
  a->count = g_try_new (int, out_size);
  a->k = g_try_new0 (int32_t, (gsize) out_size * a->ksize);
  double *w = g_try_new (double, a->ksize);
  if (!a->first || !a->count || !a->k || !w) {
    g_free (w);
    return FALSE;
  }
  for (int o = 0; o < out_size; o++) {
    const double center = (o + 0.5) * scale;
    /* (int) truncates toward zero, as in Pillow; negative starts clamp to 0 anyway. */
    int lo = (int) (center - support + 0.5);
    int hi = (int) (center + support + 0.5);
    lo = MAX (lo, 0);
    hi = MIN (hi, in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
      w[i] = bicubic ((i + lo - center + 0.5) / filterscale);
      sum += w[i];
    }
    for (int i = 0; i < n; i++) {
      const double v = sum != 0.0 ? w[i] / sum : w[i];
      const double fx = v * (double) (1 << PRECISION_BITS);
      a->k[(gsize) o * a->ksize + i] = (int32_t) (v < 0 ? fx - 0.5 : fx + 0.5);
    }
    a->first[o] = lo;
    a->count[o] = n;
  }
  g_free (w);
  return TRUE;
}

static inline guint8
clip8 (int32_t acc)
{
  if (acc < 0)
    return 0;
  acc >>= PRECISION_BITS;
  return acc > 255 ? 255 : (guint8) acc;
}

/* dst [out_w, 3] = horizontal pass over one source row [in_w, 3]. */
static void
resample_row (guint8 *dst, const guint8 *src, const Axis *ax, int out_w)
{
  for (int o = 0; o < out_w; o++) {
    const int32_t *k = ax->k + (gsize) o * ax->ksize;
    const guint8 *s = src + (gsize) ax->first[o] * 3;
    int32_t acc[3] = { 1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                       1 << (PRECISION_BITS - 1) };
    for (int i = 0; i < ax->count[o]; i++)
      for (int c = 0; c < 3; c++)
        acc[c] += (int32_t) s[i * 3 + c] * k[i];
    for (int c = 0; c < 3; c++)
      dst[o * 3 + c] = clip8 (acc[c]);
  }
}

gboolean
qomni_image_resize_rgb (const guint8 *src, int width, int height, int stride, guint8 *dst,
                        int out_width, int out_height, GError **error)
{
  g_return_val_if_fail (src != NULL && dst != NULL, FALSE);
  if (width <= 0 || height <= 0 || out_width <= 0 || out_height <= 0
      || stride < 3 * width) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "cannot resize a %dx%d RGB image (stride %d) to %dx%d", width, height, stride,
                 out_width, out_height);
    return FALSE;
  }
  const gsize row_out = (gsize) out_width * 3;
  const gboolean need_h = out_width != width, need_v = out_height != height;
  Axis ah = { 0 }, av = { 0 };
  guint8 *ring = NULL;
  int *tag = NULL;
  gboolean ok = TRUE;
  if (need_h)
    ok = axis_plan (&ah, width, out_width);
  if (ok && need_v) {
    ok = axis_plan (&av, height, out_height);
    /* The horizontal pass's rows live in a ring as long as the vertical filter: the
     * windows of consecutive output rows move forward, so the rows one output row needs
     * are consecutive and land in distinct slots. */
    ring = ok ? g_try_malloc ((gsize) av.ksize * row_out) : NULL;
    tag = ok ? g_try_new (int, av.ksize) : NULL;
    ok = ring && tag;
  }
  if (!ok) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory resizing a %dx%d image to %dx%d", width, height, out_width,
                 out_height);
    goto out;
  }
  if (!need_v) {
    for (int y = 0; y < height; y++) {
      const guint8 *s = src + (gsize) y * stride;
      if (need_h)
        resample_row (dst + y * row_out, s, &ah, out_width);
      else
        memcpy (dst + y * row_out, s, row_out);
    }
    goto out;
  }
  for (int i = 0; i < av.ksize; i++)
    tag[i] = -1;
  for (int o = 0; o < out_height; o++) {
    const int lo = av.first[o], n = av.count[o];
    for (int y = lo; y < lo + n; y++) {
      const int slot = y % av.ksize;
      if (tag[slot] == y)
        continue;
      const guint8 *s = src + (gsize) y * stride;
      if (need_h)
        resample_row (ring + slot * row_out, s, &ah, out_width);
      else
        memcpy (ring + slot * row_out, s, row_out);
      tag[slot] = y;
    }
    const int32_t *k = av.k + (gsize) o * av.ksize;
    guint8 *d = dst + (gsize) o * row_out;
    for (gsize x = 0; x < row_out; x++) {
      int32_t acc = 1 << (PRECISION_BITS - 1);
      for (int i = 0; i < n; i++)
        acc += (int32_t) ring[((lo + i) % av.ksize) * row_out + x] * k[i];
      d[x] = clip8 (acc);
    }
  }
out:
  axis_clear (&ah);
  axis_clear (&av);
  g_free (ring);
  g_free (tag);
  return ok;
}

/* ---- normalisation and patches ---- */

int
qomni_image_n_tokens (const int grid_thw[3], int merge_size)
{
  return grid_thw[0] * grid_thw[1] * grid_thw[2] / (merge_size * merge_size);
}

/* pixel_values rows in merge-block order from F resized frames [oh, ow, 3] (frame indexes
 * past F − 1 repeat the last frame). */
static void
patchify (float *out, guint8 *const *frames, int F, int grid_t, int oh, int ow,
          const QomniImageParams *p)
{
  const int P = p->patch_size, T = p->temporal_patch_size, M = p->merge_size;
  const int gh = oh / P, gw = ow / P, bh_n = gh / M, bw_n = gw / M;
  const gsize row_len = (gsize) 3 * T * P * P;
  /* The reference's fused rescale + normalise: (v − 255·mean) / (255·std) in float32. */
  float lut[3][256];
  for (int c = 0; c < 3; c++) {
    const float m = (float) (255.0 * p->mean[c]), s = (float) (255.0 * p->std[c]);
    for (int v = 0; v < 256; v++)
      lut[c][v] = ((float) v - m) / s;
  }
  gsize r = 0;
  for (int t = 0; t < grid_t; t++)
    for (int bh = 0; bh < bh_n; bh++)
      for (int bw = 0; bw < bw_n; bw++)
        for (int mh = 0; mh < M; mh++)
          for (int mw = 0; mw < M; mw++, r++) {
            float *o = out + r * row_len;
            const int y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
            /* [channel][frame][row][col] */
            for (int c = 0; c < 3; c++)
              for (int tp = 0; tp < T; tp++) {
                const guint8 *fr = frames[MIN (t * T + tp, F - 1)];
                for (int py = 0; py < P; py++) {
                  const guint8 *src = fr + ((gsize) (y0 + py) * ow + x0) * 3 + c;
                  for (int px = 0; px < P; px++)
                    *o++ = lut[c][src[px * 3]];
                }
              }
          }
}

static gboolean
check_input (int width, int height, int stride, const QomniImageParams *p, GError **error)
{
  if (width <= 0 || height <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image size %dx%d (width × height) is empty", width, height);
    return FALSE;
  }
  if ((int64_t) width * height > p->max_input_pixels) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image %dx%d has %" G_GINT64_FORMAT " pixels, more than the %" G_GINT64_FORMAT
                 " this build accepts; scale it down first", width, height,
                 (int64_t) width * height, p->max_input_pixels);
    return FALSE;
  }
  if ((int64_t) stride < (int64_t) width * 3) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "image rows of %d bytes cannot hold %d RGB pixels", stride, width);
    return FALSE;
  }
  return TRUE;
}

gboolean
qomni_video_preprocess (const guint8 *const *frames, int n_frames, int width, int height,
                        int stride, const QomniImageParams *p, float **pixel_values,
                        int grid_thw[3], GError **error)
{
  g_return_val_if_fail (frames != NULL && p != NULL && pixel_values != NULL, FALSE);
  *pixel_values = NULL;
  if (n_frames <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "a video needs at least one "
                 "frame (got %d)", n_frames);
    return FALSE;
  }
  int oh, ow;
  if (!check_params (p, error) || !check_input (width, height, stride, p, error)
      || !qomni_image_smart_resize (height, width, p, &oh, &ow, error))
    return FALSE;
  const int T = p->temporal_patch_size, P = p->patch_size;
  const int grid_t = (n_frames + T - 1) / T;
  const gsize frame_bytes = (gsize) oh * ow * 3;
  const gsize n_patches = (gsize) grid_t * (oh / P) * (ow / P);
  const gsize row_len = (gsize) 3 * T * P * P;
  const gboolean resize = oh != height || ow != width;

  guint8 **resized = g_new0 (guint8 *, n_frames);
  float *out = g_try_new (float, n_patches * row_len);
  gboolean ok = out != NULL;
  for (int f = 0; f < n_frames && ok; f++) {
    if (!frames[f]) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "video frame %d is NULL", f);
      ok = FALSE;
      break;
    }
    resized[f] = g_try_malloc (frame_bytes);
    if (!resized[f]) {
      ok = FALSE;
      break;
    }
    if (resize) {
      ok = qomni_image_resize_rgb (frames[f], width, height, stride, resized[f], ow, oh, error);
    } else {
      for (int y = 0; y < oh; y++)
        memcpy (resized[f] + (gsize) y * ow * 3, frames[f] + (gsize) y * stride, (gsize) ow * 3);
    }
  }
  if (ok)
    patchify (out, resized, n_frames, grid_t, oh, ow, p);
  else if (error && !*error)
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory preprocessing %d frames of %dx%d (resized to %dx%d)", n_frames,
                 width, height, ow, oh);
  for (int f = 0; f < n_frames; f++)
    g_free (resized[f]);
  g_free (resized);
  if (!ok) {
    g_free (out);
    return FALSE;
  }
  grid_thw[0] = grid_t;
  grid_thw[1] = oh / P;
  grid_thw[2] = ow / P;
  *pixel_values = out;
  return TRUE;
}

gboolean
qomni_image_preprocess (const guint8 *rgb, int width, int height, int stride,
                        const QomniImageParams *p, float **pixel_values, int grid_thw[3],
                        GError **error)
{
  /* An image is a one-frame video: the frame is repeated to temporal_patch_size. */
  const guint8 *frames[1] = { rgb };
  return qomni_video_preprocess (frames, 1, width, height, stride, p, pixel_values, grid_thw,
                                 error);
}
