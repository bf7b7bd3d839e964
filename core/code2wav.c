/* qomni — Code2Wav on the CPU.
 *
 * Activations are time-major [T, C] from the pre-transformer to the last convolution, so a
 * convolution over time is a linear layer over windows of consecutive rows: every conv and
 * transposed conv is lowered to qomni_cpu_linear on an im2col tile, with the weight
 * permuted once at load time. Tiles run in parallel, one per thread.
 */
#include "code2wav.h"
#include "decoder.h"
#include "error.h"
#include "ops-cpu.h"
#ifdef QOMNI_HAVE_VULKAN
#include "code2wav-vk.h"
#endif

#include <math.h>
#include <omp.h>
#include <string.h>

#define N_STAGES 4    /* decoder blocks */
#define N_UNITS 3     /* residual units per block */
#define MAX_UP 4      /* ConvNeXt upsampling stages */

/* A convolution as a linear over gathered input rows:
 *   y[m, :] = W · concat_{a < taps} x[m + base + a·step, :] + bias   (rows < 0 read as 0)
 * W [rows_out, taps·cin]. Causal conv (k taps, dilation d): base −(k−1)d, step d, one
 * output row per input row. Transposed conv with kernel q·s and stride s, trimmed by
 * k − s on both sides: output block m (s rows of cout) reads inputs m … m+q−1, so
 * taps q, base 0, step 1, rows_out s·cout and L − q + 1 blocks. */
typedef struct {
  QomniTensor w;
  void *wbuf;
  float *bias;       /* [rows_out] */
  int cin, cout, rows_out, taps, base, step;
  int stride;        /* 0: causal conv; s: transposed */
} Conv;

typedef struct {
  float *alpha, *inv_beta;  /* exp(α), 1/(exp(β) + 1e-9), [C] */
  int C;
} Snake;

typedef struct {
  Conv up;                  /* # HF: upsample.i.0 (transposed, k = s = ratio) */
  float *dw_w, *dw_b;       /* # HF: upsample.i.1.dwconv [C, 7], [C] */
  float *ln_w, *ln_b, *gamma;
  const QomniTensor *pw1, *pw2;  /* [4C, C], [C, 4C] */
  float *pw1_b, *pw2_b;
  int ratio, inner;
} UpStage;

typedef struct {
  Snake act;                /* # HF: decoder.B.block.0 */
  Conv up;                  /* # HF: decoder.B.block.1 */
  Snake act1[N_UNITS], act2[N_UNITS];
  Conv conv1[N_UNITS], conv2[N_UNITS];
  int rate;
} Block;

struct _QomniCode2Wav {
  const QomniWeights *w;
  const QomniConfig *cfg;
  int H, Q, cb, D;
  int n_up, n_blocks;
  const QomniTensor *embed;  /* [Q·cb, H] */
  QomniDecoder *pre;         /* sized for `cap` frames */
  UpStage ups[MAX_UP];
  Conv dec0;                 /* # HF: decoder.0 */
  Block blocks[N_STAGES];
  Snake final_act;           /* # HF: decoder.5 */
  Conv final_conv;           /* # HF: decoder.6 */
  int spf, trim;
  QomniCode2WavTrace trace;
  gpointer trace_user;
  /* scratch for up to `cap` frames */
  int cap;
  float *buf[3], *pw, *row;
  int *pos;
  float *cols;               /* [threads, TILE_MAX, max taps·cin] */
  int max_cols, threads;
#ifdef QOMNI_HAVE_VULKAN
  QomniVkCode2Wav *gpu;      /* set: every decode call runs there, none of the above is used */
#endif
};

struct _QomniCode2WavStream {
  QomniCode2Wav *c;
  int chunk, left;
  int *win;                  /* [Q, left + chunk] codebook-major */
  int n_ctx, n_new;          /* frames of left context and of new frames in win */
};

#define TILE_MAX 64

/* ---- loading ---------------------------------------------------------------------- */

/* (transfer full) "prefix.name" [len] as floats. */
static float *
vec (const QomniWeights *w, GError **error, int64_t len, const char *prefix, const char *name)
{
  return qomni_weights_get_f32 (w, error, len, "%s.%s", prefix, name);
}

static gboolean
snake_load (Snake *s, const QomniWeights *w, const char *prefix, int C, GError **error)
{
  s->C = C;
  s->alpha = vec (w, error, C, prefix, "alpha");
  if (!s->alpha)
    return FALSE;
  s->inv_beta = vec (w, error, C, prefix, "beta");
  if (!s->inv_beta)
    return FALSE;
  /* SnakeBeta keeps α and β in log space (pitfall 25). */
  for (int c = 0; c < C; c++) {
    s->alpha[c] = expf (s->alpha[c]);
    s->inv_beta[c] = 1.0f / (expf (s->inv_beta[c]) + 1e-9f);
  }
  return TRUE;
}

static void
snake_clear (Snake *s)
{
  g_free (s->alpha);
  g_free (s->inv_beta);
}

/* Element size of dtypes that can be permuted element by element (0: convert to f32). */
static size_t
plain_elem_size (QomniDType dt)
{
  return dt == QOMNI_DTYPE_F32 ? 4 : (dt == QOMNI_DTYPE_BF16 || dt == QOMNI_DTYPE_F16) ? 2 : 0;
}

/* Reads a conv weight [A, B, k] and its bias. transposed: the weight is [cin, cout, k]
 * (ConvTranspose1d), stride s, k a multiple of s; else [cout, cin, k] with dilation. */
static gboolean
conv_load (Conv *cv, const QomniWeights *w, const char *prefix, gboolean transposed, int cin,
           int cout, int stride, int dilation, GError **error)
{
  const QomniTensor *t = qomni_weights_findf (w, "%s.weight", prefix);
  if (!t || t->ndim != 3) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "%s.weight: missing or not a 3-D convolution weight", prefix);
    return FALSE;
  }
  const int k = (int) t->shape[2];
  const int64_t want[3] = { transposed ? cin : cout, transposed ? cout : cin, k };
  if (!qomni_weights_get (w, error, 3, want, "%s.weight", prefix))
    return FALSE;
  if (transposed && (k % stride != 0)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: transposed kernel %d is not a multiple of the stride %d", prefix, k,
                 stride);
    return FALSE;
  }
  cv->cin = cin;
  cv->cout = cout;
  cv->stride = transposed ? stride : 0;
  if (transposed) {
    cv->taps = k / stride;
    cv->base = 0;
    cv->step = 1;
    cv->rows_out = stride * cout;
  } else {
    cv->taps = k;
    cv->base = -(k - 1) * dilation;
    cv->step = dilation;
    cv->rows_out = cout;
  }
  const int64_t in_cols = (int64_t) cv->taps * cin;

  /* Permute into W'[rows_out, taps·cin] keeping the stored dtype where possible. */
  g_autofree float *f32 = NULL;
  const guint8 *src = t->data;
  size_t es = plain_elem_size (t->dtype);
  QomniDType dt = t->dtype;
  if (!es) {
    f32 = qomni_tensor_to_f32_alloc (t);
    src = (const guint8 *) f32;
    es = 4;
    dt = QOMNI_DTYPE_F32;
  }
  guint8 *dst = g_malloc (es * (size_t) cv->rows_out * in_cols);
  for (int r = 0; r < cv->rows_out; r++)
    for (int a = 0; a < cv->taps; a++)
      for (int ci = 0; ci < cin; ci++) {
        int64_t from;
        if (transposed) {
          /* row r = p·cout + co, input slot a reads kernel tap p + (q − 1 − a)·s */
          const int p = r / cout, co = r % cout;
          const int j = p + (cv->taps - 1 - a) * stride;
          from = ((int64_t) ci * cout + co) * k + j;
        } else {
          from = ((int64_t) r * cin + ci) * k + a;
        }
        memcpy (dst + es * ((size_t) r * in_cols + (size_t) a * cin + ci), src + es * from, es);
      }
  cv->wbuf = dst;
  cv->w = (QomniTensor) {
    .name = t->name, .dtype = dt, .ndim = 2, .shape = { cv->rows_out, in_cols },
    .data = dst, .nbytes = es * (size_t) cv->rows_out * in_cols, .file = t->file,
  };

  g_autofree char *bname = g_strdup_printf ("%s.bias", prefix);
  const QomniTensor *b = qomni_weights_get (w, error, 1, (int64_t[]) { cout }, "%s", bname);
  if (!b)
    return FALSE;
  g_autofree float *bias = qomni_tensor_to_f32_alloc (b);
  cv->bias = g_new (float, cv->rows_out);
  for (int r = 0; r < cv->rows_out; r++)
    cv->bias[r] = bias[r % cout];
  return TRUE;
}

static void
conv_clear (Conv *cv)
{
  g_free (cv->wbuf);
  g_free (cv->bias);
}

/* Output rows (in units of cout) for L input rows. */
static int
conv_out_len (const Conv *cv, int L)
{
  return cv->stride ? MAX (L - cv->taps + 1, 0) * cv->stride : L;
}

void
qomni_code2wav_free (QomniCode2Wav *c)
{
  if (!c)
    return;
  qomni_decoder_free (c->pre);
  for (int i = 0; i < MAX_UP; i++) {
    UpStage *u = &c->ups[i];
    conv_clear (&u->up);
    float *f[] = { u->dw_w, u->dw_b, u->ln_w, u->ln_b, u->gamma, u->pw1_b, u->pw2_b };
    for (guint j = 0; j < G_N_ELEMENTS (f); j++)
      g_free (f[j]);
  }
  conv_clear (&c->dec0);
  for (int b = 0; b < N_STAGES; b++) {
    Block *bl = &c->blocks[b];
    snake_clear (&bl->act);
    conv_clear (&bl->up);
    for (int u = 0; u < N_UNITS; u++) {
      snake_clear (&bl->act1[u]);
      snake_clear (&bl->act2[u]);
      conv_clear (&bl->conv1[u]);
      conv_clear (&bl->conv2[u]);
    }
  }
  snake_clear (&c->final_act);
  conv_clear (&c->final_conv);
  for (int i = 0; i < 3; i++)
    g_free (c->buf[i]);
  g_free (c->pw);
  g_free (c->row);
  g_free (c->pos);
  g_free (c->cols);
#ifdef QOMNI_HAVE_VULKAN
  qomni_vk_code2wav_free (c->gpu);
#endif
  g_free (c);
}

static int
max_cols_of (const Conv *cv, int cur)
{
  return MAX (cur, cv->taps * cv->cin);
}

QomniCode2Wav *
qomni_code2wav_new (const QomniWeights *w, const QomniConfig *cfg, GError **error)
{
  return qomni_code2wav_new_on (w, cfg, NULL, error);
}

QomniCode2Wav *
qomni_code2wav_new_on (const QomniWeights *w, const QomniConfig *cfg, QomniVk *vk,
                       GError **error)
{
  if (vk) {
#ifdef QOMNI_HAVE_VULKAN
    QomniVkCode2Wav *gpu = qomni_vk_code2wav_new (vk, w, cfg, error);
    if (!gpu)
      return NULL;
    QomniCode2Wav *c = g_new0 (QomniCode2Wav, 1);
    c->w = w;
    c->cfg = cfg;
    c->gpu = gpu;
    c->H = cfg->code2wav.transformer.hidden_size;
    c->Q = cfg->code2wav.num_quantizers;
    c->cb = cfg->code2wav.codebook_size;
    c->D = cfg->code2wav.decoder_dim;
    c->spf = qomni_vk_code2wav_samples_per_frame (gpu);
    c->trim = qomni_vk_code2wav_trim (gpu);
    return c;
#else
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "this build of qomni has no Vulkan backend");
    return NULL;
#endif
  }
  const QomniCode2WavConfig *cc = &cfg->code2wav;
  if (!cc->present) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "the config has no code2wav_config: this checkpoint cannot speak");
    return NULL;
  }
  if (cc->n_upsample_rates != N_STAGES || cc->n_upsampling_ratios > MAX_UP) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "code2wav_config: %d decoder blocks and %d upsampling stages (expected %d "
                 "and at most %d)", cc->n_upsample_rates, cc->n_upsampling_ratios, N_STAGES,
                 MAX_UP);
    return NULL;
  }
  QomniCode2Wav *c = g_new0 (QomniCode2Wav, 1);
  c->w = w;
  c->cfg = cfg;
  c->H = cc->transformer.hidden_size;
  c->Q = cc->num_quantizers;
  c->cb = cc->codebook_size;
  c->D = cc->decoder_dim;
  c->n_up = cc->n_upsampling_ratios;
  c->n_blocks = N_STAGES;
  const int H = c->H;
  c->embed = qomni_weights_get (w, error, 2, (int64_t[]) { (int64_t) c->Q * c->cb, H },
                                "code2wav.code_embedding.weight");
  if (!c->embed)
    goto fail;

  for (int i = 0; i < c->n_up; i++) {
    UpStage *u = &c->ups[i];
    g_autofree char *p = g_strdup_printf ("code2wav.upsample.%d", i);
    g_autofree char *p0 = g_strdup_printf ("%s.0.conv", p);
    g_autofree char *p1 = g_strdup_printf ("%s.1", p);
    u->ratio = cc->upsampling_ratios[i];
    if (!conv_load (&u->up, w, p0, TRUE, H, H, u->ratio, 1, error))
      goto fail;
    const QomniTensor *pw1 = qomni_weights_findf (w, "%s.pwconv1.weight", p1);
    if (!pw1 || pw1->ndim != 2) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING, "%s.pwconv1.weight is missing", p1);
      goto fail;
    }
    u->inner = (int) pw1->shape[0];
    if (!(u->pw1 = qomni_weights_get (w, error, 2, (int64_t[]) { u->inner, H },
                                      "%s.pwconv1.weight", p1)) ||
        !(u->pw2 = qomni_weights_get (w, error, 2, (int64_t[]) { H, u->inner },
                                      "%s.pwconv2.weight", p1)))
      goto fail;
    const QomniTensor *dw = qomni_weights_get (w, error, 3, (int64_t[]) { H, 1, 7 },
                                               "%s.dwconv.conv.weight", p1);
    if (!dw)
      goto fail;
    u->dw_w = qomni_tensor_to_f32_alloc (dw);
    if (!(u->dw_b = vec (w, error, H, p1, "dwconv.conv.bias")) ||
        !(u->ln_w = vec (w, error, H, p1, "norm.weight")) ||
        !(u->ln_b = vec (w, error, H, p1, "norm.bias")) ||
        !(u->gamma = vec (w, error, H, p1, "gamma")) ||
        !(u->pw1_b = vec (w, error, u->inner, p1, "pwconv1.bias")) ||
        !(u->pw2_b = vec (w, error, H, p1, "pwconv2.bias")))
      goto fail;
  }

  if (!conv_load (&c->dec0, w, "code2wav.decoder.0.conv", FALSE, H, c->D, 0, 1, error))
    goto fail;
  int C = c->D;
  static const int dil[N_UNITS] = { 1, 3, 9 };
  for (int b = 0; b < N_STAGES; b++) {
    Block *bl = &c->blocks[b];
    const int r = cc->upsample_rates[b], Co = C / 2;
    bl->rate = r;
    g_autofree char *p = g_strdup_printf ("code2wav.decoder.%d.block", b + 1);
    g_autofree char *p0 = g_strdup_printf ("%s.0", p);
    g_autofree char *p1 = g_strdup_printf ("%s.1.conv", p);
    if (!snake_load (&bl->act, w, p0, C, error) ||
        !conv_load (&bl->up, w, p1, TRUE, C, Co, r, 1, error))
      goto fail;
    for (int u = 0; u < N_UNITS; u++) {
      g_autofree char *a1 = g_strdup_printf ("%s.%d.act1", p, u + 2);
      g_autofree char *a2 = g_strdup_printf ("%s.%d.act2", p, u + 2);
      g_autofree char *c1 = g_strdup_printf ("%s.%d.conv1.conv", p, u + 2);
      g_autofree char *c2 = g_strdup_printf ("%s.%d.conv2.conv", p, u + 2);
      if (!snake_load (&bl->act1[u], w, a1, Co, error) ||
          !snake_load (&bl->act2[u], w, a2, Co, error) ||
          !conv_load (&bl->conv1[u], w, c1, FALSE, Co, Co, 0, dil[u], error) ||
          !conv_load (&bl->conv2[u], w, c2, FALSE, Co, Co, 0, 1, error))
        goto fail;
    }
    C = Co;
  }
  if (!snake_load (&c->final_act, w, "code2wav.decoder.5", C, error) ||
      !conv_load (&c->final_conv, w, "code2wav.decoder.6.conv", FALSE, C, 1, 0, 1, error))
    goto fail;

  /* Samples per frame and the per-call loss, from the chain's length rules. */
  c->spf = 1;
  for (int i = 0; i < c->n_up; i++)
    c->spf *= c->ups[i].ratio;
  for (int b = 0; b < N_STAGES; b++)
    c->spf *= c->blocks[b].rate;
  {
    int T = 1000;
    for (int i = 0; i < c->n_up; i++)
      T = conv_out_len (&c->ups[i].up, T);
    for (int b = 0; b < N_STAGES; b++)
      T = conv_out_len (&c->blocks[b].up, T);
    c->trim = 1000 * c->spf - T;
  }

  int mc = max_cols_of (&c->dec0, 0);
  mc = max_cols_of (&c->final_conv, mc);
  for (int i = 0; i < c->n_up; i++)
    mc = max_cols_of (&c->ups[i].up, mc);
  for (int b = 0; b < N_STAGES; b++) {
    mc = max_cols_of (&c->blocks[b].up, mc);
    for (int u = 0; u < N_UNITS; u++)
      mc = max_cols_of (&c->blocks[b].conv1[u], max_cols_of (&c->blocks[b].conv2[u], mc));
  }
  c->max_cols = mc;
  c->threads = qomni_cpu_threads ();
  c->cols = g_new (float, (gsize) c->threads * TILE_MAX * mc);
  c->row = g_new (float, H);
  return c;

fail:
  qomni_code2wav_free (c);
  return NULL;
}

int qomni_code2wav_num_quantizers (const QomniCode2Wav *c) { return c->Q; }
int qomni_code2wav_codebook_size (const QomniCode2Wav *c) { return c->cb; }
int qomni_code2wav_samples_per_frame (const QomniCode2Wav *c) { return c->spf; }
int qomni_code2wav_trim (const QomniCode2Wav *c) { return c->trim; }

void
qomni_code2wav_set_trace (QomniCode2Wav *c, QomniCode2WavTrace trace, gpointer user)
{
  c->trace = trace;
  c->trace_user = user;
#ifdef QOMNI_HAVE_VULKAN
  if (c->gpu)
    qomni_vk_code2wav_set_trace (c->gpu, trace, user);
#endif
}

/* Grows the scratch (and the pre-transformer's cache) to hold a call of `frames`. */
static gboolean
ensure (QomniCode2Wav *c, int frames, GError **error)
{
  if (frames <= c->cap)
    return TRUE;
  const int cap = MAX (frames, 2 * c->cap);
  /* the largest [T, C] any stage holds */
  gsize big = (gsize) cap * c->H, pw = 1;
  int T = cap;
  for (int i = 0; i < c->n_up; i++) {
    T = conv_out_len (&c->ups[i].up, T);
    big = MAX (big, (gsize) T * c->H);
    pw = MAX (pw, (gsize) T * c->ups[i].inner);
  }
  int C = c->D;
  big = MAX (big, (gsize) T * C);
  for (int b = 0; b < N_STAGES; b++) {
    T = conv_out_len (&c->blocks[b].up, T);
    C /= 2;
    big = MAX (big, (gsize) T * C);
  }
  QomniDecoder *pre = qomni_decoder_new (c->w, &c->cfg->code2wav.transformer,
                                         "code2wav.pre_transformer", cap, cap, error);
  if (!pre)
    return FALSE;
  float *bufs[3] = { g_try_new (float, big), g_try_new (float, big), g_try_new (float, big) };
  float *pwb = g_try_new (float, pw);
  if (!bufs[0] || !bufs[1] || !bufs[2] || !pwb) {
    for (int i = 0; i < 3; i++)
      g_free (bufs[i]);
    g_free (pwb);
    qomni_decoder_free (pre);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "code2wav: out of memory for a decode call of %d frames", frames);
    return FALSE;
  }
  qomni_decoder_free (c->pre);
  c->pre = pre;
  for (int i = 0; i < 3; i++) {
    g_free (c->buf[i]);
    c->buf[i] = bufs[i];
  }
  g_free (c->pw);
  c->pw = pwb;
  g_free (c->pos);
  c->pos = g_new (int, 3 * (gsize) cap);
  c->cap = cap;
  return TRUE;
}

/* ---- kernels ---------------------------------------------------------------------- */

/* y [conv_out_len(L), cout] = conv(x [L, cin]). Tiles of output blocks are spread over
 * the threads, each gathering its windows into its own slice of c->cols. */
static void
conv_run (QomniCode2Wav *c, const Conv *cv, float *y, const float *x, int L)
{
  const int M = cv->stride ? MAX (L - cv->taps + 1, 0) : L;
  const int in_cols = cv->taps * cv->cin;
  const int tile = CLAMP ((M + 4 * c->threads - 1) / (4 * c->threads), 8, TILE_MAX);
  const int n_tiles = (M + tile - 1) / tile;
#pragma omp parallel for schedule(dynamic) num_threads(c->threads) if (n_tiles > 1)
  for (int ti = 0; ti < n_tiles; ti++) {
    float *cols = c->cols + (gsize) omp_get_thread_num () * TILE_MAX * c->max_cols;
    const int m0 = ti * tile, n = MIN (tile, M - m0);
    for (int r = 0; r < n; r++) {
      float *dst = cols + (gsize) r * in_cols;
      for (int a = 0; a < cv->taps; a++) {
        const int src = m0 + r + cv->base + a * cv->step;
        if (src < 0 || src >= L)
          memset (dst + (gsize) a * cv->cin, 0, sizeof (float) * cv->cin);
        else
          memcpy (dst + (gsize) a * cv->cin, x + (gsize) src * cv->cin, sizeof (float) * cv->cin);
      }
    }
    qomni_cpu_linear (y + (gsize) m0 * cv->rows_out, cols, n, &cv->w, cv->bias);
  }
}

/* y = x + sin²(x·exp α) / (exp β + 1e-9) per channel; y may be x. */
static void
snake_run (const Snake *s, float *y, const float *x, int T)
{
  const int C = s->C;
#pragma omp parallel for schedule(static) if ((gsize) T * C > 65536)
  for (int t = 0; t < T; t++)
    for (int ch = 0; ch < C; ch++) {
      const float v = x[(gsize) t * C + ch];
      const float sn = sinf (v * s->alpha[ch]);
      y[(gsize) t * C + ch] = v + s->inv_beta[ch] * sn * sn;
    }
}

/* ConvNeXt block in place on x [T, H] (architecture notes §10.4). */
static void
convnext_run (QomniCode2Wav *c, const UpStage *u, float *x, float *tmp, int T)
{
  const int H = c->H;
  /* depthwise causal conv, k = 7, left pad 6 */
  for (int t = 0; t < T; t++)
    for (int ch = 0; ch < H; ch++) {
      float acc = u->dw_b[ch];
      for (int j = 0; j < 7; j++) {
        const int s = t - 6 + j;
        if (s >= 0)
          acc += u->dw_w[ch * 7 + j] * x[(gsize) s * H + ch];
      }
      tmp[(gsize) t * H + ch] = acc;
    }
  qomni_cpu_layernorm (tmp, tmp, T, H, u->ln_w, u->ln_b, 1e-6f);
  qomni_cpu_linear (c->pw, tmp, T, u->pw1, u->pw1_b);        /* [T, inner] */
  qomni_cpu_gelu (c->pw, (int64_t) T * u->inner);
  qomni_cpu_linear (tmp, c->pw, T, u->pw2, u->pw2_b);        /* [T, H] */
  for (gsize i = 0; i < (gsize) T * H; i++)
    x[i] += u->gamma[i % H] * tmp[i];
}

static void
trace (QomniCode2Wav *c, const char *stage, float *x, int T, int C)
{
  if (c->trace)
    c->trace (stage, x, T, C, c->trace_user);
}

static gboolean
check_codes (const QomniCode2Wav *c, const int *codes, int stride, int nf, GError **error)
{
  for (int q = 0; q < c->Q; q++)
    for (int f = 0; f < nf; f++) {
      const int v = codes[(gsize) q * stride + f];
      if (v < 0 || v >= c->cb) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                     "codec frame %d, codebook %d: code %d is outside the codebook [0, %d)", f,
                     q, v, c->cb);
        return FALSE;
      }
    }
  return TRUE;
}

/* One Code2Wav call over nf frames (codes [Q, ·] with row stride `stride`); writes the
 * samples from skip·spf on into out [nf·spf − trim − skip·spf]. */
static gboolean
run (QomniCode2Wav *c, const int *codes, int stride, int nf, int skip, float *out,
     GError **error)
{
#ifdef QOMNI_HAVE_VULKAN
  if (c->gpu)
    return qomni_vk_code2wav_run (c->gpu, codes, stride, nf, skip, out, error);
#endif
  if (!ensure (c, nf, error))
    return FALSE;
  const int H = c->H, Q = c->Q;
  float *x = c->buf[0], *t1 = c->buf[1], *t2 = c->buf[2];

  /* # HF: code_embedding(codes + q·cb).mean over the codebooks → [nf, H] */
  for (int f = 0; f < nf; f++) {
    float *xr = x + (gsize) f * H;
    memset (xr, 0, sizeof (float) * H);
    for (int q = 0; q < Q; q++) {
      qomni_weight_row_f32 (c->embed, (int64_t) q * c->cb + codes[(gsize) q * stride + f],
                            c->row);
      qomni_cpu_add (xr, c->row, H);
    }
    for (int h = 0; h < H; h++)
      xr[h] /= (float) Q;
  }
  /* # HF: pre_transformer — positions restart at 0 every call (pitfall 26) */
  for (int a = 0; a < 3; a++)
    for (int f = 0; f < nf; f++)
      c->pos[a * nf + f] = f;
  qomni_decoder_truncate (c->pre, 0);
  if (!qomni_decoder_forward (c->pre, x, nf, c->pos, NULL, NULL, error))
    return FALSE;
  trace (c, "pre_transformer", x, nf, H);

  /* # HF: upsample.i — transposed conv ×ratio, then ConvNeXt */
  int T = nf;
  for (int i = 0; i < c->n_up; i++) {
    conv_run (c, &c->ups[i].up, t1, x, T);
    T = conv_out_len (&c->ups[i].up, T);
    float *s = x;
    x = t1;
    t1 = s;
    convnext_run (c, &c->ups[i], x, t1, T);
    static const char *names[MAX_UP] = { "upsample.0", "upsample.1", "upsample.2", "upsample.3" };
    trace (c, names[i], x, T, H);
  }

  /* # HF: decoder.0 — causal conv k = 7 to decoder_dim */
  conv_run (c, &c->dec0, t1, x, T);
  {
    float *s = x;
    x = t1;
    t1 = s;
  }
  int C = c->D;
  trace (c, "decoder.0", x, T, C);

  static const char *names[N_STAGES] = { "decoder.1", "decoder.2", "decoder.3", "decoder.4" };
  for (int b = 0; b < N_STAGES; b++) {
    const Block *bl = &c->blocks[b];
    snake_run (&bl->act, t1, x, T);
    conv_run (c, &bl->up, t2, t1, T);
    T = conv_out_len (&bl->up, T);
    C /= 2;
    {
      float *s = x;
      x = t2;
      t2 = s;
    }
    for (int u = 0; u < N_UNITS; u++) {
      /* x += conv2(snake2(conv1(snake1(x)))) */
      snake_run (&bl->act1[u], t1, x, T);
      conv_run (c, &bl->conv1[u], t2, t1, T);
      snake_run (&bl->act2[u], t2, t2, T);
      conv_run (c, &bl->conv2[u], t1, t2, T);
      qomni_cpu_add (x, t1, (int64_t) T * C);
    }
    trace (c, names[b], x, T, C);
  }

  snake_run (&c->final_act, t1, x, T);
  trace (c, "decoder.5", t1, T, C);
  conv_run (c, &c->final_conv, t2, t1, T);
  trace (c, "decoder.6", t2, T, 1);
  g_assert (T == nf * c->spf - c->trim);
  const int from = skip * c->spf;
  for (int i = from; i < T; i++)
    out[i - from] = CLAMP (t2[i], -1.0f, 1.0f);
  return TRUE;
}

gboolean
qomni_code2wav_decode (QomniCode2Wav *c, const int *codes, int n_frames, float **wav,
                       int *n_samples, GError **error)
{
  *wav = NULL;
  *n_samples = 0;
  if (n_frames < 1) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "code2wav: nothing to decode (%d frames)", n_frames);
    return FALSE;
  }
  if (!check_codes (c, codes, n_frames, n_frames, error))
    return FALSE;
  const int n = n_frames * c->spf - c->trim;
  float *out = g_try_new (float, n);
  if (!out) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for %d samples", n);
    return FALSE;
  }
  if (!run (c, codes, n_frames, n_frames, 0, out, error)) {
    g_free (out);
    return FALSE;
  }
  *wav = out;
  *n_samples = n;
  return TRUE;
}

static gboolean
check_chunking (int chunk, int left, GError **error)
{
  if (chunk < 1 || left < 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "code2wav: chunk %d and left context %d (need chunk ≥ 1, left ≥ 0)", chunk,
                 left);
    return FALSE;
  }
  return TRUE;
}

gboolean
qomni_code2wav_chunked_decode (QomniCode2Wav *c, const int *codes, int n_frames, int chunk,
                               int left, float **wav, int *n_samples, GError **error)
{
  *wav = NULL;
  *n_samples = 0;
  if (!check_chunking (chunk, left, error))
    return FALSE;
  if (n_frames < 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "code2wav: %d frames", n_frames);
    return FALSE;
  }
  if (n_frames == 0)
    return TRUE;
  if (!check_codes (c, codes, n_frames, n_frames, error))
    return FALSE;
  const int n_chunks = (n_frames + chunk - 1) / chunk;
  const int total = n_frames * c->spf - n_chunks * c->trim;
  float *out = g_try_new (float, MAX (total, 1));
  if (!out) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for %d samples", total);
    return FALSE;
  }
  /* The reference: ctx = left if start − left > 0 else start, i.e. min(start, left). */
  int done = 0;
  for (int start = 0; start < n_frames; start += chunk) {
    const int end = MIN (start + chunk, n_frames);
    const int ctx = MIN (start, left);
    if (!run (c, codes + start - ctx, n_frames, end - start + ctx, ctx, out + done, error)) {
      g_free (out);
      return FALSE;
    }
    done += (end - start) * c->spf - c->trim;
  }
  g_assert (done == total);
  *wav = out;
  *n_samples = total;
  return TRUE;
}

/* ---- streaming -------------------------------------------------------------------- */

QomniCode2WavStream *
qomni_code2wav_stream_new (QomniCode2Wav *c, int chunk, int left, GError **error)
{
  if (!check_chunking (chunk, left, error))
    return NULL;
  QomniCode2WavStream *s = g_new0 (QomniCode2WavStream, 1);
  s->c = c;
  s->chunk = chunk;
  s->left = left;
  s->win = g_new (int, (gsize) c->Q * (left + chunk));
  return s;
}

void
qomni_code2wav_stream_free (QomniCode2WavStream *s)
{
  if (!s)
    return;
  g_free (s->win);
  g_free (s);
}

int
qomni_code2wav_stream_pending (const QomniCode2WavStream *s)
{
  return s->n_new;
}

/* Decodes win = [n_ctx context | n_new frames] and keeps the last `left` frames. */
static gboolean
stream_flush (QomniCode2WavStream *s, float **wav, int *n_samples, GError **error)
{
  QomniCode2Wav *c = s->c;
  const int W = s->left + s->chunk, nf = s->n_ctx + s->n_new;
  const int n = s->n_new * c->spf - c->trim;
  float *out = g_try_new (float, n);
  if (!out) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for %d samples", n);
    return FALSE;
  }
  if (!run (c, s->win, W, nf, s->n_ctx, out, error)) {
    g_free (out);
    return FALSE;
  }
  const int keep = MIN (s->left, nf);
  for (int q = 0; q < c->Q; q++)
    memmove (s->win + (gsize) q * W, s->win + (gsize) q * W + nf - keep, sizeof (int) * keep);
  s->n_ctx = keep;
  s->n_new = 0;
  *wav = out;
  *n_samples = n;
  return TRUE;
}

gboolean
qomni_code2wav_stream_push (QomniCode2WavStream *s, const int *frame, float **wav,
                            int *n_samples, GError **error)
{
  QomniCode2Wav *c = s->c;
  *wav = NULL;
  *n_samples = 0;
  if (!check_codes (c, frame, 1, 1, error))
    return FALSE;
  const int W = s->left + s->chunk, at = s->n_ctx + s->n_new;
  for (int q = 0; q < c->Q; q++)
    s->win[(gsize) q * W + at] = frame[q];
  s->n_new++;
  if (s->n_new < s->chunk)
    return TRUE;
  return stream_flush (s, wav, n_samples, error);
}

gboolean
qomni_code2wav_stream_finish (QomniCode2WavStream *s, float **wav, int *n_samples,
                              GError **error)
{
  *wav = NULL;
  *n_samples = 0;
  gboolean ok = s->n_new == 0 || stream_flush (s, wav, n_samples, error);
  s->n_ctx = s->n_new = 0;
  return ok;
}
