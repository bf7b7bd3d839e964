/* qomni — the AuT audio encoder on the CPU (architecture notes §4). */
#include "audio-encoder.h"
#include "weights-load.h"
#include "error.h"
#include "ops-cpu.h"
#ifdef QOMNI_HAVE_VULKAN
#include "audio-encoder-vk.h"
#endif

#include <math.h>
#include <string.h>

#define PREFIX "thinker.audio_tower"
#define LN_EPS 1e-5f   /* nn.LayerNorm default; the audio config has no eps field */

typedef struct {
  /* # HF: layers.N.self_attn.{q,k,v,out}_proj: [D, D] with bias [D] */
  const QomniTensor *wq, *wk, *wv, *wo;
  float *bq, *bk, *bv, *bo;
  /* # HF: layers.N.self_attn_layer_norm, layers.N.final_layer_norm: [D] each */
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  /* # HF: layers.N.fc1 [FF, D] + [FF], layers.N.fc2 [D, FF] + [D] */
  const QomniTensor *fc1, *fc2;
  float *b1, *b2;
} Layer;

/* A 3×3, stride 2, padding 1 Conv2d run as im2col + qomni_cpu_linear: the weight
 * [Co, Ci, 3, 3] is the matrix [Co, Ci·9] over the same bytes, column ci·9 + kh·3 + kw. */
typedef struct {
  QomniTensor w2d;
  float *bias;   /* [Co] */
  int ci;
} Conv;

struct _QomniAudioEncoder {
  int M, C, D, FF, OUT, nh, hd, L;
  int chunk;         /* mel frames per conv chunk: 2·n_window = 100 */
  int ratio;         /* chunks per attention window: n_window_infer / (2·n_window) = 8 */
  int F1, F2, F3;    /* frequency sizes after each conv: 64, 32, 16 */
  int tok_max;       /* tokens of a full chunk: 13 */
  int win_max;       /* tokens of a full window: tok_max·ratio = 104 */
  Conv conv[3];      /* # HF: conv2d1 [C, 1, 3, 3], conv2d2, conv2d3 [C, C, 3, 3] */
  const QomniTensor *conv_out;   /* # HF: conv_out [D, C·F3], no bias */
  Layer *layers;
  float *ln_post_w, *ln_post_b;  /* # HF: ln_post [D] */
  const QomniTensor *proj1;      /* # HF: proj1 [D, D] + [D] */
  const QomniTensor *proj2;      /* # HF: proj2 [OUT, D] + [OUT] */
  float *proj1_b, *proj2_b;
  float *pos;                    /* [tok_max, D] sinusoids: sin block, then cos block */
  /* scratch for one chunk; activations are position-major [F, W, C] */
  float *x0;                     /* [M, chunk]: the chunk, zero-padded */
  float *col;                    /* im2col of the largest conv: [F2·W2, C·9] */
  float *a1, *a2, *a3;           /* [F1, W1, C], [F2, W2, C], [F3, W3, C] */
  float *flat;                   /* [tok_max, C·F3], index c·F3 + f */
  float *tok;                    /* [tok_max, D] */
  /* scratch for one attention window */
  float *x, *xn, *q, *k, *v, *att;   /* [win_max, D] */
  float *ff;                          /* [win_max, FF] */
  QomniAudioTraceFn trace;
  gpointer trace_user;
#ifdef QOMNI_HAVE_VULKAN
  QomniVkAudioEncoder *gpu;      /* set: encode runs there */
#endif
};

/* Every trace stage of one encode call, in the reference's layouts. */
typedef struct {
  float *conv[3];    /* [chunks, C, F, W] */
  float *conv_out;   /* [chunks, W3, D] */
  float **layers;    /* [L][A, D] */
  float *ln_post, *proj1;   /* [A, D] */
} Trace;

static inline int
half_up (int n)
{
  return (n + 1) / 2;
}

/* Time steps left of r frames after the three stride-2 convolutions: ceil(r/8). */
static inline int
tokens_for (int r)
{
  return half_up (half_up (half_up (r)));
}

static gboolean
load_conv (Conv *cv, const QomniWeights *w, int index, int co, int ci, GError **error)
{
  const QomniTensor *t = qomni_weights_get (w, error, 4, (int64_t[]) { co, ci, 3, 3 },
                                            PREFIX ".conv2d%d.weight", index);
  if (!t)
    return FALSE;
  const int block = qomni_dtype_info (t->dtype)->block_elems;
  if ((ci * 9) % block != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: %s is stored as %s, whose %d-element blocks do not divide its rows of "
                 "%d; store the convolutions as f32, f16 or bf16", t->file, t->name,
                 qomni_dtype_info (t->dtype)->name, block, ci * 9);
    return FALSE;
  }
  cv->w2d = *t;
  cv->w2d.ndim = 2;
  cv->w2d.shape[0] = co;
  cv->w2d.shape[1] = (int64_t) ci * 9;
  cv->w2d.shape[2] = cv->w2d.shape[3] = 0;
  cv->ci = ci;
  const QomniTensor *b = qomni_weights_get (w, error, 1, (int64_t[]) { co },
                                            PREFIX ".conv2d%d.bias", index);
  if (!b)
    return FALSE;
  cv->bias = qomni_tensor_to_f32_alloc (b);
  return TRUE;
}

gboolean
qomni_audio_config_check (const QomniAudioConfig *ac, GError **error)
{
  if (ac->num_mel_bins <= 0 || ac->downsample_hidden_size <= 0 || ac->encoder_ffn_dim <= 0
      || ac->output_dim <= 0 || ac->encoder_layers < 0 || ac->encoder_attention_heads <= 0
      || ac->d_model < 4 || ac->d_model % ac->encoder_attention_heads != 0
      || ac->d_model % 2 != 0 || ac->n_window <= 0 || ac->n_window_infer < 2 * ac->n_window) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "audio_config: unsupported sizes (num_mel_bins %d, downsample_hidden_size %d, "
                 "d_model %d, encoder_attention_heads %d, n_window %d, n_window_infer %d)",
                 ac->num_mel_bins, ac->downsample_hidden_size, ac->d_model,
                 ac->encoder_attention_heads, ac->n_window, ac->n_window_infer);
    return FALSE;
  }
  return TRUE;
}

QomniAudioEncoder *
qomni_audio_encoder_new (const QomniWeights *w, const QomniConfig *config, GError **error)
{
  const QomniAudioConfig *ac = &config->thinker.audio;
  QomniAudioEncoder *enc = g_new0 (QomniAudioEncoder, 1);
  enc->M = ac->num_mel_bins;
  enc->C = ac->downsample_hidden_size;
  enc->D = ac->d_model;
  enc->FF = ac->encoder_ffn_dim;
  enc->OUT = ac->output_dim;
  enc->L = ac->encoder_layers;
  enc->nh = ac->encoder_attention_heads;
  enc->chunk = 2 * ac->n_window;
  if (!qomni_audio_config_check (ac, error))
    goto fail;
  enc->hd = enc->D / enc->nh;
  enc->ratio = ac->n_window_infer / enc->chunk;
  enc->F1 = half_up (enc->M);
  enc->F2 = half_up (enc->F1);
  enc->F3 = half_up (enc->F2);
  enc->tok_max = tokens_for (enc->chunk);
  enc->win_max = enc->tok_max * enc->ratio;
  const int M = enc->M, C = enc->C, D = enc->D, FF = enc->FF, OUT = enc->OUT;

  if (!load_conv (&enc->conv[0], w, 1, C, 1, error)
      || !load_conv (&enc->conv[1], w, 2, C, C, error)
      || !load_conv (&enc->conv[2], w, 3, C, C, error))
    goto fail;
  QOMNI_LOAD_MAT (enc->conv_out, D, (int64_t) C * enc->F3, PREFIX ".conv_out.weight");

  enc->layers = g_new0 (Layer, MAX (enc->L, 1));
  const char *lfmt = PREFIX ".layers.%d.%s";
  for (int l = 0; l < enc->L; l++) {
    Layer *ly = &enc->layers[l];
    QOMNI_LOAD_MAT (ly->wq, D, D, PREFIX ".layers.%d.self_attn.q_proj.weight", l);
    QOMNI_LOAD_MAT (ly->wk, D, D, PREFIX ".layers.%d.self_attn.k_proj.weight", l);
    QOMNI_LOAD_MAT (ly->wv, D, D, PREFIX ".layers.%d.self_attn.v_proj.weight", l);
    QOMNI_LOAD_MAT (ly->wo, D, D, PREFIX ".layers.%d.self_attn.out_proj.weight", l);
    QOMNI_LOAD_VEC (ly->bq, D, lfmt, l, "self_attn.q_proj.bias");
    QOMNI_LOAD_VEC (ly->bk, D, lfmt, l, "self_attn.k_proj.bias");
    QOMNI_LOAD_VEC (ly->bv, D, lfmt, l, "self_attn.v_proj.bias");
    QOMNI_LOAD_VEC (ly->bo, D, lfmt, l, "self_attn.out_proj.bias");
    QOMNI_LOAD_VEC (ly->ln1_w, D, lfmt, l, "self_attn_layer_norm.weight");
    QOMNI_LOAD_VEC (ly->ln1_b, D, lfmt, l, "self_attn_layer_norm.bias");
    QOMNI_LOAD_VEC (ly->ln2_w, D, lfmt, l, "final_layer_norm.weight");
    QOMNI_LOAD_VEC (ly->ln2_b, D, lfmt, l, "final_layer_norm.bias");
    QOMNI_LOAD_MAT (ly->fc1, FF, D, PREFIX ".layers.%d.fc1.weight", l);
    QOMNI_LOAD_MAT (ly->fc2, D, FF, PREFIX ".layers.%d.fc2.weight", l);
    QOMNI_LOAD_VEC (ly->b1, FF, lfmt, l, "fc1.bias");
    QOMNI_LOAD_VEC (ly->b2, D, lfmt, l, "fc2.bias");
  }
  QOMNI_LOAD_VEC (enc->ln_post_w, D, PREFIX ".ln_post.weight");
  QOMNI_LOAD_VEC (enc->ln_post_b, D, PREFIX ".ln_post.bias");
  QOMNI_LOAD_MAT (enc->proj1, D, D, PREFIX ".proj1.weight");
  QOMNI_LOAD_MAT (enc->proj2, OUT, D, PREFIX ".proj2.weight");
  QOMNI_LOAD_VEC (enc->proj1_b, D, PREFIX ".proj1.bias");
  QOMNI_LOAD_VEC (enc->proj2_b, OUT, PREFIX ".proj2.bias");

  /* Sinusoids as the reference's SinusoidsPositionEmbedding computes them in float32:
   * inv[i] = exp(−i·ln(10000)/(D/2 − 1)), row t = [sin(t·inv), cos(t·inv)]. Positions
   * restart in every chunk, so only rows 0..tok_max−1 are ever used. */
  const int half = D / 2;
  const float inc = (float) (log (10000.0) / (half - 1));
  enc->pos = g_new (float, (gsize) enc->tok_max * D);
  for (int t = 0; t < enc->tok_max; t++)
    for (int i = 0; i < half; i++) {
      const float a = (float) t * expf (-inc * (float) i);
      enc->pos[(gsize) t * D + i] = sinf (a);
      enc->pos[(gsize) t * D + half + i] = cosf (a);
    }

  const int W1 = half_up (enc->chunk), W2 = half_up (W1), W3 = enc->tok_max;
  const gsize col_n = MAX ((gsize) enc->F1 * W1 * 9,
                           MAX ((gsize) enc->F2 * W2, (gsize) enc->F3 * W3) * C * 9);
  const gsize win = enc->win_max;
  enc->x0 = g_try_new (float, (gsize) M * enc->chunk);
  enc->col = g_try_new (float, col_n);
  enc->a1 = g_try_new (float, (gsize) enc->F1 * W1 * C);
  enc->a2 = g_try_new (float, (gsize) enc->F2 * W2 * C);
  enc->a3 = g_try_new (float, (gsize) enc->F3 * W3 * C);
  enc->flat = g_try_new (float, (gsize) W3 * C * enc->F3);
  enc->tok = g_try_new (float, (gsize) W3 * D);
  enc->x = g_try_new (float, win * D);
  enc->xn = g_try_new (float, win * D);
  enc->q = g_try_new (float, win * D);
  enc->k = g_try_new (float, win * D);
  enc->v = g_try_new (float, win * D);
  enc->att = g_try_new (float, win * D);
  enc->ff = g_try_new (float, win * FF);
  if (!enc->x0 || !enc->col || !enc->a1 || !enc->a2 || !enc->a3 || !enc->flat || !enc->tok
      || !enc->x || !enc->xn || !enc->q || !enc->k || !enc->v || !enc->att || !enc->ff) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory for the audio encoder's scratch buffers");
    goto fail;
  }
  return enc;

fail:
  qomni_audio_encoder_free (enc);
  return NULL;
}

QomniAudioEncoder *
qomni_audio_encoder_new_on (const QomniWeights *w, const QomniConfig *config, QomniVk *vk,
                            GError **error)
{
  /* the CPU encoder checks the shapes and the config either way */
  QomniAudioEncoder *enc = qomni_audio_encoder_new (w, config, error);
  if (!enc || !vk)
    return enc;
#ifdef QOMNI_HAVE_VULKAN
  enc->gpu = qomni_vk_audio_encoder_new (vk, w, config, QOMNI_DTYPE_BF16, error);
  if (enc->gpu)
    return enc;
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "this build of qomni has no Vulkan backend");
#endif
  qomni_audio_encoder_free (enc);
  return NULL;
}

gboolean
qomni_audio_encoder_on_gpu (const QomniAudioEncoder *enc)
{
#ifdef QOMNI_HAVE_VULKAN
  return enc->gpu != NULL;
#else
  return FALSE;
#endif
}

void
qomni_audio_encoder_free (QomniAudioEncoder *enc)
{
  if (!enc)
    return;
#ifdef QOMNI_HAVE_VULKAN
  qomni_vk_audio_encoder_free (enc->gpu);
#endif
  for (int i = 0; i < 3; i++)
    g_free (enc->conv[i].bias);
  if (enc->layers) {
    for (int l = 0; l < enc->L; l++) {
      Layer *ly = &enc->layers[l];
      g_free (ly->bq);
      g_free (ly->bk);
      g_free (ly->bv);
      g_free (ly->bo);
      g_free (ly->ln1_w);
      g_free (ly->ln1_b);
      g_free (ly->ln2_w);
      g_free (ly->ln2_b);
      g_free (ly->b1);
      g_free (ly->b2);
    }
    g_free (enc->layers);
  }
  g_free (enc->ln_post_w);
  g_free (enc->ln_post_b);
  g_free (enc->proj1_b);
  g_free (enc->proj2_b);
  g_free (enc->pos);
  g_free (enc->x0);
  g_free (enc->col);
  g_free (enc->a1);
  g_free (enc->a2);
  g_free (enc->a3);
  g_free (enc->flat);
  g_free (enc->tok);
  g_free (enc->x);
  g_free (enc->xn);
  g_free (enc->q);
  g_free (enc->k);
  g_free (enc->v);
  g_free (enc->att);
  g_free (enc->ff);
  g_free (enc);
}

int
qomni_audio_encoder_output_dim (const QomniAudioEncoder *enc)
{
  return enc->OUT;
}

int
qomni_audio_encoder_n_tokens (const QomniAudioEncoder *enc, int n_frames)
{
  if (n_frames <= 0)
    return 0;
  return (n_frames / enc->chunk) * enc->tok_max + tokens_for (n_frames % enc->chunk);
}

void
qomni_audio_encoder_set_trace (QomniAudioEncoder *enc, QomniAudioTraceFn fn, gpointer user)
{
  enc->trace = fn;
  enc->trace_user = user;
}

/* Exact GELU over n values, split across threads (erf is the costly part). */
static void
gelu_par (float *x, int64_t n)
{
  const int64_t block = 16384;
#pragma omp parallel for schedule(static) if (n > 2 * block)
  for (int64_t i0 = 0; i0 < n; i0 += block)
    qomni_cpu_gelu (x + i0, MIN (block, n - i0));
}

/* col [Fo·Wo, Ci·9] for a 3×3, stride 2, padding 1 convolution of x [Fi, Wi, Ci];
 * out-of-range taps are the zero padding. */
static void
im2col (float *col, const float *x, int Fi, int Wi, int Ci, int Fo, int Wo)
{
  const int K = Ci * 9;
#pragma omp parallel for schedule(static) if ((double) Fo * Wo * K > 65536.0)
  for (int fo = 0; fo < Fo; fo++)
    for (int wo = 0; wo < Wo; wo++) {
      float *c = col + ((gsize) fo * Wo + wo) * K;
      for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++) {
          const int fi = 2 * fo + kh - 1, wi = 2 * wo + kw - 1, kk = kh * 3 + kw;
          if (fi < 0 || fi >= Fi || wi < 0 || wi >= Wi) {
            for (int ci = 0; ci < Ci; ci++)
              c[ci * 9 + kk] = 0.0f;
          } else {
            const float *src = x + ((gsize) fi * Wi + wi) * Ci;
            for (int ci = 0; ci < Ci; ci++)
              c[ci * 9 + kk] = src[ci];
          }
        }
    }
}

/* y [Fo, Wo, Co] = GELU(conv(x [Fi, Wi, Ci])); the pre-GELU output goes to the trace
 * (chunk `chunk` of [chunks, Co, Fo, Wo]) when tr is not NULL. */
static void
conv_stage (QomniAudioEncoder *enc, const Conv *cv, const float *x, int Fi, int Wi, float *y,
            float *tr, int chunk)
{
  const int Fo = half_up (Fi), Wo = half_up (Wi), Co = (int) cv->w2d.shape[0];
  im2col (enc->col, x, Fi, Wi, cv->ci, Fo, Wo);
  qomni_cpu_linear (y, enc->col, Fo * Wo, &cv->w2d, cv->bias);
  if (tr) {
    float *dst = tr + (gsize) chunk * Co * Fo * Wo;
    for (int p = 0; p < Fo * Wo; p++)
      for (int c = 0; c < Co; c++)
        dst[(gsize) c * Fo * Wo + p] = y[(gsize) p * Co + c];
  }
  gelu_par (y, (int64_t) Fo * Wo * Co);
}

/* Chunk `index` (frames [start, start + len) of features [M, T]), zero-padded to Lc frames,
 * through the convolutions and conv_out: enc->tok [W3, D] (positions not yet added). */
static void
run_chunk (QomniAudioEncoder *enc, const float *features, int T, int index, int start, int len,
           int Lc, Trace *tr)
{
  const int M = enc->M, C = enc->C, D = enc->D;
  const int W1 = half_up (Lc), W2 = half_up (W1), W3 = half_up (W2);
  /* [M, Lc, 1]: mel bin is the height, time the width; frames past len stay zero so the
   * convolutions see exactly the reference's padded chunk (pitfall 13). */
  for (int f = 0; f < M; f++) {
    float *row = enc->x0 + (gsize) f * Lc;
    memcpy (row, features + (gsize) f * T + start, sizeof (float) * len);
    memset (row + len, 0, sizeof (float) * (Lc - len));
  }
  /* # HF: conv2d1 [C, 1, 3, 3]: [M, Lc, 1] -> [F1, W1, C] */
  conv_stage (enc, &enc->conv[0], enc->x0, M, Lc, enc->a1, tr ? tr->conv[0] : NULL, index);
  /* # HF: conv2d2 [C, C, 3, 3]: -> [F2, W2, C] */
  conv_stage (enc, &enc->conv[1], enc->a1, enc->F1, W1, enc->a2, tr ? tr->conv[1] : NULL,
              index);
  /* # HF: conv2d3 [C, C, 3, 3]: -> [F3, W3, C] */
  conv_stage (enc, &enc->conv[2], enc->a2, enc->F2, W2, enc->a3, tr ? tr->conv[2] : NULL,
              index);
  /* Each time step's [C, F3] map flattened channel-major (c·F3 + f): [W3, C·F3]. */
  const int F3 = enc->F3;
  for (int t = 0; t < W3; t++)
    for (int f = 0; f < F3; f++)
      for (int c = 0; c < C; c++)
        enc->flat[(gsize) t * C * F3 + (gsize) c * F3 + f] =
            enc->a3[((gsize) f * W3 + t) * C + c];
  /* # HF: conv_out [D, C·F3], no bias: -> [W3, D] */
  qomni_cpu_linear (enc->tok, enc->flat, W3, enc->conv_out, NULL);
  if (tr)
    memcpy (tr->conv_out + (gsize) index * W3 * D, enc->tok, sizeof (float) * W3 * D);
}

/* One attention window x [n, D] through the layers (x is updated in place). row0: the
 * window's first token within the audio, for the trace. */
static void
run_layers (QomniAudioEncoder *enc, int n, int row0, Trace *tr)
{
  const int D = enc->D;
  float *x = enc->x, *xn = enc->xn;
  for (int l = 0; l < enc->L; l++) {
    const Layer *ly = &enc->layers[l];
    /* x = x + out_proj(MHA(LN1(x))): bidirectional over the window, nh heads of hd */
    qomni_cpu_layernorm (xn, x, n, D, ly->ln1_w, ly->ln1_b, LN_EPS);
    qomni_cpu_linear (enc->q, xn, n, ly->wq, ly->bq);
    qomni_cpu_linear (enc->k, xn, n, ly->wk, ly->bk);
    qomni_cpu_linear (enc->v, xn, n, ly->wv, ly->bv);
    qomni_cpu_attention (enc->att, enc->q, enc->k, enc->v, n, n, enc->nh, enc->nh, enc->hd, D,
                         0, FALSE, 0);
    qomni_cpu_linear (xn, enc->att, n, ly->wo, ly->bo);
    qomni_cpu_add (x, xn, (int64_t) n * D);
    /* x = x + fc2(GELU(fc1(LN2(x)))) */
    qomni_cpu_layernorm (xn, x, n, D, ly->ln2_w, ly->ln2_b, LN_EPS);
    qomni_cpu_linear (enc->ff, xn, n, ly->fc1, ly->b1);
    gelu_par (enc->ff, (int64_t) n * enc->FF);
    qomni_cpu_linear (xn, enc->ff, n, ly->fc2, ly->b2);
    qomni_cpu_add (x, xn, (int64_t) n * D);
    /* # HF: layers.N */
    if (tr)
      memcpy (tr->layers[l] + (gsize) row0 * D, x, sizeof (float) * n * D);
  }
}

/* Output head over one window: out [n, OUT] = proj2(GELU(proj1(ln_post(x)))). */
static void
run_head (QomniAudioEncoder *enc, int n, int row0, float *out, Trace *tr)
{
  const int D = enc->D;
  /* # HF: ln_post */
  qomni_cpu_layernorm (enc->xn, enc->x, n, D, enc->ln_post_w, enc->ln_post_b, LN_EPS);
  if (tr)
    memcpy (tr->ln_post + (gsize) row0 * D, enc->xn, sizeof (float) * n * D);
  /* # HF: proj1 [D, D] (traced before the GELU, as the module's output) */
  qomni_cpu_linear (enc->q, enc->xn, n, enc->proj1, enc->proj1_b);
  if (tr)
    memcpy (tr->proj1 + (gsize) row0 * D, enc->q, sizeof (float) * n * D);
  gelu_par (enc->q, (int64_t) n * D);
  /* # HF: proj2 [OUT, D] */
  qomni_cpu_linear (out, enc->q, n, enc->proj2, enc->proj2_b);
}

static void
trace_free (Trace *tr, int L)
{
  for (int i = 0; i < 3; i++)
    g_free (tr->conv[i]);
  g_free (tr->conv_out);
  if (tr->layers)
    for (int l = 0; l < L; l++)
      g_free (tr->layers[l]);
  g_free (tr->layers);
  g_free (tr->ln_post);
  g_free (tr->proj1);
}

static void
trace_emit (QomniAudioEncoder *enc, Trace *tr, int n_chunks, int Lc, int A, const float *out)
{
  const int C = enc->C, D = enc->D;
  int F = enc->M, W = Lc;
  for (int i = 0; i < 3; i++) {
    F = half_up (F);
    W = half_up (W);
    g_autofree char *name = g_strdup_printf ("conv2d%d", i + 1);
    enc->trace (name, tr->conv[i], (int64_t[]) { n_chunks, C, F, W }, 4, enc->trace_user);
  }
  enc->trace ("conv_out", tr->conv_out, (int64_t[]) { n_chunks, W, D }, 3, enc->trace_user);
  for (int l = 0; l < enc->L; l++) {
    g_autofree char *name = g_strdup_printf ("layers.%d", l);
    enc->trace (name, tr->layers[l], (int64_t[]) { A, D }, 2, enc->trace_user);
  }
  enc->trace ("ln_post", tr->ln_post, (int64_t[]) { A, D }, 2, enc->trace_user);
  enc->trace ("proj1", tr->proj1, (int64_t[]) { A, D }, 2, enc->trace_user);
  enc->trace ("proj2", out, (int64_t[]) { A, enc->OUT }, 2, enc->trace_user);
}

gboolean
qomni_audio_encoder_encode (QomniAudioEncoder *enc, const float *features, int T, float *out,
                            GError **error)
{
  g_return_val_if_fail (enc != NULL && out != NULL, FALSE);
#ifdef QOMNI_HAVE_VULKAN
  if (enc->gpu) {
    if (enc->trace) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                   "the audio encoder's stages cannot be traced on the GPU; trace a CPU "
                   "encoder");
      return FALSE;
    }
    return qomni_vk_audio_encoder_encode (enc->gpu, features, T, out, error);
  }
#endif
  if (T <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the audio encoder needs at least one mel frame (got %d)", T);
    return FALSE;
  }
  g_return_val_if_fail (features != NULL, FALSE);
  const gsize n_feat = (gsize) enc->M * T;
  for (gsize i = 0; i < n_feat; i++)
    if (!isfinite (features[i])) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "mel feature %" G_GSIZE_FORMAT " (bin %d, frame %d) is not finite",
                   i, (int) (i / T), (int) (i % T));
      return FALSE;
    }

  const int D = enc->D;
  const int n_chunks = (T + enc->chunk - 1) / enc->chunk;
  /* Every chunk is padded to the longest one: a full chunk as soon as there are two. */
  const int Lc = n_chunks > 1 ? enc->chunk : T;
  const int W1 = half_up (Lc), W2 = half_up (W1), W3 = half_up (W2);
  const int A = qomni_audio_encoder_n_tokens (enc, T);

  Trace tr_store = { 0 }, *tr = NULL;
  if (enc->trace) {
    tr = &tr_store;
    const gsize nc = n_chunks;
    tr->conv[0] = g_try_new (float, nc * enc->C * enc->F1 * W1);
    tr->conv[1] = g_try_new (float, nc * enc->C * enc->F2 * W2);
    tr->conv[2] = g_try_new (float, nc * enc->C * enc->F3 * W3);
    tr->conv_out = g_try_new (float, nc * W3 * D);
    tr->layers = g_new0 (float *, MAX (enc->L, 1));
    gboolean ok = tr->conv[0] && tr->conv[1] && tr->conv[2] && tr->conv_out;
    for (int l = 0; l < enc->L; l++)
      ok = (tr->layers[l] = g_try_new (float, (gsize) A * D)) && ok;
    tr->ln_post = g_try_new (float, (gsize) A * D);
    tr->proj1 = g_try_new (float, (gsize) A * D);
    if (!ok || !tr->ln_post || !tr->proj1) {
      trace_free (tr, enc->L);
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                   "out of memory for tracing %d mel frames through the audio encoder", T);
      return FALSE;
    }
  }

  /* Attention windows of win_max tokens are exactly `ratio` consecutive chunks: all chunks
   * but the last hold tok_max tokens. With a single chunk the one window holds all of it. */
  int row0 = 0;
  for (int c0 = 0; c0 < n_chunks; c0 += enc->ratio) {
    const int c1 = MIN (c0 + enc->ratio, n_chunks);
    int n = 0;
    for (int c = c0; c < c1; c++) {
      const int start = c * enc->chunk;
      const int len = MIN (enc->chunk, T - start);
      run_chunk (enc, features, T, c, start, len, Lc, tr);
      /* Keep the chunk's valid tokens, positions 0.. restarting per chunk. */
      const int keep = tokens_for (len);
      for (int t = 0; t < keep; t++) {
        float *dst = enc->x + (gsize) (n + t) * D;
        const float *src = enc->tok + (gsize) t * D, *pe = enc->pos + (gsize) t * D;
        for (int i = 0; i < D; i++)
          dst[i] = src[i] + pe[i];
      }
      n += keep;
    }
    run_layers (enc, n, row0, tr);
    run_head (enc, n, row0, out + (gsize) row0 * enc->OUT, tr);
    row0 += n;
  }
  g_assert (row0 == A);

  if (tr) {
    trace_emit (enc, tr, n_chunks, Lc, A, out);
    trace_free (tr, enc->L);
  }
  return TRUE;
}
