/* qomni — the thinker's decoder stack on the Vulkan device (the math of decoder.c). */
#include "thinker-vk.h"
#include "error.h"
#include "moe-vk.h"
#include "ops-cpu.h"
#include "vk-ops.h"

#include <math.h>
#include <string.h>

/* Up to this many rows a step runs as decode: matvec with the RMSNorm fused in, the
 * q/k/v step as one dispatch, attention split over the keys (flash-decoding). Longer
 * batches run the tiled matmul, separate norms and one attention workgroup per row. */
#define DECODE_ROWS 4

typedef struct {
  QomniVkBuffer *buf;
  QomniDType dtype;
  int rows, cols;      /* per expert for stacked expert weights */
  gboolean exact;      /* float32 products on prompts too (tensor cores round to fp16) */
} VkW;

typedef struct {
  VkW qkv;             /* [nh·hd + 2·nkv·hd, H]  HF: self_attn.{q,k,v}_proj */
  VkW o;               /* [H, nh·hd]              HF: self_attn.o_proj */
  VkW router;          /* [E, H]                  HF: mlp.gate */
  VkW gate_up;         /* [E, 2I, H]              HF: mlp.experts.N.{gate,up}_proj */
  VkW down;            /* [E, H, I]               HF: mlp.experts.N.down_proj */
  QomniVkBuffer *vec;  /* f32 [in_norm H | post_norm H | q_norm hd | k_norm hd] */
  gboolean qk_norm;
  QomniVkBuffer *k_cache, *v_cache;   /* [max_ctx, nkv·hd] f32 */
} Layer;

struct _QomniVkThinker {
  QomniVk *vk;
  QomniTextConfig cfg;
  int H, V, L, nh, nkv, hd, qd, kvd, QKV, E, K, I;
  int max_ctx, max_batch, n_past;
  gboolean coopmat;                   /* prompt products on tensor cores */
  Layer *layers;
  VkW embed, lm_head;
  QomniVkBuffer *final_norm;          /* [H] f32 */
  float *inv_freq;                    /* [hd/2] */
  guint8 *slot_axis;                  /* [hd/2] */
  /* activations, [max_batch, ...] */
  QomniVkBuffer *x, *xn, *qkv, *att, *rlog, *ids, *tw, *g, *y, *logits_dev;
  QomniVkBuffer *route;               /* the prompt's pairs grouped by expert (moe-vk.h) */
  QomniVkBuffer *apart;               /* split attention's partials, [DECODE_ROWS] rows */
  /* host-visible: step inputs (cos/sin, token id, input rows) and results */
  QomniVkBuffer *step, *out;
  size_t step_cs, step_ids, step_x;   /* float offsets in step */
};

static gboolean
fill_random (QomniVk *vk, QomniVkBuffer *b, uint64_t words, uint32_t mode, float scale,
             float bias, uint32_t seed, GError **error)
{
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
  if (!c)
    return FALSE;
  /* one dispatch covers at most 2³² words; the grid strides inside it */
  QomniVkFillPush p = { .n_words = (uint32_t) words, .seed = seed, .mode = mode, .scale = scale,
                        .bias = bias };
  QomniVkBind bb[] = { { b } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, bb, 1, &p, sizeof p, 8192, 1, 1);
  return qomni_vk_cmd_submit (c, error);
}

/* A weight [n_parts pieces stacked] uploaded from the store, or random when w is NULL. */
static gboolean
weight_make (QomniVkThinker *t, VkW *dst, const QomniWeights *w, QomniDType rdt, int rows,
             int cols, int n_mats, const char *what, GError **error, guint seed,
             const QomniTensor **parts, int n_parts)
{
  QomniVk *vk = t->vk;
  dst->rows = rows;
  dst->cols = cols;
  dst->dtype = w ? parts[0]->dtype : rdt;
  for (int i = 0; w && i < n_parts; i++)
    if (parts[i]->dtype != dst->dtype) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "%s: %s is %s but %s is %s; the GPU path stacks them and needs one dtype",
                   what, parts[0]->name, qomni_dtype_info (parts[0]->dtype)->name,
                   parts[i]->name, qomni_dtype_info (parts[i]->dtype)->name);
      return FALSE;
    }
  if (qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, dst->dtype) < 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "%s: no GPU kernel for %s", what,
                 qomni_dtype_info (dst->dtype)->name);
    return FALSE;
  }
  const uint64_t bytes = qomni_dtype_nbytes (dst->dtype, (int64_t) rows * cols * n_mats);
  dst->buf = qomni_vk_buffer_new (vk, (bytes + 15) & ~(uint64_t) 15, QOMNI_VK_MEM_DEVICE, what,
                                  error);
  if (!dst->buf)
    return FALSE;
  if (!w) {
    /* uniform with variance 1/cols keeps activations of order one through the stack */
    const float a = sqrtf (3.0f / (float) cols);
    return fill_random (vk, dst->buf, bytes / 4, rdt == QOMNI_DTYPE_BF16 ? 0 : 1, a, 0.0f, seed,
                        error);
  }
  uint64_t off = 0;
  for (int i = 0; i < n_parts; i++) {
    if (!qomni_vk_upload (vk, dst->buf, off, parts[i]->data, parts[i]->nbytes, error))
      return FALSE;
    off += parts[i]->nbytes;
  }
  return TRUE;
}

#define GET(dst, r, c, ...)                                                                   \
  G_STMT_START {                                                                              \
    dst = qomni_weights_get (w, error, 2, (int64_t[]) { r, c }, __VA_ARGS__);                 \
    if (!dst)                                                                                 \
      goto fail;                                                                              \
  } G_STMT_END

static gboolean
upload_vec (QomniVk *vk, QomniVkBuffer *b, uint64_t off, const QomniWeights *w, int64_t len,
            gboolean optional, gboolean *present, GError **error, const char *fmt, int l)
{
  g_autofree char *name = g_strdup_printf (fmt, l);
  if (present)
    *present = FALSE;
  if (!w) {
    g_autofree float *ones = g_new (float, len);
    for (int64_t i = 0; i < len; i++)
      ones[i] = 1.0f;
    if (present)
      *present = TRUE;
    return qomni_vk_upload (vk, b, off, ones, sizeof (float) * len, error);
  }
  if (optional && !qomni_weights_find (w, name))
    return TRUE;
  const QomniTensor *t = qomni_weights_get (w, error, 1, (int64_t[]) { len }, "%s", name);
  if (!t)
    return FALSE;
  g_autofree float *f = qomni_tensor_to_f32_alloc (t);
  if (present)
    *present = TRUE;
  return qomni_vk_upload (vk, b, off, f, sizeof (float) * len, error);
}

QomniVkThinker *
qomni_vk_thinker_new (QomniVk *vk, const QomniWeights *w, const QomniTextConfig *cfg,
                      QomniDType rdt, int max_ctx, int max_batch, GError **error)
{
  QomniVkThinker *t = g_new0 (QomniVkThinker, 1);
  t->vk = vk;
  t->cfg = *cfg;
  t->cfg.mlp_only_layers = NULL;
  t->H = cfg->hidden_size;
  t->V = cfg->vocab_size;
  t->L = cfg->num_hidden_layers;
  t->nh = cfg->num_attention_heads;
  t->nkv = cfg->num_key_value_heads;
  t->hd = cfg->head_dim;
  t->qd = t->nh * t->hd;
  t->kvd = t->nkv * t->hd;
  t->QKV = t->qd + 2 * t->kvd;
  t->E = cfg->num_experts;
  t->K = cfg->num_experts_per_tok;
  t->I = cfg->moe_intermediate_size;
  t->max_ctx = max_ctx;
  t->max_batch = max_batch;
  t->coopmat = qomni_vk_has_coopmat (vk);
  const int H = t->H, E = t->E, I = t->I, hd = t->hd, B = max_batch, K = t->K;
  if (E == 0 || cfg->n_mlp_only_layers > 0 || cfg->shared_expert_intermediate_size > 0
      || cfg->decoder_sparse_step > 1) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU decoder runs all-MoE stacks without shared experts (the thinker)");
    goto fail;
  }
  if (hd % 8 || hd > 256 || H % 8 || I % 8 || E > 1024 || K > 64) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU kernels need head_dim ≤ 256 and widths that are multiples of 8");
    goto fail;
  }
  t->layers = g_new0 (Layer, t->L);
  for (int l = 0; l < t->L; l++) {
    Layer *ly = &t->layers[l];
    const QomniTensor *p[3];
    const QomniTensor **ex = NULL;
    if (w) {
      GET (p[0], t->qd, H, "thinker.model.layers.%d.self_attn.q_proj.weight", l);
      GET (p[1], t->kvd, H, "thinker.model.layers.%d.self_attn.k_proj.weight", l);
      GET (p[2], t->kvd, H, "thinker.model.layers.%d.self_attn.v_proj.weight", l);
    }
    if (!weight_make (t, &ly->qkv, w, rdt, t->QKV, H, 1, "q/k/v", error, l * 8 + 1, p, 3))
      goto fail;
    if (w)
      GET (p[0], H, t->qd, "thinker.model.layers.%d.self_attn.o_proj.weight", l);
    if (!weight_make (t, &ly->o, w, rdt, H, t->qd, 1, "o_proj", error, l * 8 + 2, p, 1))
      goto fail;
    if (w)
      GET (p[0], E, H, "thinker.model.layers.%d.mlp.gate.weight", l);
    if (!weight_make (t, &ly->router, w, rdt, E, H, 1, "router", error, l * 8 + 3, p, 1))
      goto fail;
    ly->router.exact = TRUE;   /* fp16 rounding could flip a near tie in the top-k */
    if (w) {
      ex = g_new (const QomniTensor *, 2 * E);
      for (int e = 0; e < E && w; e++) {
        ex[2 * e] = qomni_weights_get (w, error, 2, (int64_t[]) { I, H },
                                       "thinker.model.layers.%d.mlp.experts.%d.gate_proj.weight",
                                       l, e);
        ex[2 * e + 1] = ex[2 * e] ? qomni_weights_get (
                            w, error, 2, (int64_t[]) { I, H },
                            "thinker.model.layers.%d.mlp.experts.%d.up_proj.weight", l, e)
                                  : NULL;
        if (!ex[2 * e + 1]) {
          g_free (ex);
          goto fail;
        }
      }
    }
    gboolean ok = weight_make (t, &ly->gate_up, w, rdt, 2 * I, H, E, "experts gate/up", error,
                               l * 8 + 4, ex, 2 * E);
    if (ok && w)
      for (int e = 0; e < E; e++) {
        ex[e] = qomni_weights_get (w, error, 2, (int64_t[]) { H, I },
                                   "thinker.model.layers.%d.mlp.experts.%d.down_proj.weight", l,
                                   e);
        if (!ex[e]) {
          ok = FALSE;
          break;
        }
      }
    if (ok)
      ok = weight_make (t, &ly->down, w, rdt, H, I, E, "experts down", error, l * 8 + 5, ex, E);
    g_free (ex);
    if (!ok)
      goto fail;
    ly->vec = qomni_vk_buffer_new (vk, sizeof (float) * (2 * H + 2 * hd), QOMNI_VK_MEM_DEVICE,
                                   "norm gains", error);
    if (!ly->vec)
      goto fail;
    gboolean kn = FALSE;
    if (!upload_vec (vk, ly->vec, 0, w, H, FALSE, NULL, error,
                     "thinker.model.layers.%d.input_layernorm.weight", l)
        || !upload_vec (vk, ly->vec, 4 * H, w, H, FALSE, NULL, error,
                        "thinker.model.layers.%d.post_attention_layernorm.weight", l)
        || !upload_vec (vk, ly->vec, 8 * H, w, hd, TRUE, &ly->qk_norm, error,
                        "thinker.model.layers.%d.self_attn.q_norm.weight", l)
        || !upload_vec (vk, ly->vec, 8 * H + 4 * hd, w, hd, TRUE, &kn, error,
                        "thinker.model.layers.%d.self_attn.k_norm.weight", l))
      goto fail;
    if (kn != ly->qk_norm) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                   "layer %d has only one of q_norm and k_norm", l);
      goto fail;
    }
    ly->k_cache = qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) max_ctx * t->kvd,
                                       QOMNI_VK_MEM_DEVICE, "KV cache", error);
    ly->v_cache = ly->k_cache ? qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) max_ctx
                                                             * t->kvd,
                                                     QOMNI_VK_MEM_DEVICE, "KV cache", error)
                              : NULL;
    if (!ly->v_cache)
      goto fail;
  }
  {
    const QomniTensor *p[1] = { NULL };
    if (w)
      GET (p[0], t->V, H, "thinker.model.embed_tokens.weight");
    if (!weight_make (t, &t->embed, w, rdt, t->V, H, 1, "embed_tokens", error, 7777, p, 1))
      goto fail;
    if (w) {
      if (cfg->tie_word_embeddings && !qomni_weights_find (w, "thinker.lm_head.weight"))
        p[0] = qomni_weights_find (w, "thinker.model.embed_tokens.weight");
      else
        GET (p[0], t->V, H, "thinker.lm_head.weight");
    }
    if (!weight_make (t, &t->lm_head, w, rdt, t->V, H, 1, "lm_head", error, 7778, p, 1))
      goto fail;
    t->final_norm = qomni_vk_buffer_new (vk, sizeof (float) * H, QOMNI_VK_MEM_DEVICE,
                                         "final norm", error);
    if (!t->final_norm
        || !upload_vec (vk, t->final_norm, 0, w, H, FALSE, NULL, error, "thinker.model.norm.weight%.0d", 0))
      goto fail;
  }

  /* RoPE tables: the same float32 inv_freq and slot axes as decoder.c */
  const int half = hd / 2;
  t->inv_freq = g_new (float, half);
  t->slot_axis = g_new0 (guint8, half);
  for (int i = 0; i < half; i++) {
    t->inv_freq[i] = 1.0f / powf ((float) cfg->rope_theta, (float) (2 * i) / (float) hd);
    if (cfg->mrope_interleaved) {
      if (i % 3 == 1 && i < 3 * cfg->mrope_section[1])
        t->slot_axis[i] = 1;
      else if (i % 3 == 2 && i < 3 * cfg->mrope_section[2])
        t->slot_axis[i] = 2;
    } else if (cfg->mrope_section[0]) {
      if (i >= cfg->mrope_section[0] + cfg->mrope_section[1])
        t->slot_axis[i] = 2;
      else if (i >= cfg->mrope_section[0])
        t->slot_axis[i] = 1;
    }
  }

  /* activations for the worst case, max_batch rows */
  struct { QomniVkBuffer **b; uint64_t floats; const char *what; } acts[] = {
    { &t->x, (uint64_t) B * H, "hidden states" },
    { &t->xn, (uint64_t) B * H, "normed states" },
    { &t->qkv, (uint64_t) B * t->QKV, "q/k/v" },
    { &t->att, (uint64_t) B * t->qd, "attention output" },
    { &t->rlog, (uint64_t) B * E, "router logits" },
    { &t->ids, (uint64_t) B * K, "expert ids" },
    { &t->tw, (uint64_t) B * K, "expert weights" },
    { &t->g, (uint64_t) B * K * I, "expert activations" },
    { &t->y, (uint64_t) B * K * H, "expert outputs" },
    { &t->logits_dev, (uint64_t) t->V, "logits" },
    { &t->route, qomni_vk_moe_route_words (B, E, K), "expert groups" },
    { &t->apart, qomni_vk_attn_part_floats (MIN (B, DECODE_ROWS), t->nh, hd,
                                            QOMNI_VK_ATTN_MAX_CHUNKS), "attention partials" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (acts); i++) {
    *acts[i].b = qomni_vk_buffer_new (vk, 4 * acts[i].floats, QOMNI_VK_MEM_DEVICE, acts[i].what,
                                      error);
    if (!*acts[i].b)
      goto fail;
  }
  t->step_cs = 0;
  t->step_ids = (size_t) 2 * B * half;
  t->step_x = (t->step_ids + B + 3) & ~(size_t) 3;
  t->step = qomni_vk_buffer_new (vk, 4 * (t->step_x + (uint64_t) B * H), QOMNI_VK_MEM_HOST,
                                 "step inputs", error);
  t->out = t->step ? qomni_vk_buffer_new (vk, 4 * ((uint64_t) t->V + 4), QOMNI_VK_MEM_HOST,
                                          "results", error)
                   : NULL;
  if (!t->out)
    goto fail;
  return t;
fail:
  qomni_vk_thinker_free (t);
  return NULL;
}

void
qomni_vk_thinker_free (QomniVkThinker *t)
{
  if (!t)
    return;
  QomniVk *vk = t->vk;
  for (int l = 0; t->layers && l < t->L; l++) {
    Layer *ly = &t->layers[l];
    QomniVkBuffer *bs[] = { ly->qkv.buf, ly->o.buf, ly->router.buf, ly->gate_up.buf,
                            ly->down.buf, ly->vec, ly->k_cache, ly->v_cache };
    for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
      qomni_vk_buffer_free (vk, bs[i]);
  }
  QomniVkBuffer *bs[] = { t->embed.buf, t->lm_head.buf, t->final_norm, t->x, t->xn, t->qkv,
                          t->att, t->rlog, t->ids, t->tw, t->g, t->y, t->logits_dev, t->step,
                          t->out, t->apart, t->route };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
    qomni_vk_buffer_free (vk, bs[i]);
  g_free (t->layers);
  g_free (t->inv_freq);
  g_free (t->slot_axis);
  g_free (t);
}

int qomni_vk_thinker_n_past (const QomniVkThinker *t) { return t->n_past; }

void qomni_vk_thinker_reset (QomniVkThinker *t) { t->n_past = 0; }

gboolean
qomni_vk_thinker_set_coopmat (QomniVkThinker *t, gboolean on)
{
  t->coopmat = on && qomni_vk_has_coopmat (t->vk);
  return t->coopmat;
}

double
qomni_vk_thinker_decode_bytes (const QomniVkThinker *t)
{
  const Layer *ly = &t->layers[0];
  double per_layer = qomni_dtype_nbytes (ly->qkv.dtype, (int64_t) t->QKV * t->H)
                     + qomni_dtype_nbytes (ly->o.dtype, (int64_t) t->H * t->qd)
                     + qomni_dtype_nbytes (ly->router.dtype, (int64_t) t->E * t->H)
                     + t->K * qomni_dtype_nbytes (ly->gate_up.dtype, (int64_t) 3 * t->I * t->H);
  return per_layer * t->L + qomni_dtype_nbytes (t->lm_head.dtype, (int64_t) t->V * t->H);
}

/* y[n, rows] (+)= x[n, cols] · Wᵀ: matvec for a few rows, tiled matmul for a prompt. A
 * weight larger than one binding may cover is bound as several row ranges. With a gain
 * buffer (matvec only, n ≤ DECODE_ROWS), x is RMS-normalized with gain[g_off ..] first. */
static void
rec_linear_norm (QomniVkThinker *t, QomniVkCmd *c, const VkW *w, const QomniVkBuffer *x,
                 uint32_t x_off, uint32_t x_stride, const QomniVkBuffer *y, uint32_t y_off,
                 uint32_t y_stride, int n, gboolean acc, const QomniVkBuffer *gain,
                 uint32_t g_off, float eps)
{
  g_assert (!gain || n <= DECODE_ROWS);
  const uint64_t row_bytes = qomni_dtype_nbytes (w->dtype, w->cols);
  uint64_t chunk = qomni_vk_max_range (t->vk) / row_bytes;
  /* and no more workgroups than one grid dimension holds (152064 vocab rows) */
  chunk = MIN (chunk, (uint64_t) 65535 * qomni_vk_pipe_spec (QOMNI_VK_PIPE_MATVEC_F32, 1));
  chunk = chunk >= 16 ? chunk & ~(uint64_t) 15 : chunk;
  for (uint64_t r0 = 0; r0 < (uint64_t) w->rows; r0 += chunk) {
    const uint32_t rows = (uint32_t) MIN (chunk, (uint64_t) w->rows - r0);
    QomniVkBind b[] = { { w->buf, r0 * row_bytes, rows * row_bytes }, { x }, { y }, { t->ids },
                        { gain ? gain : x } };
    if (n <= DECODE_ROWS) {
      QomniVkPipe pipe = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, w->dtype);
      const uint32_t nr = qomni_vk_pipe_spec (pipe, 1);
      QomniVkMatvecPush p = { .rows = rows, .cols = w->cols, .x_off = x_off,
                              .x_stride = x_stride, .y_off = y_off + (uint32_t) r0,
                              .y_stride = y_stride, .x_div = 1,
                              .flags = (acc ? QOMNI_VK_ACCUMULATE : 0)
                                       | (gain ? QOMNI_VK_NORM : 0),
                              .g_off = g_off, .eps = eps };
      qomni_vk_dispatch (c, pipe, b, 5, &p, sizeof p, (rows + nr - 1) / nr, n, 1);
    } else if (t->coopmat && !w->exact) {
      /* the grouped product's tensor-core kernel with one "expert" holding all rows */
      QomniVkMoeMatmulPush p = { .rows = rows, .cols = w->cols, .x_off = x_off,
                                 .x_stride = x_stride, .y_off = y_off + (uint32_t) r0,
                                 .y_stride = y_stride, .E = 1, .x_div = 1, .n = n,
                                 .flags = QOMNI_VK_DENSE | (acc ? QOMNI_VK_ACCUMULATE : 0) };
      qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MOE_MATMUL_CM_F32, w->dtype),
                         b, 4, &p, sizeof p, (rows + 63) / 64, (n + 63) / 64, 1);
    } else {
      QomniVkMatmulPush p = { .rows = rows, .cols = w->cols, .n = n, .x_off = x_off,
                              .x_stride = x_stride, .y_off = y_off + (uint32_t) r0,
                              .y_stride = y_stride, .flags = acc ? QOMNI_VK_ACCUMULATE : 0 };
      qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATMUL_F32, w->dtype), b, 3,
                         &p, sizeof p, (rows + 63) / 64, (n + 63) / 64, 1);
    }
  }
}

static void
rec_linear (QomniVkThinker *t, QomniVkCmd *c, const VkW *w, const QomniVkBuffer *x,
            uint32_t x_off, uint32_t x_stride, const QomniVkBuffer *y, uint32_t y_off,
            uint32_t y_stride, int n, gboolean acc)
{
  rec_linear_norm (t, c, w, x, x_off, x_stride, y, y_off, y_stride, n, acc, NULL, 0, 0.0f);
}

static void
rec_rmsnorm (QomniVkCmd *c, const QomniVkBuffer *x, const QomniVkBuffer *y,
             const QomniVkBuffer *wb, uint32_t w_off, int n, int dim, float eps)
{
  QomniVkNormPush p = { .n = n, .dim = dim, .x_stride = dim, .y_stride = dim, .w_off = w_off,
                        .flags = 1, .eps = eps };
  QomniVkBind b[] = { { x }, { y }, { wb } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_RMSNORM, b, 3, &p, sizeof p, MIN (n, 65535),
                     (n + 65534) / 65535, 1);
}

/* Records the whole stack for n rows already in t->x; then the final norm, and the last
 * row's logits and argmax. */
static void
rec_stack (QomniVkThinker *t, QomniVkCmd *c, int n, QomniVkBuffer *layers_host)
{
  const int H = t->H, hd = t->hd, half = hd / 2, K = t->K, I = t->I, p0 = t->n_past;
  const float eps = (float) t->cfg.rms_norm_eps;
  const gboolean dec = n <= DECODE_ROWS;
  for (int l = 0; l < t->L; l++) {
    Layer *ly = &t->layers[l];
    if (dec) {
      /* input norm inside the q/k/v matvec; rope q/k and the V copy in one dispatch */
      rec_linear_norm (t, c, &ly->qkv, t->x, 0, H, t->qkv, 0, t->QKV, n, FALSE, ly->vec, 0,
                       eps);
      QomniVkRopeQkvPush rp = { .n = n, .nh = t->nh, .nkv = t->nkv, .hd = hd,
                                .x_stride = t->QKV, .kv_off = p0 * t->kvd, .kv_stride = t->kvd,
                                .cs_off = t->step_cs, .sin_off = n * half,
                                .qnorm_off = 2 * H, .knorm_off = 2 * H + hd,
                                .flags = ly->qk_norm, .eps = eps };
      QomniVkBind br[] = { { t->qkv }, { ly->k_cache }, { ly->v_cache }, { t->step },
                           { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE_QKV, br, 5, &rp, sizeof rp,
                         t->nh + 2 * t->nkv, n, 1);
    } else {
      rec_rmsnorm (c, t->x, t->xn, ly->vec, 0, n, H, eps);
      rec_linear (t, c, &ly->qkv, t->xn, 0, H, t->qkv, 0, t->QKV, n, FALSE);
      /* q: head norm + RoPE in place; k: the same, written into the cache at p0 */
      QomniVkRopePush rq = { .n = n, .heads = t->nh, .hd = hd, .x_stride = t->QKV,
                             .y_stride = t->QKV, .cs_off = t->step_cs, .sin_off = n * half,
                             .norm_off = 2 * H, .flags = ly->qk_norm, .eps = eps };
      QomniVkBind bq[] = { { t->qkv }, { t->qkv }, { t->step }, { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, bq, 4, &rq, sizeof rq, t->nh, n, 1);
      QomniVkRopePush rk = rq;
      rk.heads = t->nkv;
      rk.x_off = t->qd;
      rk.y_off = p0 * t->kvd;
      rk.y_stride = t->kvd;
      rk.norm_off = 2 * H + hd;
      QomniVkBind bk[] = { { t->qkv }, { ly->k_cache }, { t->step }, { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, bk, 4, &rk, sizeof rk, t->nkv, n, 1);
      qomni_vk_cmd_copy_rows (c, t->qkv, 4 * (uint64_t) (t->qd + t->kvd),
                              4 * (uint64_t) t->QKV, ly->v_cache, 4 * (uint64_t) p0 * t->kvd,
                              4 * (uint64_t) t->kvd, 4 * (uint64_t) t->kvd, n);
    }
    QomniVkAttnPush ap = { .n = n, .m = p0 + n, .nh = t->nh, .nkv = t->nkv, .hd = hd,
                           .q_stride = t->QKV, .kv_stride = t->kvd, .o_stride = t->qd,
                           .q_pos0 = p0, .causal = 1, .window = t->cfg.sliding_window,
                           .scale = 1.0f / sqrtf ((float) hd) };
    if (dec) {
      /* flash-decoding: chunks of the cache in parallel, then one merge per head */
      ap.n_chunks = qomni_vk_attn_split (ap.m, &ap.span);
      ap.o_stride = 0;
      QomniVkBind ba[] = { { t->qkv }, { ly->k_cache }, { ly->v_cache }, { t->apart } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_SPLIT, ba, 4, &ap, sizeof ap, t->nh, n,
                         ap.n_chunks);
      QomniVkAttnCombinePush cp = { .n = n, .nh = t->nh, .hd = hd, .n_chunks = ap.n_chunks,
                                    .o_stride = t->qd };
      QomniVkBind bc[] = { { t->apart }, { t->att } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_COMBINE, bc, 2, &cp, sizeof cp, t->nh, n, 1);
    } else {
      QomniVkBind ba[] = { { t->qkv }, { ly->k_cache }, { ly->v_cache }, { t->att } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTENTION, ba, 4, &ap, sizeof ap, t->nh, n, 1);
    }
    /* x += o_proj(att): the residual add rides on the product */
    rec_linear (t, c, &ly->o, t->att, 0, t->qd, t->x, 0, H, n, TRUE);

    /* MoE (§2.6): router → softmax/top-k/renorm → experts by id → weighted sum into x.
     * Decode: the post-attention norm rides inside the router and the experts' gate/up
     * matvec (each normalizes x itself), so xn is never written. */
    if (dec)
      rec_linear_norm (t, c, &ly->router, t->x, 0, H, t->rlog, 0, t->E, n, FALSE, ly->vec, H,
                       eps);
    else {
      rec_rmsnorm (c, t->x, t->xn, ly->vec, H, n, H, eps);
      rec_linear (t, c, &ly->router, t->xn, 0, H, t->rlog, 0, t->E, n, FALSE);
    }
    QomniVkTopkPush tp = { .n = n, .E = t->E, .K = K, .renorm = t->cfg.norm_topk_prob };
    QomniVkBind bt[] = { { t->rlog }, { t->ids }, { t->tw } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_TOPK, bt, 3, &tp, sizeof tp, n, 1, 1);
    if (dec) {
      /* per (token, chosen expert) pair: the norm rides in gate/up, and the combine
       * x += Σ_j w_j · down_j(g_j) on the down projection */
      QomniVkPipe sw = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_SWIGLU_F32, ly->gate_up.dtype);
      const uint32_t nr = qomni_vk_pipe_spec (sw, 1);
      QomniVkMatvecPush gp = { .rows = I, .cols = H, .x_stride = H, .y_stride = I,
                               .expert_stride = 2 * I * H, .x_div = K,
                               .flags = QOMNI_VK_USE_IDS | QOMNI_VK_NORM, .g_off = H,
                               .eps = eps };
      QomniVkBind bg[] = { { ly->gate_up.buf }, { t->x }, { t->g }, { t->ids }, { ly->vec } };
      qomni_vk_dispatch (c, sw, bg, 5, &gp, sizeof gp, (I + nr - 1) / nr, n * K, 1);
      QomniVkPipe dn = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, ly->down.dtype);
      QomniVkMatvecPush dp = { .rows = H, .cols = I, .x_stride = I, .y_stride = H,
                               .expert_stride = H * I, .x_div = 1,
                               .flags = QOMNI_VK_USE_IDS | QOMNI_VK_KSUM | QOMNI_VK_ACCUMULATE,
                               .nslot = K };
      QomniVkBind bd[] = { { ly->down.buf }, { t->g }, { t->x }, { t->ids }, { t->tw } };
      qomni_vk_dispatch (c, dn, bd, 5, &dp, sizeof dp, (H + nr - 1) / nr, n, 1);
    } else {
      /* a prompt: the pairs grouped by expert, each expert a tiled product over its tokens */
      QomniVkMoe m = { .gate_up = ly->gate_up.buf, .gate_up_dtype = ly->gate_up.dtype,
                       .down = ly->down.buf, .down_dtype = ly->down.dtype, .xn = t->xn,
                       .x = t->x, .ids = t->ids, .tw = t->tw, .route = t->route, .g = t->g,
                       .y = t->y, .n = n, .H = H, .I = I, .E = t->E, .K = K,
                       .coopmat = t->coopmat };
      qomni_vk_moe_prefill (c, &m);
    }
    /* hand the first layers to the GPU while the rest are recorded */
    if (dec && (l == 1 || l == 5 || l == 13 || l == 29))
      qomni_vk_cmd_flush (c);
    if (layers_host)
      qomni_vk_cmd_copy (c, t->x, 0, layers_host, 4 * (uint64_t) l * n * H,
                         4 * (uint64_t) n * H);
  }
  rec_rmsnorm (c, t->x, t->x, t->final_norm, 0, n, H, eps);
  rec_linear (t, c, &t->lm_head, t->x, (n - 1) * H, H, t->logits_dev, 0, t->V, 1, FALSE);
  QomniVkArgmaxPush am = { .n = t->V, .out_off = 0 };
  QomniVkBind bm[] = { { t->logits_dev }, { t->out } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ARGMAX, bm, 2, &am, sizeof am, 1, 1, 1);
}

static void
write_rope_tables (QomniVkThinker *t, const int *pos, int pos_stride, int n)
{
  const int half = t->hd / 2;
  float *cs = (float *) t->step->map + t->step_cs;
  for (int r = 0; r < n; r++)
    for (int i = 0; i < half; i++) {
      const float p = (float) pos[t->slot_axis[i] * pos_stride + r];
      const float ang = p * t->inv_freq[i];
      cs[r * half + i] = cosf (ang);
      cs[n * half + r * half + i] = sinf (ang);
    }
}

static gboolean
run (QomniVkThinker *t, int n, gboolean from_ids, float *layers, float *hidden, float *logits,
     int *next, GError **error)
{
  if (t->n_past + n > t->max_ctx) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the context is full: %d cached + %d new positions exceed %d", t->n_past, n,
                 t->max_ctx);
    return FALSE;
  }
  QomniVkBuffer *lh = NULL;
  if (layers) {
    lh = qomni_vk_buffer_new (t->vk, 4 * (uint64_t) t->L * n * t->H, QOMNI_VK_MEM_HOST,
                              "layer outputs", error);
    if (!lh)
      return FALSE;
  }
  QomniVkCmd *c = qomni_vk_cmd_begin (t->vk, error);
  if (!c) {
    qomni_vk_buffer_free (t->vk, lh);
    return FALSE;
  }
  if (from_ids) {
    QomniVkEmbedPush ep = { .cols = t->H, .n = n, .ids_off = t->step_ids };
    QomniVkBind be[] = { { t->embed.buf }, { t->step }, { t->x } };
    qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_EMBED_F32, t->embed.dtype), be,
                       3, &ep, sizeof ep, 1, n, 1);
  } else {
    qomni_vk_cmd_copy (c, t->step, 4 * t->step_x, t->x, 0, 4 * (uint64_t) n * t->H);
  }
  rec_stack (t, c, n, lh);
  if (logits)
    qomni_vk_cmd_copy (c, t->logits_dev, 0, t->out, 16, 4 * (uint64_t) t->V);
  gboolean ok = qomni_vk_cmd_submit (c, error);
  if (ok) {
    t->n_past += n;
    if (next)
      *next = (int) ((guint32 *) t->out->map)[0];
    if (logits)
      memcpy (logits, (char *) t->out->map + 16, sizeof (float) * t->V);
    if (layers)
      memcpy (layers, lh->map, 4 * (size_t) t->L * n * t->H);
    if (hidden)
      ok = qomni_vk_download (t->vk, t->x, 0, hidden, 4 * (size_t) n * t->H, error);
  }
  qomni_vk_buffer_free (t->vk, lh);
  return ok;
}

gboolean
qomni_vk_thinker_forward (QomniVkThinker *t, const float *x, int n, const int *pos,
                          float *layers, float *hidden, float *logits, int *next, GError **error)
{
  gboolean ok = TRUE;
  /* prompts longer than the planned batch run in slices, as decoder.c does */
  for (int s = 0; s < n && ok; s += t->max_batch) {
    const int len = MIN (t->max_batch, n - s);
    const gboolean last = s + len == n;
    write_rope_tables (t, pos + s, n, len);
    memcpy ((float *) t->step->map + t->step_x, x + (size_t) s * t->H,
            sizeof (float) * (size_t) len * t->H);
    float *lay = NULL;
    if (layers && n <= t->max_batch)
      lay = layers;
    ok = run (t, len, FALSE, lay, hidden && n <= t->max_batch ? hidden : NULL,
              last ? logits : NULL, last ? next : NULL, error);
  }
  return ok;
}

gboolean
qomni_vk_thinker_decode (QomniVkThinker *t, int id, int pos, float *logits, int *next,
                         GError **error)
{
  if (id < 0 || id >= t->V) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "token id %d is outside the vocabulary (%d)", id, t->V);
    return FALSE;
  }
  const int p3[3] = { pos, pos, pos };
  write_rope_tables (t, p3, 1, 1);
  ((guint32 *) t->step->map)[t->step_ids] = (guint32) id;
  return run (t, 1, TRUE, NULL, NULL, logits, next, error);
}
