/* qomni — the AuT audio encoder on the Vulkan device (see audio-encoder-vk.h). */
#include "audio-encoder-vk.h"
#include "audio-encoder.h"
#include "encoder-vk.h"
#include "error.h"
#include "ops-cpu.h"
#include "vk-ops.h"

#include <math.h>
#include <string.h>

#define PREFIX "thinker.audio_tower"
#define LN_EPS 1e-5f          /* as audio-encoder.c: nn.LayerNorm's default */
#define WINDOWS_PER_PASS 16   /* attention windows the layers take as one batch */
#define COL_BYTES (64u << 20) /* the im2col scratch's budget */

/* The weights and shapes are loaded once per (device, store) into one of these and never
 * changed after (qomni_vk_shared_get; random weights: each encoder its own); an encoder is
 * a copy of it with its own scratch, so the recording reads everything through one
 * pointer and encoders of several streams run at the same time. */
struct _QomniVkAudioEncoder {
  QomniVk *vk;
  QomniVkAudioEncoder *loaded;  /* an encoder: the weights it copies */
  gboolean owns_loaded;         /* random weights, not shared */
  int M, C, D, FF, OUT, nh, hd, L;
  int chunk, ratio, F1, F2, F3, tok_max, win_max;
  int fe_chunks;              /* chunks per pass of the convolutions */
  int cap;                    /* rows per pass of the layers: WINDOWS_PER_PASS windows */
  QomniVkMat conv[3];         /* # HF: conv2dN [C, Ci, 3, 3] as [C, Ci·9] */
  int conv_b[3];
  QomniVkMat conv_out;        /* # HF: conv_out [D, C·F3], columns reordered to f·C + c */
  QomniVkEncBlock *blocks;    /* # HF: layers.N */
  int ln_post_w, ln_post_b;   /* # HF: ln_post */
  QomniVkMat proj1, proj2;    /* # HF: proj1 [D, D], proj2 [OUT, D] */
  int proj1_b, proj2_b;
  QomniVkBuffer *vecs;
  QomniVkBuffer *pos;         /* [cap, D]: the sinusoids, restarting every tok_max rows */
  QomniVkBuffer *col, *a1, *a2, *a3, *y;
  QomniVkBuffer *feat, *res;  /* host-visible: the features in, the rows out (grow-only) */
  QomniVkEncShape shape;
  QomniVkEncActs acts;
};

static inline int
half_up (int n)
{
  return (n + 1) / 2;
}

static inline int
tokens_for (int r)
{
  return half_up (half_up (half_up (r)));
}

/* conv_out's weight with its columns c·F3 + f moved to f·C + c: the GPU front end leaves
 * each time step as [F3, C] (channels fastest), the reference flattens it as [C, F3].
 * Element by element for f32, f16 and bf16; block formats (a quantized GGUF) cannot move
 * single elements, so those rows are dequantized and uploaded as f32. */
static gboolean
upload_conv_out (QomniVkAudioEncoder *enc, const QomniTensor *t, GError **error)
{
  const QomniDTypeInfo *info = qomni_dtype_info (t->dtype);
  const gboolean whole = info->block_elems == 1;
  const QomniDType dt = whole ? t->dtype : QOMNI_DTYPE_F32;
  const int C = enc->C, F3 = enc->F3, K = C * F3;
  const size_t es = whole ? (size_t) info->block_bytes : sizeof (float);
  const size_t bytes = es * (size_t) enc->D * K;
  g_autofree char *perm = g_try_malloc (bytes);
  g_autofree float *row = whole ? NULL : g_try_new (float, K);
  if (!perm || (!whole && !row)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory reordering %s",
                 t->name);
    return FALSE;
  }
  for (int d = 0; d < enc->D; d++) {
    const char *src = (const char *) t->data + (size_t) d * K * es;
    if (!whole) {
      qomni_weight_row_f32 (t, d, row);
      src = (const char *) row;
    }
    char *dst = perm + (size_t) d * K * es;
    for (int c = 0; c < C; c++)
      for (int f = 0; f < F3; f++)
        memcpy (dst + ((size_t) f * C + c) * es, src + ((size_t) c * F3 + f) * es, es);
  }
  QomniTensor p = *t;
  p.data = perm;
  p.dtype = dt;
  p.nbytes = bytes;
  const QomniTensor *parts[] = { &p };
  return qomni_vk_mat_new (enc->vk, &enc->conv_out, parts, 1, enc->D, K, dt, 0,
                           "audio conv_out", error);
}

#define VEC(dst, len, fill, ...)                                                              \
  G_STMT_START {                                                                              \
    if ((dst = qomni_vk_vecs_add (vecs, w, len, fill, error, __VA_ARGS__)) < 0)               \
      goto fail;                                                                              \
  } G_STMT_END

/* A convolution's weight [Co, Ci, 3, 3] as the matrix [Co, Ci·9] over the same bytes. */
static gboolean
conv_load (QomniVkAudioEncoder *enc, int i, const QomniWeights *w, QomniDType rdt, int ci,
           GError **error)
{
  const int co = enc->C;
  const char *what = i == 0 ? "audio conv2d1" : i == 1 ? "audio conv2d2" : "audio conv2d3";
  if (!w)
    return qomni_vk_mat_new (enc->vk, &enc->conv[i], NULL, 1, co, ci * 9, rdt, 100 + i, what,
                             error);
  const QomniTensor *t = qomni_weights_get (w, error, 4, (int64_t[]) { co, ci, 3, 3 },
                                            PREFIX ".conv2d%d.weight", i + 1);
  if (!t)
    return FALSE;
  QomniTensor m = *t;
  m.ndim = 2;
  m.shape[0] = co;
  m.shape[1] = (int64_t) ci * 9;
  const QomniTensor *parts[] = { &m };
  return qomni_vk_mat_new (enc->vk, &enc->conv[i], parts, 1, co, ci * 9, rdt, 0, what, error);
}

static void audio_unload (gpointer p);

typedef struct {
  const QomniWeights *w;
  const QomniConfig *config;
  QomniDType rdt;
} AudioMake;

/* (a QomniVkSharedMake) The weights on the device and the shapes, no scratch. */
static gpointer
audio_load (QomniVk *vk, gpointer data, GError **error)
{
  const QomniWeights *w = ((const AudioMake *) data)->w;
  const QomniConfig *config = ((const AudioMake *) data)->config;
  const QomniDType rdt = ((const AudioMake *) data)->rdt;
  const QomniAudioConfig *ac = &config->thinker.audio;
  QomniVkAudioEncoder *enc = g_new0 (QomniVkAudioEncoder, 1);
  GArray *vecs = g_array_new (FALSE, FALSE, sizeof (float));
  enc->vk = vk;
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
  if (enc->hd % 4 != 0 || enc->hd > 256) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU attention needs a head size that is a multiple of 4 up to 256 "
                 "(audio encoder: %d)", enc->hd);
    goto fail;
  }
  enc->ratio = ac->n_window_infer / enc->chunk;
  enc->F1 = half_up (enc->M);
  enc->F2 = half_up (enc->F1);
  enc->F3 = half_up (enc->F2);
  enc->tok_max = tokens_for (enc->chunk);
  enc->win_max = enc->tok_max * enc->ratio;
  enc->cap = WINDOWS_PER_PASS * enc->win_max;
  const int C = enc->C, D = enc->D, FF = enc->FF, OUT = enc->OUT;

  if (!conv_load (enc, 0, w, rdt, 1, error) || !conv_load (enc, 1, w, rdt, C, error)
      || !conv_load (enc, 2, w, rdt, C, error))
    goto fail;
  for (int i = 0; i < 3; i++)
    VEC (enc->conv_b[i], C, 0.0f, PREFIX ".conv2d%d.bias", i + 1);
  if (w) {
    const QomniTensor *t = qomni_weights_get (w, error, 2, (int64_t[]) { D, (int64_t) C * enc->F3 },
                                              PREFIX ".conv_out.weight");
    if (!t || !upload_conv_out (enc, t, error))
      goto fail;
  } else if (!qomni_vk_mat_new (vk, &enc->conv_out, NULL, 1, D, C * enc->F3, rdt, 103,
                                "audio conv_out", error))
    goto fail;

  enc->blocks = g_new0 (QomniVkEncBlock, MAX (enc->L, 1));
  const char *lf = PREFIX ".layers.%d.%s";
  for (int l = 0; l < enc->L; l++) {
    QomniVkEncBlock *b = &enc->blocks[l];
    const guint32 seed = 1000 + 8 * l;
    if (w) {
      const QomniTensor *p[3];
      const char *qkv[] = { "q_proj", "k_proj", "v_proj" };
      for (int i = 0; i < 3; i++)
        if (!(p[i] = qomni_weights_get (w, error, 2, (int64_t[]) { D, D },
                                        PREFIX ".layers.%d.self_attn.%s.weight", l, qkv[i])))
          goto fail;
      if (!qomni_vk_mat_new (vk, &b->qkv, p, 3, 3 * D, D, rdt, 0, "audio q/k/v", error))
        goto fail;
    } else if (!qomni_vk_mat_new (vk, &b->qkv, NULL, 1, 3 * D, D, rdt, seed, "audio q/k/v",
                                  error))
      goto fail;
    if (!qomni_vk_mat_load (vk, &b->o, w, D, D, rdt, seed + 1, error,
                            PREFIX ".layers.%d.self_attn.out_proj.weight", l)
        || !qomni_vk_mat_load (vk, &b->fc1, w, FF, D, rdt, seed + 2, error,
                               PREFIX ".layers.%d.fc1.weight", l)
        || !qomni_vk_mat_load (vk, &b->fc2, w, D, FF, rdt, seed + 3, error,
                               PREFIX ".layers.%d.fc2.weight", l))
      goto fail;
    /* the q, k and v biases end to end, like their stacked weights */
    VEC (b->qkv_b, D, 0.0f, lf, l, "self_attn.q_proj.bias");
    int off;
    VEC (off, D, 0.0f, lf, l, "self_attn.k_proj.bias");
    VEC (off, D, 0.0f, lf, l, "self_attn.v_proj.bias");
    VEC (b->o_b, D, 0.0f, lf, l, "self_attn.out_proj.bias");
    VEC (b->ln1_w, D, 1.0f, lf, l, "self_attn_layer_norm.weight");
    VEC (b->ln1_b, D, 0.0f, lf, l, "self_attn_layer_norm.bias");
    VEC (b->ln2_w, D, 1.0f, lf, l, "final_layer_norm.weight");
    VEC (b->ln2_b, D, 0.0f, lf, l, "final_layer_norm.bias");
    VEC (b->fc1_b, FF, 0.0f, lf, l, "fc1.bias");
    VEC (b->fc2_b, D, 0.0f, lf, l, "fc2.bias");
  }
  VEC (enc->ln_post_w, D, 1.0f, PREFIX ".ln_post.weight");
  VEC (enc->ln_post_b, D, 0.0f, PREFIX ".ln_post.bias");
  if (!qomni_vk_mat_load (vk, &enc->proj1, w, D, D, rdt, 900, error, PREFIX ".proj1.weight")
      || !qomni_vk_mat_load (vk, &enc->proj2, w, OUT, D, rdt, 901, error,
                             PREFIX ".proj2.weight"))
    goto fail;
  VEC (enc->proj1_b, D, 0.0f, PREFIX ".proj1.bias");
  VEC (enc->proj2_b, OUT, 0.0f, PREFIX ".proj2.bias");
  if (!(enc->vecs = qomni_vk_vecs_upload (vk, vecs, error)))
    goto fail;

  /* The sinusoids exactly as audio-encoder.c computes them, tiled over a pass: every chunk
   * but the audio's last has tok_max tokens, so row r is position r mod tok_max. */
  {
    const int half = D / 2;
    const float inc = (float) (log (10000.0) / (half - 1));
    g_autofree float *pos = g_try_new (float, (gsize) enc->cap * D);
    if (!pos) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for the positions");
      goto fail;
    }
    for (int t = 0; t < enc->tok_max; t++)
      for (int i = 0; i < half; i++) {
        const float a = (float) t * expf (-inc * (float) i);
        pos[(gsize) t * D + i] = sinf (a);
        pos[(gsize) t * D + half + i] = cosf (a);
      }
    for (int r = enc->tok_max; r < enc->cap; r++)
      memcpy (pos + (gsize) r * D, pos + (gsize) (r % enc->tok_max) * D, sizeof (float) * D);
    enc->pos = qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) enc->cap * D,
                                    QOMNI_VK_MEM_DEVICE, "audio positions", error);
    if (!enc->pos
        || !qomni_vk_upload (vk, enc->pos, 0, pos, sizeof (float) * (size_t) enc->cap * D,
                             error))
      goto fail;
  }

  enc->shape = (QomniVkEncShape) { .D = D, .FF = FF, .nh = enc->nh, .hd = enc->hd,
                                   .eps = LN_EPS, .act = QOMNI_VK_ACT_GELU };
  g_array_free (vecs, TRUE);
  return enc;

fail:
  g_array_free (vecs, TRUE);
  audio_unload (enc);
  return NULL;
}

/* Frees what audio_load made. */
static void
audio_unload (gpointer p)
{
  QomniVkAudioEncoder *enc = p;
  if (!enc)
    return;
  QomniVk *vk = enc->vk;
  for (int i = 0; i < 3; i++)
    qomni_vk_mat_clear (vk, &enc->conv[i]);
  qomni_vk_mat_clear (vk, &enc->conv_out);
  for (int l = 0; enc->blocks && l < enc->L; l++)
    qomni_vk_enc_block_clear (vk, &enc->blocks[l]);
  g_free (enc->blocks);
  qomni_vk_mat_clear (vk, &enc->proj1);
  qomni_vk_mat_clear (vk, &enc->proj2);
  qomni_vk_buffer_free (vk, enc->vecs);
  qomni_vk_buffer_free (vk, enc->pos);
  g_free (enc);
}

QomniVkAudioEncoder *
qomni_vk_audio_encoder_new (QomniVk *vk, const QomniWeights *w, const QomniConfig *config,
                            QomniDType rdt, GError **error)
{
  /* one upload per store (and upload dtype) on this device, whichever element asks */
  AudioMake make = { w, config, rdt };
  QomniVkAudioEncoder *loaded;
  if (w) {
    g_autofree char *key = g_strdup_printf ("audio encoder: store %u, %s",
                                            qomni_weights_serial (w),
                                            qomni_dtype_info (rdt)->name);
    loaded = qomni_vk_shared_get (vk, key, audio_load, &make, audio_unload, error);
  } else {
    loaded = audio_load (vk, &make, error);
  }
  if (!loaded)
    return NULL;
  QomniVkAudioEncoder *enc = g_memdup2 (loaded, sizeof *enc);
  enc->loaded = loaded;
  enc->owns_loaded = w == NULL;

  /* front-end scratch for fe_chunks chunks */
  const int C = enc->C, OUT = enc->OUT;
  const int W1 = half_up (enc->chunk), W2 = half_up (W1), W3 = enc->tok_max;
  const uint64_t col_chunk = 4 * MAX ((uint64_t) W1 * enc->F1 * 9,
                                      MAX ((uint64_t) W2 * enc->F2, (uint64_t) W3 * enc->F3)
                                          * C * 9);
  enc->fe_chunks = (int) CLAMP (COL_BYTES / col_chunk, 1, (uint64_t) enc->ratio);
  const uint64_t fe = enc->fe_chunks;
  struct { QomniVkBuffer **b; uint64_t bytes; const char *what; } bufs[] = {
    { &enc->col, fe * col_chunk, "audio im2col" },
    { &enc->a1, 4 * fe * W1 * enc->F1 * C, "audio conv2d1 output" },
    { &enc->a2, 4 * fe * W2 * enc->F2 * C, "audio conv2d2 output" },
    { &enc->a3, 4 * fe * W3 * enc->F3 * C, "audio conv2d3 output" },
    { &enc->y, 4 * (uint64_t) enc->cap * OUT, "audio encoder output" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    if (!(*bufs[i].b = qomni_vk_buffer_new (vk, bufs[i].bytes, QOMNI_VK_MEM_DEVICE, bufs[i].what,
                                            error)))
      goto fail;
  if (!qomni_vk_enc_acts_new (vk, &enc->acts, &enc->shape, enc->cap, error))
    goto fail;
  return enc;

fail:
  qomni_vk_audio_encoder_free (enc);
  return NULL;
}

void
qomni_vk_audio_encoder_free (QomniVkAudioEncoder *enc)
{
  if (!enc)
    return;
  QomniVk *vk = enc->vk;
  QomniVkBuffer *bs[] = { enc->col, enc->a1, enc->a2, enc->a3, enc->y, enc->feat, enc->res };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
    qomni_vk_buffer_free (vk, bs[i]);
  qomni_vk_enc_acts_clear (vk, &enc->acts);
  if (enc->owns_loaded)
    audio_unload (enc->loaded);
  else
    qomni_vk_shared_release (vk, enc->loaded);
  g_free (enc);
}

int
qomni_vk_audio_encoder_output_dim (const QomniVkAudioEncoder *enc)
{
  return enc->OUT;
}

int
qomni_vk_audio_encoder_n_tokens (const QomniVkAudioEncoder *enc, int n_frames)
{
  if (n_frames <= 0)
    return 0;
  return (n_frames / enc->chunk) * enc->tok_max + tokens_for (n_frames % enc->chunk);
}

/* One 3×3 stride-2 convolution + bias + GELU over nc chunks: im2col of x (layout in ip),
 * then the product into y [nc, Wo, Fo, C]. */
static void
rec_conv (QomniVkAudioEncoder *enc, QomniVkCmd *c, int i, QomniVkIm2colPush *ip,
          const QomniVkBuffer *x, const QomniVkBuffer *y)
{
  const uint64_t total = (uint64_t) ip->n_chunks * ip->Wo * ip->Fo * ip->Ci * 9;
  QomniVkBind b[] = { { x }, { enc->col } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_IM2COL, b, 2, ip, sizeof *ip,
                     (uint32_t) MIN ((total + 255) / 256, 16384), 1, 1);
  qomni_vk_rec_linear (c, &enc->conv[i], enc->col, 0, ip->Ci * 9, y, 0, enc->C,
                       ip->n_chunks * ip->Wo * ip->Fo, FALSE, enc->vecs, enc->conv_b[i],
                       QOMNI_VK_ACT_GELU, enc->acts.scratch);
}

gboolean
qomni_vk_audio_encoder_encode (QomniVkAudioEncoder *enc, const float *features, int T,
                               float *out, GError **error)
{
  g_return_val_if_fail (enc != NULL && out != NULL, FALSE);
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
  QomniVk *vk = enc->vk;
  const int C = enc->C, D = enc->D, OUT = enc->OUT;
  const int n_chunks = (T + enc->chunk - 1) / enc->chunk;
  /* every chunk is padded to the longest one: a full chunk as soon as there are two */
  const int Lc = n_chunks > 1 ? enc->chunk : T;
  const int W1 = half_up (Lc), W2 = half_up (W1), W3 = half_up (W2);
  const int A = qomni_vk_audio_encoder_n_tokens (enc, T);

  if (4 * (uint64_t) n_feat > qomni_vk_max_range (vk)) {
    /* the first convolution reads the features in place, through one binding */
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%d mel frames are more than one binding of %s covers; encode the audio in "
                 "parts (at most %" G_GUINT64_FORMAT " frames)", T, qomni_vk_device_name (vk),
                 qomni_vk_max_range (vk) / (4 * (uint64_t) enc->M));
    return FALSE;
  }
  if (!qomni_vk_host_ensure (vk, &enc->feat, 4 * (uint64_t) n_feat, "mel features", error)
      || !qomni_vk_host_ensure (vk, &enc->res, 4 * (uint64_t) A * OUT, "audio encoder result",
                                error))
    return FALSE;
  QomniVkBuffer *feat = enc->feat, *res = enc->res;
  memcpy (feat->map, features, 4 * n_feat);
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
  if (!c)
    return FALSE;
  const QomniVkEncActs *a = &enc->acts;
  const int per_pass = WINDOWS_PER_PASS * enc->ratio;   /* chunks */
  int row0 = 0;
  for (int g0 = 0; g0 < n_chunks; g0 += per_pass) {
    const int g1 = MIN (g0 + per_pass, n_chunks);
    /* x starts as the positions; conv_out accumulates onto them */
    qomni_vk_cmd_copy (c, enc->pos, 0, a->x, 0, 4 * (uint64_t) (g1 - g0) * W3 * D);
    for (int f0 = g0; f0 < g1; f0 += enc->fe_chunks) {
      const int nc = MIN (enc->fe_chunks, g1 - f0);
      /* # HF: conv2d1: the features [M, T] read in place, frames past T as zeros */
      QomniVkIm2colPush ip = { .n_chunks = nc, .Fi = enc->M, .Wi = Lc, .Ci = 1, .Fo = enc->F1,
                               .Wo = W1, .x_off = f0 * Lc, .x_chunk = Lc, .x_f = T, .x_w = 1,
                               .x_c = 0, .w_total = T - f0 * Lc };
      rec_conv (enc, c, 0, &ip, feat, enc->a1);
      /* # HF: conv2d2, conv2d3: inputs [chunk, W, F, C] */
      ip = (QomniVkIm2colPush) { .n_chunks = nc, .Fi = enc->F1, .Wi = W1, .Ci = C,
                                 .Fo = enc->F2, .Wo = W2, .x_chunk = W1 * enc->F1 * C,
                                 .x_f = C, .x_w = enc->F1 * C, .x_c = 1, .w_total = G_MAXUINT32 };
      rec_conv (enc, c, 1, &ip, enc->a1, enc->a2);
      ip = (QomniVkIm2colPush) { .n_chunks = nc, .Fi = enc->F2, .Wi = W2, .Ci = C,
                                 .Fo = enc->F3, .Wo = W3, .x_chunk = W2 * enc->F2 * C,
                                 .x_f = C, .x_w = enc->F2 * C, .x_c = 1, .w_total = G_MAXUINT32 };
      rec_conv (enc, c, 2, &ip, enc->a2, enc->a3);
      /* # HF: conv_out: each time step's [F3, C] row -> [D], onto the positions */
      qomni_vk_rec_linear (c, &enc->conv_out, enc->a3, 0, enc->F3 * C, a->x,
                           (uint32_t) (f0 - g0) * W3 * D, D, nc * W3, TRUE, NULL, -1, 0,
                           a->scratch);
    }
    /* the valid tokens are a prefix: only the audio's last chunk keeps fewer than W3 */
    int n = (g1 - g0) * W3;
    if (g1 == n_chunks)
      n -= W3 - tokens_for (T - (n_chunks - 1) * Lc);
    /* # HF: layers.N, attention inside windows of win_max tokens */
    for (int l = 0; l < enc->L; l++)
      qomni_vk_enc_block_record (c, &enc->blocks[l], enc->vecs, &enc->shape, a, n,
                                 enc->win_max, NULL, 0, 0);
    /* # HF: ln_post, proj1 + GELU, proj2 */
    qomni_vk_rec_layernorm (c, a->x, D, a->xn, D, n, D, enc->vecs, enc->ln_post_w,
                            enc->ln_post_b, LN_EPS);
    qomni_vk_rec_linear (c, &enc->proj1, a->xn, 0, D, a->att, 0, D, n, FALSE, enc->vecs,
                         enc->proj1_b, QOMNI_VK_ACT_GELU, a->scratch);
    qomni_vk_rec_linear (c, &enc->proj2, a->att, 0, D, enc->y, 0, OUT, n, FALSE, enc->vecs,
                         enc->proj2_b, QOMNI_VK_ACT_NONE, a->scratch);
    qomni_vk_cmd_copy (c, enc->y, 0, res, 4 * (uint64_t) row0 * OUT, 4 * (uint64_t) n * OUT);
    row0 += n;
  }
  g_assert (row0 == A);
  gboolean ok = qomni_vk_cmd_submit (c, error);
  if (ok)
    memcpy (out, res->map, 4 * (size_t) A * OUT);
  return ok;
}
