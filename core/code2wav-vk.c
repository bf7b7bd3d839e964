/* qomni — Code2Wav on the Vulkan device (the math of code2wav.c, architecture notes §10).
 *
 * Activations are time-major [T, C] as on the CPU. The convolutions read their kernels in
 * the stored PyTorch layout (conv1d.comp gathers the windows itself), the pointwise
 * ConvNeXt projections run as k = 1 convolutions (they have a bias), and the
 * pre-transformer uses the thinker's kernels (matmul, RMSNorm, RoPE, windowed attention).
 */
#include "code2wav-vk.h"
#include "attention-vk.h"
#include "error.h"
#include "ops-cpu.h"
#include "vk-ops.h"

#include <math.h>
#include <string.h>

#define N_STAGES 4    /* decoder blocks */
#define N_UNITS 3     /* residual units per block */
#define MAX_UP 4      /* ConvNeXt upsampling stages */
#define MAX_GRID 65535u

typedef struct {
  QomniVkBuffer *buf;
  QomniDType dtype;
} VkW;

/* A causal conv (stride 0) or a trimmed transposed conv (stride s). */
typedef struct {
  VkW w;
  uint32_t b_off;               /* bias [cout] in the vector buffer */
  int cin, cout, k, dil, stride;
} Conv;

typedef struct {
  uint32_t a_off, b_off;        /* exp α, 1/(exp β + 1e-9) [C] in the vector buffer */
  int C;
} Snake;

typedef struct {
  Conv up;                      /* # HF: upsample.i.0 */
  uint32_t dw_off;              /* # HF: upsample.i.1.dwconv: [H, 7] then the bias [H] */
  uint32_t ln_w, ln_b, gamma;
  Conv pw1, pw2;                /* pwconv1/2 as k = 1 convolutions */
  int ratio, inner;
} UpStage;

typedef struct {
  Snake act;
  Conv up;
  Snake act1[N_UNITS], act2[N_UNITS];
  Conv conv1[N_UNITS], conv2[N_UNITS];
  int rate;
} Block;

typedef struct {
  VkW q, k, v, o, gate, up, down;
  uint32_t in_norm, post_norm, ls_attn, ls_mlp, q_norm, k_norm;
  gboolean qk_norm;
} PreLayer;

/* The weights and the shapes are loaded once per (device, store) into one of these, shared
 * (qomni_vk_shared_get) and never changed after; each instance is a copy of it with its
 * own trace hook and activations, so the recording reads everything through one pointer. */
struct _QomniVkCode2Wav {
  QomniVk *vk;
  QomniVkCode2Wav *loaded;      /* an instance: the shared weights it copies */
  int H, Q, cb, D, n_up, L, nh, nkv, hd, qd, kvd, QKV, I, window;
  float eps;
  VkW embed;
  PreLayer *layers;
  uint32_t final_norm;
  UpStage ups[MAX_UP];
  Conv dec0;
  Block blocks[N_STAGES];
  Snake final_act;
  Conv final_conv;
  QomniVkBuffer *vec;           /* every small f32 vector */
  float *inv_freq;              /* [hd/2] */
  int spf, trim;
  QomniCode2WavTrace trace;
  gpointer trace_user;
  /* activations for calls of up to `cap` frames */
  int cap;
  QomniVkBuffer *buf[3], *pw, *xn, *qkv, *att, *g, *u, *tmp;
  QomniVkBuffer *mpart;         /* the pre-transformer's split-K matmul partials */
  QomniVkBuffer *step, *out;    /* host-visible: codes then RoPE tables; samples */
  size_t step_cs;               /* float offset of the tables in step */
};

/* ---- loading ---------------------------------------------------------------------- */

static uint32_t
vec_add (GArray *vec, const float *v, int64_t n)
{
  const uint32_t off = vec->len;
  g_array_append_vals (vec, v, (guint) n);
  return off;
}

/* Appends the f32 vector "name" [len] and sets *off; FALSE with the error otherwise. */
static gboolean
vec_load (GArray *vec, uint32_t *off, const QomniWeights *w, GError **error, int64_t len,
          const char *name)
{
  g_autofree float *v = qomni_weights_get_f32 (w, error, len, "%s", name);
  if (!v)
    return FALSE;
  *off = vec_add (vec, v, len);
  return TRUE;
}

/* Uploads a weight as stored; float_only: a dtype the float kernels cannot read
 * (quantized) is converted to f32 first. */
static gboolean
weight_upload (QomniVk *vk, VkW *dst, const QomniTensor *t, gboolean float_only,
               GError **error)
{
  g_autofree float *f32 = NULL;
  const void *src = t->data;
  size_t bytes = t->nbytes;
  dst->dtype = t->dtype;
  const gboolean readable = float_only
                                ? qomni_vk_pipe_for_float_dtype (QOMNI_VK_PIPE_CONV1D_F32, t->dtype) >= 0
                                : qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATMUL_F32, t->dtype) >= 0;
  if (!readable) {
    f32 = qomni_tensor_to_f32_alloc (t);
    src = f32;
    bytes = sizeof (float) * (size_t) qomni_tensor_nelements (t);
    dst->dtype = QOMNI_DTYPE_F32;
  }
  if (bytes > qomni_vk_max_range (vk)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: %zu bytes do not fit one binding of this device (%" G_GUINT64_FORMAT ")",
                 t->name, bytes, qomni_vk_max_range (vk));
    return FALSE;
  }
  dst->buf = qomni_vk_buffer_new (vk, (bytes + 15) & ~(uint64_t) 15, QOMNI_VK_MEM_DEVICE,
                                  "code2wav weights", error);
  return dst->buf && qomni_vk_upload (vk, dst->buf, 0, src, bytes, error);
}

static gboolean
matrix_load (QomniVk *vk, VkW *dst, const QomniWeights *w, int64_t rows, int64_t cols,
             GError **error, const char *fmt, const char *prefix, int layer)
{
  g_autofree char *name = g_strdup_printf (fmt, prefix, layer);
  const QomniTensor *t = qomni_weights_get (w, error, 2, (int64_t[]) { rows, cols }, "%s", name);
  return t && weight_upload (vk, dst, t, FALSE, error);
}

/* The conv weight "prefix.weight" [A, B, k] and its bias; transposed: [cin, cout, k] with
 * k a multiple of the stride, else [cout, cin, k] with the dilation. */
static gboolean
conv_load (QomniVk *vk, GArray *vec, Conv *cv, const QomniWeights *w, const char *prefix,
           gboolean transposed, int cin, int cout, int stride, int dilation, GError **error)
{
  const QomniTensor *t = qomni_weights_findf (w, "%s.weight", prefix);
  if (!t || t->ndim != 3) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "%s.weight: missing or not a 3-D convolution weight", prefix);
    return FALSE;
  }
  const int k = (int) t->shape[2];
  if (!qomni_weights_get (w, error, 3,
                          (int64_t[]) { transposed ? cin : cout, transposed ? cout : cin, k },
                          "%s.weight", prefix))
    return FALSE;
  if (transposed && k % stride != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: transposed kernel %d is not a multiple of the stride %d", prefix, k,
                 stride);
    return FALSE;
  }
  cv->cin = cin;
  cv->cout = cout;
  cv->k = k;
  cv->dil = transposed ? 1 : dilation;
  cv->stride = transposed ? stride : 0;
  g_autofree char *bname = g_strdup_printf ("%s.bias", prefix);
  return weight_upload (vk, &cv->w, t, TRUE, error)
         && vec_load (vec, &cv->b_off, w, error, cout, bname);
}

/* A [rows, cols] linear with a bias as a k = 1 convolution. */
static gboolean
pointwise_load (QomniVk *vk, GArray *vec, Conv *cv, const QomniWeights *w, const char *prefix,
                int cin, int cout, GError **error)
{
  g_autofree char *bname = g_strdup_printf ("%s.bias", prefix);
  const QomniTensor *t = qomni_weights_get (w, error, 2, (int64_t[]) { cout, cin },
                                            "%s.weight", prefix);
  cv->cin = cin;
  cv->cout = cout;
  cv->k = 1;
  cv->dil = 1;
  cv->stride = 0;
  return t && weight_upload (vk, &cv->w, t, TRUE, error)
         && vec_load (vec, &cv->b_off, w, error, cout, bname);
}

static gboolean
snake_load (GArray *vec, Snake *s, const QomniWeights *w, const char *prefix, int C,
            GError **error)
{
  g_autofree float *a = qomni_weights_get_f32 (w, error, C, "%s.alpha", prefix);
  g_autofree float *b = a ? qomni_weights_get_f32 (w, error, C, "%s.beta", prefix) : NULL;
  if (!b)
    return FALSE;
  /* log-space parameters (pitfall 25), turned into what the shader multiplies by, exactly
   * as snake_load in code2wav.c */
  for (int c = 0; c < C; c++) {
    a[c] = expf (a[c]);
    b[c] = 1.0f / (expf (b[c]) + 1e-9f);
  }
  s->C = C;
  s->a_off = vec_add (vec, a, C);
  s->b_off = vec_add (vec, b, C);
  return TRUE;
}

static void
conv_clear (QomniVk *vk, Conv *cv)
{
  qomni_vk_buffer_free (vk, cv->w.buf);
}

static void
acts_free (QomniVkCode2Wav *g)
{
  QomniVkBuffer **bs[] = { &g->buf[0], &g->buf[1], &g->buf[2], &g->pw, &g->xn, &g->qkv,
                           &g->att, &g->g, &g->u, &g->tmp, &g->mpart, &g->step, &g->out };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++) {
    qomni_vk_buffer_free (g->vk, *bs[i]);
    *bs[i] = NULL;
  }
  g->cap = 0;
}

/* Frees what code2wav_load made (the shared weights). */
static void
code2wav_unload (gpointer p)
{
  QomniVkCode2Wav *g = p;
  if (!g)
    return;
  QomniVk *vk = g->vk;
  for (int l = 0; g->layers && l < g->L; l++) {
    PreLayer *ly = &g->layers[l];
    VkW *ws[] = { &ly->q, &ly->k, &ly->v, &ly->o, &ly->gate, &ly->up, &ly->down };
    for (guint i = 0; i < G_N_ELEMENTS (ws); i++)
      qomni_vk_buffer_free (vk, ws[i]->buf);
  }
  g_free (g->layers);
  qomni_vk_buffer_free (vk, g->embed.buf);
  for (int i = 0; i < MAX_UP; i++) {
    conv_clear (vk, &g->ups[i].up);
    conv_clear (vk, &g->ups[i].pw1);
    conv_clear (vk, &g->ups[i].pw2);
  }
  conv_clear (vk, &g->dec0);
  for (int b = 0; b < N_STAGES; b++) {
    conv_clear (vk, &g->blocks[b].up);
    for (int u = 0; u < N_UNITS; u++) {
      conv_clear (vk, &g->blocks[b].conv1[u]);
      conv_clear (vk, &g->blocks[b].conv2[u]);
    }
  }
  conv_clear (vk, &g->final_conv);
  qomni_vk_buffer_free (vk, g->vec);
  g_free (g->inv_freq);
  g_free (g);
}

/* Output rows for L input rows. */
static int
conv_out_len (const Conv *cv, int L)
{
  return cv->stride ? MAX (L - cv->k / cv->stride + 1, 0) * cv->stride : L;
}

static gboolean
pre_load (QomniVkCode2Wav *g, GArray *vec, const QomniWeights *w, const QomniTextConfig *tc,
          GError **error)
{
  const char *P = "code2wav.pre_transformer";
  const int H = g->H;
  g->layers = g_new0 (PreLayer, MAX (g->L, 1));
  for (int l = 0; l < g->L; l++) {
    PreLayer *ly = &g->layers[l];
    QomniVk *vk = g->vk;
    if (!matrix_load (vk, &ly->q, w, g->qd, H, error, "%s.layers.%d.self_attn.q_proj.weight", P, l)
        || !matrix_load (vk, &ly->k, w, g->kvd, H, error, "%s.layers.%d.self_attn.k_proj.weight", P, l)
        || !matrix_load (vk, &ly->v, w, g->kvd, H, error, "%s.layers.%d.self_attn.v_proj.weight", P, l)
        || !matrix_load (vk, &ly->o, w, H, g->qd, error, "%s.layers.%d.self_attn.o_proj.weight", P, l)
        || !matrix_load (vk, &ly->gate, w, g->I, H, error, "%s.layers.%d.mlp.gate_proj.weight", P, l)
        || !matrix_load (vk, &ly->up, w, g->I, H, error, "%s.layers.%d.mlp.up_proj.weight", P, l)
        || !matrix_load (vk, &ly->down, w, H, g->I, error, "%s.layers.%d.mlp.down_proj.weight", P, l))
      return FALSE;
    struct { uint32_t *off; const char *name; int len; gboolean optional; } vs[] = {
      { &ly->in_norm, "input_layernorm.weight", H, FALSE },
      { &ly->post_norm, "post_attention_layernorm.weight", H, FALSE },
      { &ly->ls_attn, "self_attn_layer_scale.scale", H, TRUE },
      { &ly->ls_mlp, "mlp_layer_scale.scale", H, TRUE },
      { &ly->q_norm, "self_attn.q_norm.weight", g->hd, TRUE },
      { &ly->k_norm, "self_attn.k_norm.weight", g->hd, TRUE },
    };
    gboolean has[G_N_ELEMENTS (vs)];
    for (guint i = 0; i < G_N_ELEMENTS (vs); i++) {
      g_autofree char *name = g_strdup_printf ("%s.layers.%d.%s", P, l, vs[i].name);
      has[i] = !vs[i].optional || qomni_weights_find (w, name);
      if (has[i]) {
        if (!vec_load (vec, vs[i].off, w, error, vs[i].len, name))
          return FALSE;
      } else if (i < 4) {
        /* no layer scale: the branch is added as it is, as decoder.c does */
        g_autofree float *ones = g_new (float, H);
        for (int h = 0; h < H; h++)
          ones[h] = 1.0f;
        *vs[i].off = vec_add (vec, ones, H);
      }
    }
    if (has[4] != has[5]) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                   "%s layer %d has only one of q_norm and k_norm", P, l);
      return FALSE;
    }
    ly->qk_norm = has[4];
  }
  g_autofree char *fn = g_strdup_printf ("%s.norm.weight", P);
  if (!vec_load (vec, &g->final_norm, w, error, H, fn))
    return FALSE;
  const int half = g->hd / 2;
  g->inv_freq = g_new (float, half);
  for (int i = 0; i < half; i++)
    g->inv_freq[i] = 1.0f / powf ((float) tc->rope_theta, (float) (2 * i) / (float) g->hd);
  return TRUE;
}

typedef struct {
  const QomniWeights *w;
  const QomniConfig *cfg;
} Code2WavMake;

/* (a QomniVkSharedMake) Every weight on the device and the shapes, no activations. */
static gpointer
code2wav_load (QomniVk *vk, gpointer data, GError **error)
{
  const QomniWeights *w = ((const Code2WavMake *) data)->w;
  const QomniConfig *cfg = ((const Code2WavMake *) data)->cfg;
  const QomniCode2WavConfig *cc = &cfg->code2wav;
  if (!cc->present) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "the config has no code2wav_config: this checkpoint cannot speak");
    return NULL;
  }
  const QomniTextConfig *tc = &cc->transformer;
  if (cc->n_upsample_rates != N_STAGES || cc->n_upsampling_ratios > MAX_UP) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "code2wav_config: %d decoder blocks and %d upsampling stages (expected %d "
                 "and at most %d)", cc->n_upsample_rates, cc->n_upsampling_ratios, N_STAGES,
                 MAX_UP);
    return NULL;
  }
  if (tc->num_experts > 0 || tc->head_dim % 4 || tc->head_dim > 256
      || tc->num_key_value_heads < 1 || tc->num_attention_heads % tc->num_key_value_heads) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU Code2Wav runs a dense pre-transformer with head_dim a multiple of 4 "
                 "up to 256");
    return NULL;
  }
  QomniVkCode2Wav *g = g_new0 (QomniVkCode2Wav, 1);
  g_autoptr (GArray) vec = g_array_new (FALSE, FALSE, sizeof (float));
  g->vk = vk;
  g->H = tc->hidden_size;
  g->Q = cc->num_quantizers;
  g->cb = cc->codebook_size;
  g->D = cc->decoder_dim;
  g->n_up = cc->n_upsampling_ratios;
  g->L = tc->num_hidden_layers;
  g->nh = tc->num_attention_heads;
  g->nkv = tc->num_key_value_heads;
  g->hd = tc->head_dim;
  g->qd = g->nh * g->hd;
  g->kvd = g->nkv * g->hd;
  g->QKV = g->qd + 2 * g->kvd;
  g->I = tc->intermediate_size;
  g->window = tc->sliding_window;
  g->eps = (float) tc->rms_norm_eps;
  const int H = g->H;

  const QomniTensor *emb = qomni_weights_get (w, error, 2,
                                              (int64_t[]) { (int64_t) g->Q * g->cb, H },
                                              "code2wav.code_embedding.weight");
  if (!emb || !weight_upload (vk, &g->embed, emb, TRUE, error) || !pre_load (g, vec, w, tc, error))
    goto fail;

  for (int i = 0; i < g->n_up; i++) {
    UpStage *u = &g->ups[i];
    g_autofree char *p0 = g_strdup_printf ("code2wav.upsample.%d.0.conv", i);
    g_autofree char *p1 = g_strdup_printf ("code2wav.upsample.%d.1", i);
    u->ratio = cc->upsampling_ratios[i];
    if (!conv_load (vk, vec, &u->up, w, p0, TRUE, H, H, u->ratio, 1, error))
      goto fail;
    const QomniTensor *pw1 = qomni_weights_findf (w, "%s.pwconv1.weight", p1);
    if (!pw1 || pw1->ndim != 2) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING, "%s.pwconv1.weight is missing", p1);
      goto fail;
    }
    u->inner = (int) pw1->shape[0];
    g_autofree char *n1 = g_strdup_printf ("%s.pwconv1", p1);
    g_autofree char *n2 = g_strdup_printf ("%s.pwconv2", p1);
    if (!pointwise_load (vk, vec, &u->pw1, w, n1, H, u->inner, error)
        || !pointwise_load (vk, vec, &u->pw2, w, n2, u->inner, H, error))
      goto fail;
    const QomniTensor *dw = qomni_weights_get (w, error, 3, (int64_t[]) { H, 1, 7 },
                                               "%s.dwconv.conv.weight", p1);
    if (!dw)
      goto fail;
    g_autofree float *dwf = qomni_tensor_to_f32_alloc (dw);
    u->dw_off = vec_add (vec, dwf, (int64_t) H * 7);
    uint32_t dwb;
    g_autofree char *nb = g_strdup_printf ("%s.dwconv.conv.bias", p1);
    g_autofree char *nw = g_strdup_printf ("%s.norm.weight", p1);
    g_autofree char *nlb = g_strdup_printf ("%s.norm.bias", p1);
    g_autofree char *ng = g_strdup_printf ("%s.gamma", p1);
    /* the bias must follow the kernel: dwconv1d reads it at w_off + 7·H */
    if (!vec_load (vec, &dwb, w, error, H, nb) || !vec_load (vec, &u->ln_w, w, error, H, nw)
        || !vec_load (vec, &u->ln_b, w, error, H, nlb) || !vec_load (vec, &u->gamma, w, error, H, ng))
      goto fail;
    g_assert (dwb == u->dw_off + 7u * H);
  }

  if (!conv_load (vk, vec, &g->dec0, w, "code2wav.decoder.0.conv", FALSE, H, g->D, 0, 1, error))
    goto fail;
  int C = g->D;
  static const int dil[N_UNITS] = { 1, 3, 9 };
  for (int b = 0; b < N_STAGES; b++) {
    Block *bl = &g->blocks[b];
    const int Co = C / 2;
    bl->rate = cc->upsample_rates[b];
    g_autofree char *p = g_strdup_printf ("code2wav.decoder.%d.block", b + 1);
    g_autofree char *a0 = g_strdup_printf ("%s.0", p);
    g_autofree char *c0 = g_strdup_printf ("%s.1.conv", p);
    if (!snake_load (vec, &bl->act, w, a0, C, error)
        || !conv_load (vk, vec, &bl->up, w, c0, TRUE, C, Co, bl->rate, 1, error))
      goto fail;
    for (int u = 0; u < N_UNITS; u++) {
      g_autofree char *a1 = g_strdup_printf ("%s.%d.act1", p, u + 2);
      g_autofree char *a2 = g_strdup_printf ("%s.%d.act2", p, u + 2);
      g_autofree char *c1 = g_strdup_printf ("%s.%d.conv1.conv", p, u + 2);
      g_autofree char *c2 = g_strdup_printf ("%s.%d.conv2.conv", p, u + 2);
      if (!snake_load (vec, &bl->act1[u], w, a1, Co, error)
          || !snake_load (vec, &bl->act2[u], w, a2, Co, error)
          || !conv_load (vk, vec, &bl->conv1[u], w, c1, FALSE, Co, Co, 0, dil[u], error)
          || !conv_load (vk, vec, &bl->conv2[u], w, c2, FALSE, Co, Co, 0, 1, error))
        goto fail;
    }
    C = Co;
  }
  if (!snake_load (vec, &g->final_act, w, "code2wav.decoder.5", C, error)
      || !conv_load (vk, vec, &g->final_conv, w, "code2wav.decoder.6.conv", FALSE, C, 1, 0, 1,
                     error))
    goto fail;

  g->vec = qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) MAX (vec->len, 4),
                                QOMNI_VK_MEM_DEVICE, "code2wav vectors", error);
  if (!g->vec || !qomni_vk_upload (vk, g->vec, 0, vec->data, sizeof (float) * vec->len, error))
    goto fail;

  /* samples per frame and the per-call loss, from the chain's length rules */
  g->spf = 1;
  for (int i = 0; i < g->n_up; i++)
    g->spf *= g->ups[i].ratio;
  for (int b = 0; b < N_STAGES; b++)
    g->spf *= g->blocks[b].rate;
  int T = 1000;
  for (int i = 0; i < g->n_up; i++)
    T = conv_out_len (&g->ups[i].up, T);
  for (int b = 0; b < N_STAGES; b++)
    T = conv_out_len (&g->blocks[b].up, T);
  g->trim = 1000 * g->spf - T;
  return g;

fail:
  code2wav_unload (g);
  return NULL;
}

QomniVkCode2Wav *
qomni_vk_code2wav_new (QomniVk *vk, const QomniWeights *w, const QomniConfig *cfg,
                       GError **error)
{
  /* one upload per store on this device, whichever element asks */
  Code2WavMake make = { w, cfg };
  g_autofree char *key = g_strdup_printf ("code2wav: store %u", qomni_weights_serial (w));
  QomniVkCode2Wav *loaded = qomni_vk_shared_get (vk, key, code2wav_load, &make,
                                                 code2wav_unload, error);
  if (!loaded)
    return NULL;
  QomniVkCode2Wav *g = g_memdup2 (loaded, sizeof *g);
  g->loaded = loaded;
  return g;
}

void
qomni_vk_code2wav_free (QomniVkCode2Wav *g)
{
  if (!g)
    return;
  acts_free (g);
  qomni_vk_shared_release (g->vk, g->loaded);
  g_free (g);
}

int qomni_vk_code2wav_samples_per_frame (const QomniVkCode2Wav *g) { return g->spf; }
int qomni_vk_code2wav_trim (const QomniVkCode2Wav *g) { return g->trim; }

void
qomni_vk_code2wav_set_trace (QomniVkCode2Wav *g, QomniCode2WavTrace trace, gpointer user)
{
  g->trace = trace;
  g->trace_user = user;
}

/* ---- activations ------------------------------------------------------------------ */

/* Floats of the largest [T, C] and of the ConvNeXt inner activation for F frames, and the
 * longest conv output (grid rows). */
static void
plan (const QomniVkCode2Wav *g, int F, uint64_t *big, uint64_t *pw, uint64_t *longest)
{
  uint64_t b = (uint64_t) F * MAX (g->H, g->QKV), p = 1;
  int T = F;
  for (int i = 0; i < g->n_up; i++) {
    T = conv_out_len (&g->ups[i].up, T);
    b = MAX (b, (uint64_t) T * g->H);
    p = MAX (p, (uint64_t) T * g->ups[i].inner);
  }
  int C = g->D;
  b = MAX (b, (uint64_t) T * C);
  for (int bl = 0; bl < N_STAGES; bl++) {
    T = conv_out_len (&g->blocks[bl].up, T);
    C /= 2;
    b = MAX (b, (uint64_t) T * C);
  }
  *big = b;
  *pw = p;
  *longest = (uint64_t) T;
}

static gboolean
fits (const QomniVkCode2Wav *g, int F)
{
  uint64_t big, pw, longest;
  plan (g, F, &big, &pw, &longest);
  const uint64_t range = qomni_vk_max_range (g->vk);
  return 4 * big <= range && 4 * pw <= range && (longest + 63) / 64 <= MAX_GRID
         && (uint64_t) F * g->spf < G_MAXUINT32 / 4;
}

/* Partials of the pre-transformer's products over ≤ cap frames (qomni_vk_rec_matmul). */
static uint64_t
mpart_floats (const QomniVkCode2Wav *g, int cap)
{
  const uint32_t H = g->H, n = MAX (cap, 1);
  const uint32_t shapes[][2] = { { g->qd, H }, { g->kvd, H }, { H, g->qd }, { g->I, H },
                                 { H, g->I } };
  uint64_t most = 0;
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    if (shapes[i][0] && shapes[i][1])
      most = MAX (most, qomni_vk_matmul_scratch_floats (shapes[i][0], shapes[i][1], n));
  return most;
}

static gboolean
ensure (QomniVkCode2Wav *g, int frames, GError **error)
{
  if (frames <= g->cap)
    return TRUE;
  if (!fits (g, frames)) {
    uint64_t big, pw, longest;
    plan (g, frames, &big, &pw, &longest);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "code2wav: one decode call of %d frames is too long for this device (it "
                 "needs %" G_GUINT64_FORMAT " MiB in one binding, the device allows %"
                 G_GUINT64_FORMAT "; and at most %u·64 samples per dispatch); decode in "
                 "smaller chunks", frames, (4 * MAX (big, pw)) >> 20,
                 qomni_vk_max_range (g->vk) >> 20, MAX_GRID);
    return FALSE;
  }
  const int cap = fits (g, 2 * g->cap) ? MAX (frames, 2 * g->cap) : frames;
  acts_free (g);
  uint64_t big, pw, longest;
  plan (g, cap, &big, &pw, &longest);
  const int half = g->hd / 2;
  g->step_cs = ((size_t) g->Q * cap + 3) & ~(size_t) 3;
  struct { QomniVkBuffer **b; uint64_t floats; QomniVkMem mem; const char *what; } acts[] = {
    { &g->buf[0], big, QOMNI_VK_MEM_DEVICE, "code2wav activations" },
    { &g->buf[1], big, QOMNI_VK_MEM_DEVICE, "code2wav activations" },
    { &g->buf[2], big, QOMNI_VK_MEM_DEVICE, "code2wav activations" },
    { &g->pw, pw, QOMNI_VK_MEM_DEVICE, "code2wav ConvNeXt inner" },
    { &g->xn, (uint64_t) cap * g->H, QOMNI_VK_MEM_DEVICE, "code2wav normed states" },
    { &g->qkv, (uint64_t) cap * g->QKV, QOMNI_VK_MEM_DEVICE, "code2wav q/k/v" },
    { &g->att, (uint64_t) cap * g->qd, QOMNI_VK_MEM_DEVICE, "code2wav attention" },
    { &g->g, (uint64_t) cap * MAX (g->I, 1), QOMNI_VK_MEM_DEVICE, "code2wav gate" },
    { &g->u, (uint64_t) cap * MAX (g->I, 1), QOMNI_VK_MEM_DEVICE, "code2wav up" },
    { &g->tmp, (uint64_t) cap * g->H, QOMNI_VK_MEM_DEVICE, "code2wav branch" },
    { &g->mpart, mpart_floats (g, cap), QOMNI_VK_MEM_DEVICE, "code2wav matmul partials" },
    { &g->step, g->step_cs + 2 * (uint64_t) cap * half, QOMNI_VK_MEM_HOST, "code2wav inputs" },
    { &g->out, (uint64_t) cap * g->spf, QOMNI_VK_MEM_HOST, "code2wav samples" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (acts); i++) {
    *acts[i].b = qomni_vk_buffer_new (g->vk, 4 * MAX (acts[i].floats, 4), acts[i].mem,
                                      acts[i].what, error);
    if (!*acts[i].b) {
      acts_free (g);
      return FALSE;
    }
  }
  g->cap = cap;
  return TRUE;
}

/* ---- recording -------------------------------------------------------------------- */

static uint32_t
elt_groups (uint64_t n)
{
  return (uint32_t) MIN ((n + 255) / 256, MAX_GRID);
}

/* y [conv_out_len(L), cout] (+)= conv(x [L, cin]) + bias */
static void
rec_conv (QomniVkCode2Wav *g, QomniVkCmd *c, const Conv *cv, const QomniVkBuffer *x,
          const QomniVkBuffer *y, int L, gboolean acc)
{
  const int M = cv->stride ? L - cv->k / cv->stride + 1 : L;
  if (M <= 0)
    return;
  const int R = cv->stride ? cv->stride * cv->cout : cv->cout;
  QomniVkConvPush p = { .L = L, .M = M, .cin = cv->cin, .cout = cv->cout, .k = cv->k,
                        .dil = cv->dil, .stride = MAX (cv->stride, 1), .b_off = cv->b_off,
                        .flags = QOMNI_VK_CONV_BIAS | (acc ? QOMNI_VK_ACCUMULATE : 0) };
  QomniVkBind b[] = { { cv->w.buf }, { x }, { y }, { g->vec } };
  uint32_t tr, tm;
  const int pipe = qomni_vk_conv_pipe (cv->w.dtype, cv->stride > 0, R, &tr, &tm);
  qomni_vk_dispatch (c, pipe, b, 4, &p, sizeof p, (R + tr - 1) / tr, (M + tm - 1) / tm, 1);
}

static void
rec_snake (QomniVkCode2Wav *g, QomniVkCmd *c, const Snake *s, const QomniVkBuffer *x,
           const QomniVkBuffer *y, int T)
{
  QomniVkSnakePush p = { .n = T, .C = s->C, .a_off = s->a_off, .b_off = s->b_off };
  QomniVkBind b[] = { { x }, { y }, { g->vec } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SNAKE, b, 3, &p, sizeof p,
                     elt_groups ((uint64_t) T * s->C), 1, 1);
}

/* x [n, C] += vec[g_off ..] ⊙ y */
static void
rec_scale_add (QomniVkCode2Wav *g, QomniVkCmd *c, const QomniVkBuffer *x,
               const QomniVkBuffer *y, uint32_t g_off, int n, int C)
{
  QomniVkScaleAddPush p = { .n = n, .C = C, .g_off = g_off };
  QomniVkBind b[] = { { x }, { y }, { g->vec } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_SCALE_ADD, b, 3, &p, sizeof p,
                     elt_groups ((uint64_t) n * C), 1, 1);
}

/* y[n, rows] (at column y_off, row stride y_stride) = x[n, cols] · Wᵀ */
static void
rec_linear (QomniVkCode2Wav *g, QomniVkCmd *c, const VkW *w, int rows, int cols,
            const QomniVkBuffer *x, const QomniVkBuffer *y, uint32_t y_off, uint32_t y_stride,
            int n)
{
  QomniVkMatmulArgs a = { .w = { w->buf }, .dtype = w->dtype, .rows = rows, .cols = cols,
                          .n = n, .x = x, .x_stride = cols, .y = y, .y_off = y_off,
                          .y_stride = y_stride, .scratch = g->mpart };
  qomni_vk_rec_matmul (c, &a);
}

static void
rec_norm (QomniVkCode2Wav *g, QomniVkCmd *c, QomniVkPipe pipe, const QomniVkBuffer *x,
          const QomniVkBuffer *y, uint32_t w_off, uint32_t b_off, int n, int dim, float eps)
{
  QomniVkNormPush p = { .n = n, .dim = dim, .x_stride = dim, .y_stride = dim, .w_off = w_off,
                        .b_off = b_off, .flags = pipe == QOMNI_VK_PIPE_LAYERNORM ? 3 : 1,
                        .eps = eps };
  QomniVkBind b[] = { { x }, { y }, { g->vec }, { g->vec } };
  qomni_vk_dispatch (c, pipe, b, pipe == QOMNI_VK_PIPE_LAYERNORM ? 4 : 3, &p, sizeof p,
                     MIN (n, 65535), (n + 65534) / 65535, 1);
}

/* The pre-transformer over x [nf, H] (§10.2); positions 0 … nf−1 in the step tables. */
static void
rec_pre (QomniVkCode2Wav *g, QomniVkCmd *c, const QomniVkBuffer *x, int nf)
{
  const int H = g->H, half = g->hd / 2;
  for (int l = 0; l < g->L; l++) {
    const PreLayer *ly = &g->layers[l];
    rec_norm (g, c, QOMNI_VK_PIPE_RMSNORM, x, g->xn, ly->in_norm, 0, nf, H, g->eps);
    rec_linear (g, c, &ly->q, g->qd, H, g->xn, g->qkv, 0, g->QKV, nf);
    rec_linear (g, c, &ly->k, g->kvd, H, g->xn, g->qkv, g->qd, g->QKV, nf);
    rec_linear (g, c, &ly->v, g->kvd, H, g->xn, g->qkv, g->qd + g->kvd, g->QKV, nf);
    QomniVkRopePush rq = { .n = nf, .heads = g->nh, .hd = g->hd, .x_stride = g->QKV,
                           .y_stride = g->QKV, .cs_off = g->step_cs, .sin_off = nf * half,
                           .norm_off = ly->q_norm, .flags = ly->qk_norm, .eps = g->eps };
    QomniVkBind br[] = { { g->qkv }, { g->qkv }, { g->step }, { g->vec } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, br, 4, &rq, sizeof rq, g->nh, nf, 1);
    QomniVkRopePush rk = rq;
    rk.heads = g->nkv;
    rk.x_off = rk.y_off = g->qd;
    rk.norm_off = ly->k_norm;
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, br, 4, &rk, sizeof rk, g->nkv, nf, 1);
    /* keys and values straight from the q/k/v rows: a call holds all its positions */
    QomniVkAttnPush ap = { .n = nf, .m = nf, .nh = g->nh, .nkv = g->nkv, .hd = g->hd,
                           .q_stride = g->QKV, .k_off = g->qd, .v_off = g->qd + g->kvd,
                           .kv_stride = g->QKV, .o_stride = g->qd, .causal = 1,
                           .window = g->window, .scale = 1.0f / sqrtf ((float) g->hd) };
    qomni_vk_rec_attention (c, &ap, g->qkv, g->qkv, g->qkv, g->att);
    rec_linear (g, c, &ly->o, H, g->qd, g->att, g->tmp, 0, H, nf);
    rec_scale_add (g, c, x, g->tmp, ly->ls_attn, nf, H);

    rec_norm (g, c, QOMNI_VK_PIPE_RMSNORM, x, g->xn, ly->post_norm, 0, nf, H, g->eps);
    rec_linear (g, c, &ly->gate, g->I, H, g->xn, g->g, 0, g->I, nf);
    rec_linear (g, c, &ly->up, g->I, H, g->xn, g->u, 0, g->I, nf);
    QomniVkEltPush sp = { .n = (uint32_t) nf * g->I };
    QomniVkBind bs[] = { { g->g }, { g->u } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_SILU_MUL, bs, 2, &sp, sizeof sp,
                       elt_groups ((uint64_t) nf * g->I), 1, 1);
    rec_linear (g, c, &ly->down, H, g->I, g->g, g->tmp, 0, H, nf);
    rec_scale_add (g, c, x, g->tmp, ly->ls_mlp, nf, H);
  }
  rec_norm (g, c, QOMNI_VK_PIPE_RMSNORM, x, x, g->final_norm, 0, nf, H, g->eps);
}

/* With a trace set: submits what was recorded, hands the stage to the hook, puts back
 * what it wrote and begins a new command buffer. */
static gboolean
stage (QomniVkCode2Wav *g, QomniVkCmd **c, const char *name, QomniVkBuffer *x, int T, int C,
       GError **error)
{
  if (!g->trace)
    return TRUE;
  gboolean ok = qomni_vk_cmd_submit (*c, error);
  *c = NULL;
  g_autofree float *host = ok ? g_try_new (float, (gsize) T * C) : NULL;
  if (ok && !host) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "code2wav: out of memory for a trace");
    ok = FALSE;
  }
  ok = ok && qomni_vk_download (g->vk, x, 0, host, sizeof (float) * T * C, error);
  if (ok)
    g->trace (name, host, T, C, g->trace_user);
  ok = ok && qomni_vk_upload (g->vk, x, 0, host, sizeof (float) * T * C, error);
  if (ok)
    *c = qomni_vk_cmd_begin (g->vk, error);
  return *c != NULL;
}

#define SWAP(a, b)                                                                            \
  G_STMT_START {                                                                              \
    QomniVkBuffer *s_ = a;                                                                    \
    a = b;                                                                                    \
    b = s_;                                                                                   \
  } G_STMT_END

gboolean
qomni_vk_code2wav_run (QomniVkCode2Wav *g, const int *codes, int stride, int nf, int skip,
                       float *out, GError **error)
{
  if (!ensure (g, nf, error))
    return FALSE;
  const int H = g->H, half = g->hd / 2;
  /* inputs: codes [Q, nf], then cos/sin [nf, hd/2] of positions 0 … nf−1 (pitfall 26),
   * computed as decoder.c does */
  guint32 *cd = g->step->map;
  for (int q = 0; q < g->Q; q++)
    for (int f = 0; f < nf; f++)
      cd[(gsize) q * nf + f] = (guint32) codes[(gsize) q * stride + f];
  float *cs = (float *) g->step->map + g->step_cs;
  for (int f = 0; f < nf; f++)
    for (int i = 0; i < half; i++) {
      const float ang = (float) f * g->inv_freq[i];
      cs[f * half + i] = cosf (ang);
      cs[nf * half + f * half + i] = sinf (ang);
    }

  QomniVkCmd *c = qomni_vk_cmd_begin (g->vk, error);
  if (!c)
    return FALSE;
  QomniVkBuffer *x = g->buf[0], *t1 = g->buf[1], *t2 = g->buf[2];

  /* # HF: code_embedding(codes + q·cb).mean over the codebooks */
  QomniVkEmbedMeanPush ep = { .cols = H, .n = nf, .Q = g->Q, .cb = g->cb, .codes_stride = nf };
  QomniVkBind be[] = { { g->embed.buf }, { g->step }, { x } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_float_dtype (QOMNI_VK_PIPE_EMBED_MEAN_F32,
                                                       g->embed.dtype),
                     be, 3, &ep, sizeof ep, 1, nf, 1);
  rec_pre (g, c, x, nf);
  if (!stage (g, &c, "pre_transformer", x, nf, H, error))
    return FALSE;

  /* # HF: upsample.i — transposed conv ×ratio, then ConvNeXt */
  int T = nf;
  for (int i = 0; i < g->n_up; i++) {
    const UpStage *u = &g->ups[i];
    rec_conv (g, c, &u->up, x, t1, T, FALSE);
    T = conv_out_len (&u->up, T);
    SWAP (x, t1);
    QomniVkDwConvPush dp = { .L = T, .C = H, .k = 7, .dil = 1, .w_off = u->dw_off,
                             .b_off = u->dw_off + 7 * H };
    QomniVkBind bd[] = { { x }, { t1 }, { g->vec } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_DWCONV1D, bd, 3, &dp, sizeof dp,
                       elt_groups ((uint64_t) T * H), 1, 1);
    rec_norm (g, c, QOMNI_VK_PIPE_LAYERNORM, t1, t1, u->ln_w, u->ln_b, T, H, 1e-6f);
    rec_conv (g, c, &u->pw1, t1, g->pw, T, FALSE);
    QomniVkEltPush gp = { .n = (uint32_t) T * u->inner };
    QomniVkBind bg[] = { { g->pw }, { g->pw } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_GELU, bg, 2, &gp, sizeof gp,
                       elt_groups ((uint64_t) T * u->inner), 1, 1);
    rec_conv (g, c, &u->pw2, g->pw, t1, T, FALSE);
    rec_scale_add (g, c, x, t1, u->gamma, T, H);
    static const char *names[MAX_UP] = { "upsample.0", "upsample.1", "upsample.2", "upsample.3" };
    if (!stage (g, &c, names[i], x, T, H, error))
      return FALSE;
  }

  /* # HF: decoder.0 — causal conv k = 7 to decoder_dim */
  rec_conv (g, c, &g->dec0, x, t1, T, FALSE);
  SWAP (x, t1);
  int C = g->D;
  if (!stage (g, &c, "decoder.0", x, T, C, error))
    return FALSE;

  static const char *names[N_STAGES] = { "decoder.1", "decoder.2", "decoder.3", "decoder.4" };
  for (int b = 0; b < N_STAGES; b++) {
    const Block *bl = &g->blocks[b];
    rec_snake (g, c, &bl->act, x, t1, T);
    rec_conv (g, c, &bl->up, t1, t2, T, FALSE);
    T = conv_out_len (&bl->up, T);
    C /= 2;
    SWAP (x, t2);
    for (int u = 0; u < N_UNITS; u++) {
      /* x += conv2(snake2(conv1(snake1(x)))): the residual rides on conv2 */
      rec_snake (g, c, &bl->act1[u], x, t1, T);
      rec_conv (g, c, &bl->conv1[u], t1, t2, T, FALSE);
      rec_snake (g, c, &bl->act2[u], t2, t2, T);
      rec_conv (g, c, &bl->conv2[u], t2, x, T, TRUE);
    }
    if (!stage (g, &c, names[b], x, T, C, error))
      return FALSE;
  }

  rec_snake (g, c, &g->final_act, x, t1, T);
  if (!stage (g, &c, "decoder.5", t1, T, C, error))
    return FALSE;
  rec_conv (g, c, &g->final_conv, t1, t2, T, FALSE);
  if (!stage (g, &c, "decoder.6", t2, T, 1, error))
    return FALSE;
  g_assert (T == nf * g->spf - g->trim);
  const int from = skip * g->spf;
  if (T > from)
    qomni_vk_cmd_copy (c, t2, 4 * (uint64_t) from, g->out, 0, 4 * (uint64_t) (T - from));
  if (!qomni_vk_cmd_submit (c, error))
    return FALSE;
  const float *s = g->out->map;
  for (int i = 0; i < T - from; i++)
    out[i] = CLAMP (s[i], -1.0f, 1.0f);
  return TRUE;
}
