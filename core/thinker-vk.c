/* qomni — a decoder stack on the Vulkan device (the math of decoder.c): the thinker, the
 * talker (MoE with a sigmoid-gated shared expert) and the code predictor (dense SwiGLU). */
#include "thinker-vk.h"
#include "attention-vk.h"
#include "error.h"
#include "moe-vk.h"
#include "ops-cpu.h"
#include "vk-fill.h"
#include "vk-ops.h"

#include <math.h>
#include <string.h>

/* Up to this many rows a step runs as decode: matvec with the RMSNorm fused in, the
 * q/k/v step as one dispatch, attention split over the keys (flash-decoding). Longer
 * batches run the tiled matmul, separate norms and the tiled (flash) attention. */
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
  gboolean moe;        /* else gate_up/down are a dense SwiGLU MLP */
  VkW router;          /* [E (+ 1), H]            HF: mlp.gate (+ mlp.shared_expert_gate) */
  VkW gate_up;         /* [E, 2I, H]              HF: mlp.experts.N.{gate,up}_proj
                        * dense: [2·Id, H]        HF: mlp.{gate,up}_proj */
  VkW down;            /* [E, H, I]               HF: mlp.experts.N.down_proj
                        * dense: [H, Id]          HF: mlp.down_proj */
  VkW sh_gate_up;      /* [2·Is, H]               HF: mlp.shared_expert.{gate,up}_proj */
  VkW sh_down;         /* [H, Is]                 HF: mlp.shared_expert.down_proj */
  QomniVkBuffer *vec;  /* f32 [in_norm H | post_norm H | q_norm hd | k_norm hd] */
  gboolean qk_norm;
  QomniVkBuffer *k_cache, *v_cache;   /* [max_ctx, nkv·hd] f32: the decoder's own */
} Layer;

/* The uploaded weights of a stack: one per (device, weight store, stack names), shared by
 * every decoder made from them (qomni_vk_shared_get), so N streams hold one copy. Its
 * layers have no KV cache; each decoder copies the Layer records and adds its own. Only
 * read by the kernels, so decoders sharing it record and submit from any thread. */
typedef struct {
  QomniVk *vk;
  int L, n_tables;
  Layer *layers;                      /* [L], k_cache/v_cache NULL */
  VkW *embed, *lm_head;               /* [n_tables] each (buf NULL: none) */
  QomniVkBuffer *final_norm;          /* [H] f32 */
  uint64_t bytes;                     /* what the device took for all of it */
} StackWeights;

struct _QomniVkDecoder {
  QomniVk *vk;
  QomniTextConfig cfg;
  int H, V, L, nh, nkv, hd, qd, kvd, QKV, E, K, I, Id, Is, R;   /* R: router rows */
  int max_ctx, max_batch, n_past;
  gboolean coopmat;                   /* prompt products on tensor cores */
  StackWeights *sw;                   /* the weights; shared unless random (sw_owned) */
  gboolean sw_owned;
  Layer *layers;                      /* [L] sw's records plus this decoder's KV cache */
  int n_tables;
  VkW *embed, *lm_head;               /* sw's */
  QomniVkBuffer *final_norm;          /* sw's */
  float *inv_freq;                    /* [hd/2] */
  guint8 *slot_axis;                  /* [hd/2] */
  /* activations, [max_batch, ...] */
  QomniVkBuffer *x, *xn, *qkv, *att, *rlog, *ids, *tw, *g, *gs, *y, *logits_dev;
  QomniVkBuffer *route;               /* the prompt's pairs grouped by expert (moe-vk.h) */
  QomniVkBuffer *apart;               /* split attention's partials, [DECODE_ROWS] rows */
  QomniVkBuffer *mpart;               /* a prompt's split-K matmul partials */
  /* host-visible: step inputs (cos/sin, token id, input rows) and results */
  QomniVkBuffer *step, *out;
  size_t step_cs, step_ids, step_x;   /* float offsets in step */
  /* the decode step recorded once and replayed (decode_replay): its position-dependent
   * inputs in dstep (DSTEP_*), one command per kind of result asked for */
  int replay;                         /* -1: not decided yet (QOMNI_VK_REPLAY) */
  QomniVkBuffer *dstep;
  QomniVkCmd *replay_cmd[4];          /* [logits wanted · 2 + next wanted] */
  gboolean replay_profiled;           /* the commands carry timestamps */
  int n_replayed;                     /* steps run by replay */
};

/* Words of dstep: the position (n_past) read by rope_qkv and attn_split when the command
 * runs, the token id read by the embedding, then cos [hd/2] and sin [hd/2]. */
enum { DSTEP_POS = 0, DSTEP_ID = 1, DSTEP_CS = 4 };

static void replay_clear (QomniVkDecoder *t);

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
weight_make (QomniVk *vk, VkW *dst, const QomniWeights *w, QomniDType rdt, int rows,
             int cols, int n_mats, const char *what, GError **error, guint seed,
             const QomniTensor **parts, int n_parts)
{
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
    if (qomni_dtype_info (rdt)->block_elems > 1)
      return qomni_vk_fill_random_blocks (vk, dst->buf, rdt,
                                          (uint64_t) rows * cols * n_mats /
                                          (uint64_t) qomni_dtype_info (rdt)->block_elems,
                                          a, seed, error);
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

/* A gain vector by name (printf-style), or ones for random weights. */
static gboolean
upload_vec (QomniVk *vk, QomniVkBuffer *b, uint64_t off, const QomniWeights *w, int64_t len,
            gboolean optional, gboolean *present, GError **error, const char *fmt, ...)
  G_GNUC_PRINTF (9, 10);

static gboolean
upload_vec (QomniVk *vk, QomniVkBuffer *b, uint64_t off, const QomniWeights *w, int64_t len,
            gboolean optional, gboolean *present, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
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

/* As decoder.c: MoE unless listed in mlp_only_layers or off the sparse step. */
static gboolean
layer_is_moe (const QomniTextConfig *c, int layer)
{
  if (c->num_experts == 0)
    return FALSE;
  for (int i = 0; i < c->n_mlp_only_layers; i++)
    if (c->mlp_only_layers[i] == layer)
      return FALSE;
  return (layer + 1) % MAX (c->decoder_sparse_step, 1) == 0;
}

/* Partials of the split-K products of a prompt of ≤ B rows (qomni_vk_rec_matmul): the
 * projections that take the tiled matmul (q/k/v, o, router, the dense MLP's down). */
static uint64_t
prompt_part_floats (const QomniVkDecoder *t, int B)
{
  if (B <= DECODE_ROWS)
    return 0;
  const uint32_t H = t->H, n = B;
  const uint32_t shapes[][2] = { { t->QKV, H }, { H, t->qd }, { t->R, H }, { H, t->Id } };
  uint64_t most = 0;
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    if (shapes[i][0] && shapes[i][1])
      most = MAX (most, qomni_vk_matmul_scratch_floats (shapes[i][0], shapes[i][1], n));
  return most;
}

static void
stack_weights_free (gpointer p)
{
  StackWeights *sw = p;
  if (!sw)
    return;
  QomniVk *vk = sw->vk;
  for (int l = 0; sw->layers && l < sw->L; l++) {
    Layer *ly = &sw->layers[l];
    QomniVkBuffer *bs[] = { ly->qkv.buf, ly->o.buf, ly->router.buf, ly->gate_up.buf,
                            ly->down.buf, ly->sh_gate_up.buf, ly->sh_down.buf, ly->vec };
    for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
      qomni_vk_buffer_free (vk, bs[i]);
  }
  for (int j = 0; sw->embed && j < sw->n_tables; j++) {
    qomni_vk_buffer_free (vk, sw->embed[j].buf);
    qomni_vk_buffer_free (vk, sw->lm_head[j].buf);
  }
  qomni_vk_buffer_free (vk, sw->final_norm);
  g_free (sw->layers);
  g_free (sw->embed);
  g_free (sw->lm_head);
  g_free (sw);
}

/* What stack_weights_make reads: the decoder being made (its shapes and config), the
 * store (NULL: random weights of rdt) and the names. */
typedef struct {
  const QomniVkDecoder *t;
  const QomniWeights *w;
  const QomniVkStackNames *names;
  QomniDType rdt;
} StackMake;

/* (a QomniVkSharedMake) Every weight of the stack on the device: stacked and uploaded
 * from the store, or random. */
static gpointer
stack_weights_make (QomniVk *vk, gpointer data, GError **error)
{
  const StackMake *m = data;
  const QomniVkDecoder *t = m->t;
  const QomniWeights *w = m->w;
  const QomniTextConfig *cfg = &t->cfg;
  const QomniVkStackNames *names = m->names;
  const char *pre = names->prefix;
  const QomniDType rdt = m->rdt;
  const int H = t->H, E = t->E, I = t->I, hd = t->hd, Is = t->Is, Id = t->Id;
  StackWeights *sw = g_new0 (StackWeights, 1);
  sw->vk = vk;
  sw->L = t->L;
  sw->n_tables = t->n_tables;
  sw->layers = g_new0 (Layer, t->L);
  for (int l = 0; l < t->L; l++) {
    Layer *ly = &sw->layers[l];
    const QomniTensor *p[3];
    const QomniTensor **ex = NULL;
    ly->moe = layer_is_moe (cfg, l);
    if (w) {
      GET (p[0], t->qd, H, "%s.layers.%d.self_attn.q_proj.weight", pre, l);
      GET (p[1], t->kvd, H, "%s.layers.%d.self_attn.k_proj.weight", pre, l);
      GET (p[2], t->kvd, H, "%s.layers.%d.self_attn.v_proj.weight", pre, l);
    }
    if (!weight_make (vk, &ly->qkv, w, rdt, t->QKV, H, 1, "q/k/v", error, l * 8 + 1, p, 3))
      goto fail;
    if (w)
      GET (p[0], H, t->qd, "%s.layers.%d.self_attn.o_proj.weight", pre, l);
    if (!weight_make (vk, &ly->o, w, rdt, H, t->qd, 1, "o_proj", error, l * 8 + 2, p, 1))
      goto fail;
    if (!ly->moe) {
      /* dense SwiGLU: [gate; up] stacked as one expert */
      if (w) {
        GET (p[0], Id, H, "%s.layers.%d.mlp.gate_proj.weight", pre, l);
        GET (p[1], Id, H, "%s.layers.%d.mlp.up_proj.weight", pre, l);
      }
      if (!weight_make (vk, &ly->gate_up, w, rdt, 2 * Id, H, 1, "mlp gate/up", error, l * 8 + 4,
                        p, 2))
        goto fail;
      if (w)
        GET (p[0], H, Id, "%s.layers.%d.mlp.down_proj.weight", pre, l);
      if (!weight_make (vk, &ly->down, w, rdt, H, Id, 1, "mlp down", error, l * 8 + 5, p, 1))
        goto fail;
    } else {
      if (w) {
        GET (p[0], E, H, "%s.layers.%d.mlp.gate.weight", pre, l);
        if (Is > 0)
          GET (p[1], 1, H, "%s.layers.%d.mlp.shared_expert_gate.weight", pre, l);
      }
      /* the shared expert's gate rides as one more router row */
      if (!weight_make (vk, &ly->router, w, rdt, t->R, H, 1, "router", error, l * 8 + 3, p,
                        1 + (Is > 0)))
        goto fail;
      ly->router.exact = TRUE;   /* fp16 rounding could flip a near tie in the top-k */
      if (w) {
        ex = g_new (const QomniTensor *, 2 * E);
        for (int e = 0; e < E && w; e++) {
          ex[2 * e] = qomni_weights_get (w, error, 2, (int64_t[]) { I, H },
                                         "%s.layers.%d.mlp.experts.%d.gate_proj.weight", pre,
                                         l, e);
          ex[2 * e + 1] = ex[2 * e] ? qomni_weights_get (
                              w, error, 2, (int64_t[]) { I, H },
                              "%s.layers.%d.mlp.experts.%d.up_proj.weight", pre, l, e)
                                    : NULL;
          if (!ex[2 * e + 1]) {
            g_free (ex);
            goto fail;
          }
        }
      }
      gboolean ok = weight_make (vk, &ly->gate_up, w, rdt, 2 * I, H, E, "experts gate/up", error,
                                 l * 8 + 4, ex, 2 * E);
      if (ok && w)
        for (int e = 0; e < E; e++) {
          ex[e] = qomni_weights_get (w, error, 2, (int64_t[]) { H, I },
                                     "%s.layers.%d.mlp.experts.%d.down_proj.weight", pre, l, e);
          if (!ex[e]) {
            ok = FALSE;
            break;
          }
        }
      if (ok)
        ok = weight_make (vk, &ly->down, w, rdt, H, I, E, "experts down", error, l * 8 + 5, ex, E);
      g_free (ex);
      if (!ok)
        goto fail;
      if (Is > 0) {
        if (w) {
          GET (p[0], Is, H, "%s.layers.%d.mlp.shared_expert.gate_proj.weight", pre, l);
          GET (p[1], Is, H, "%s.layers.%d.mlp.shared_expert.up_proj.weight", pre, l);
        }
        if (!weight_make (vk, &ly->sh_gate_up, w, rdt, 2 * Is, H, 1, "shared expert gate/up",
                          error, l * 8 + 6, p, 2))
          goto fail;
        if (w)
          GET (p[0], H, Is, "%s.layers.%d.mlp.shared_expert.down_proj.weight", pre, l);
        if (!weight_make (vk, &ly->sh_down, w, rdt, H, Is, 1, "shared expert down", error,
                          l * 8 + 7, p, 1))
          goto fail;
      }
    }
    ly->vec = qomni_vk_buffer_new (vk, sizeof (float) * (2 * H + 2 * hd), QOMNI_VK_MEM_DEVICE,
                                   "norm gains", error);
    if (!ly->vec)
      goto fail;
    gboolean kn = FALSE;
    if (!upload_vec (vk, ly->vec, 0, w, H, FALSE, NULL, error,
                     "%s.layers.%d.input_layernorm.weight", pre, l)
        || !upload_vec (vk, ly->vec, 4 * H, w, H, FALSE, NULL, error,
                        "%s.layers.%d.post_attention_layernorm.weight", pre, l)
        || !upload_vec (vk, ly->vec, 8 * H, w, hd, TRUE, &ly->qk_norm, error,
                        "%s.layers.%d.self_attn.q_norm.weight", pre, l)
        || !upload_vec (vk, ly->vec, 8 * H + 4 * hd, w, hd, TRUE, &kn, error,
                        "%s.layers.%d.self_attn.k_norm.weight", pre, l))
      goto fail;
    if (kn != ly->qk_norm) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                   "layer %d has only one of q_norm and k_norm", l);
      goto fail;
    }
  }
  sw->embed = g_new0 (VkW, t->n_tables);
  sw->lm_head = g_new0 (VkW, t->n_tables);
  for (int j = 0; j < t->n_tables; j++) {
    const QomniTensor *p[1] = { NULL };
    if (names->embed) {
      if (w)
        GET (p[0], t->V, H, names->embed, j);
      if (!weight_make (vk, &sw->embed[j], w, rdt, t->V, H, 1, "embedding", error, 7777 + 2 * j,
                        p, 1))
        goto fail;
    }
    if (names->head) {
      if (w) {
        if (names->tied && cfg->tie_word_embeddings && !qomni_weights_find (w, names->head))
          p[0] = qomni_weights_find (w, names->tied);
        else
          GET (p[0], t->V, H, names->head, j);
      }
      if (!weight_make (vk, &sw->lm_head[j], w, rdt, t->V, H, 1, "lm_head", error, 7778 + 2 * j,
                        p, 1))
        goto fail;
    }
  }
  sw->final_norm = qomni_vk_buffer_new (vk, sizeof (float) * H, QOMNI_VK_MEM_DEVICE,
                                       "final norm", error);
  if (!sw->final_norm
      || !upload_vec (vk, sw->final_norm, 0, w, H, FALSE, NULL, error, "%s.norm.weight", pre))
    goto fail;
  for (int l = 0; l < sw->L; l++) {
    const Layer *ly = &sw->layers[l];
    const QomniVkBuffer *bs[] = { ly->qkv.buf, ly->o.buf, ly->router.buf, ly->gate_up.buf,
                                  ly->down.buf, ly->sh_gate_up.buf, ly->sh_down.buf, ly->vec };
    for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
      sw->bytes += bs[i] ? bs[i]->alloc_size : 0;
  }
  for (int j = 0; j < sw->n_tables; j++)
    sw->bytes += (sw->embed[j].buf ? sw->embed[j].buf->alloc_size : 0)
                 + (sw->lm_head[j].buf ? sw->lm_head[j].buf->alloc_size : 0);
  sw->bytes += sw->final_norm->alloc_size;
  return sw;
fail:
  stack_weights_free (sw);
  return NULL;
}

QomniVkDecoder *
qomni_vk_decoder_new (QomniVk *vk, const QomniWeights *w, const QomniTextConfig *cfg,
                      const QomniVkStackNames *names, QomniDType rdt, int max_ctx,
                      int max_batch, GError **error)
{
  QomniVkDecoder *t = g_new0 (QomniVkDecoder, 1);
  t->vk = vk;
  t->cfg = *cfg;
  t->cfg.mlp_only_layers = g_memdup2 (cfg->mlp_only_layers,
                                      sizeof (int) * (gsize) MAX (cfg->n_mlp_only_layers, 1));
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
  t->K = t->E ? cfg->num_experts_per_tok : 0;
  t->I = t->E ? cfg->moe_intermediate_size : 0;
  t->Is = t->E ? cfg->shared_expert_intermediate_size : 0;
  t->Id = cfg->intermediate_size;
  t->R = t->E + (t->Is > 0);
  t->max_ctx = max_ctx;
  t->max_batch = max_batch;
  t->replay = -1;
  t->n_tables = MAX (names->n_tables, 1);
  const int H = t->H, E = t->E, I = t->I, hd = t->hd, B = max_batch, K = t->K;
  const int Is = t->Is, Id = t->Id;
  gboolean any_dense = FALSE;
  for (int l = 0; l < t->L; l++)
    any_dense |= !layer_is_moe (cfg, l);
  if (hd % 8 || hd > 256 || H % 8 || I % 8 || Is % 8 || (any_dense && Id % 8) || E > 1023
      || K > 64) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU kernels need head_dim ≤ 256 and widths that are multiples of 8");
    goto fail;
  }
  /* the weights: one upload per store and stack on this device, whoever asks for it (N
   * pipelines, or the branches of one); random weights are each decoder's own */
  StackMake make = { .t = t, .w = w, .names = names, .rdt = rdt };
  if (w) {
    g_autofree char *key = g_strdup_printf (
      "decoder stack: store %u, %s, embed %s, head %s (tied %s, %d), %d tables, L %d H %d V %d "
      "E %d", qomni_weights_serial (w), names->prefix, names->embed ? names->embed : "-",
      names->head ? names->head : "-", names->tied ? names->tied : "-",
      cfg->tie_word_embeddings, t->n_tables, t->L, H, t->V, E);
    t->sw = qomni_vk_shared_get (vk, key, stack_weights_make, &make, stack_weights_free, error);
  } else {
    t->sw = stack_weights_make (vk, &make, error);
    t->sw_owned = TRUE;
  }
  if (!t->sw)
    goto fail;
  t->embed = t->sw->embed;
  t->lm_head = t->sw->lm_head;
  t->final_norm = t->sw->final_norm;
  /* the Layer records are copied so the recording reads weights and this decoder's cache
   * through one pointer */
  t->layers = g_memdup2 (t->sw->layers, sizeof (Layer) * (gsize) t->L);
  for (int l = 0; l < t->L; l++) {
    Layer *ly = &t->layers[l];
    ly->k_cache = qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) max_ctx * t->kvd,
                                       QOMNI_VK_MEM_DEVICE, "KV cache", error);
    ly->v_cache = ly->k_cache ? qomni_vk_buffer_new (vk, sizeof (float) * (uint64_t) max_ctx
                                                             * t->kvd,
                                                     QOMNI_VK_MEM_DEVICE, "KV cache", error)
                              : NULL;
    if (!ly->v_cache)
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
  const uint64_t inter = MAX ((uint64_t) K * I, (uint64_t) (any_dense ? Id : 0));
  struct { QomniVkBuffer **b; uint64_t floats; const char *what; } acts[] = {
    { &t->x, (uint64_t) B * H, "hidden states" },
    { &t->xn, (uint64_t) B * H, "normed states" },
    { &t->qkv, (uint64_t) B * t->QKV, "q/k/v" },
    { &t->att, (uint64_t) B * t->qd, "attention output" },
    { &t->rlog, (uint64_t) B * MAX (t->R, 1), "router logits" },
    { &t->ids, (uint64_t) B * MAX (K, 1), "expert ids" },
    { &t->tw, (uint64_t) B * (MAX (K, 1) + 1), "expert weights" },
    { &t->g, (uint64_t) B * MAX (inter, 1), "expert activations" },
    { &t->gs, (uint64_t) B * MAX (Is, 1), "shared expert activations" },
    { &t->y, (uint64_t) B * MAX (K, 1) * H, "expert outputs" },
    { &t->logits_dev, (uint64_t) t->V, "logits" },
    { &t->route, qomni_vk_moe_route_words (B, MAX (t->E, 1), MAX (K, 1)), "expert groups" },
    { &t->apart, qomni_vk_attn_part_floats (MIN (B, DECODE_ROWS), t->nh, hd,
                                            QOMNI_VK_ATTN_MAX_CHUNKS), "attention partials" },
    { &t->mpart, MAX (prompt_part_floats (t, B), 4), "matmul partials" },
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
  /* the replayed step's inputs, made here so that an instance's memory is fixed at
   * creation (the shared-weights accounting counts on it) */
  t->dstep = t->out ? qomni_vk_buffer_new (vk, 4 * (DSTEP_CS + 2 * (uint64_t) half),
                                           QOMNI_VK_MEM_HOST, "replayed step inputs", error)
                    : NULL;
  if (!t->dstep)
    goto fail;
  return t;
fail:
  qomni_vk_decoder_free (t);
  return NULL;
}

QomniVkThinker *
qomni_vk_thinker_new (QomniVk *vk, const QomniWeights *w, const QomniTextConfig *cfg,
                      QomniDType rdt, int max_ctx, int max_batch, GError **error)
{
  const QomniVkStackNames names = { .prefix = "thinker.model",
                                    .embed = "thinker.model.embed_tokens.weight",
                                    .head = "thinker.lm_head.weight",
                                    .tied = "thinker.model.embed_tokens.weight" };
  QomniVkDecoder *t = qomni_vk_decoder_new (vk, w, cfg, &names, rdt, max_ctx, max_batch,
                                            error);
  /* Tensor cores stay off by default: on the H200 (docs/benchmarks.md, 2026-11-30) the
   * 16×8×16 fp16 kernels ran the grouped MoE block in 3.0 ms against 2.4 ms for the float32
   * tiles, and dense products at 19–20 against 21–23 TFLOP/s; qomni_vk_thinker_set_coopmat
   * turns them on (bench-vk times both). The talker and the code predictor never use them:
   * their frames are compared code for code. */
  if (t)
    t->coopmat = FALSE;
  return t;
}

gboolean
qomni_vk_thinker_set_coopmat (QomniVkThinker *t, gboolean on)
{
  t->coopmat = on && qomni_vk_has_coopmat (t->vk);
  return t->coopmat;
}

void
qomni_vk_decoder_free (QomniVkDecoder *t)
{
  if (!t)
    return;
  QomniVk *vk = t->vk;
  replay_clear (t);
  qomni_vk_buffer_free (vk, t->dstep);
  for (int l = 0; t->layers && l < t->L; l++) {
    qomni_vk_buffer_free (vk, t->layers[l].k_cache);
    qomni_vk_buffer_free (vk, t->layers[l].v_cache);
  }
  if (t->sw_owned)
    stack_weights_free (t->sw);
  else
    qomni_vk_shared_release (vk, t->sw);
  QomniVkBuffer *bs[] = { t->x, t->xn, t->qkv, t->att, t->rlog, t->ids, t->tw, t->g, t->gs, t->y,
                          t->logits_dev, t->step, t->out, t->apart, t->route, t->mpart };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
    qomni_vk_buffer_free (vk, bs[i]);
  g_free (t->layers);
  g_free (t->cfg.mlp_only_layers);
  g_free (t->inv_freq);
  g_free (t->slot_axis);
  g_free (t);
}

int qomni_vk_decoder_n_past (const QomniVkDecoder *t) { return t->n_past; }
void qomni_vk_decoder_reset (QomniVkDecoder *t) { t->n_past = 0; }
int qomni_vk_decoder_hidden_size (const QomniVkDecoder *t) { return t->H; }
uint64_t qomni_vk_decoder_weight_bytes (const QomniVkDecoder *t) { return t->sw->bytes; }
QomniVkBuffer *qomni_vk_decoder_x (QomniVkDecoder *t) { return t->x; }

void
qomni_vk_decoder_truncate (QomniVkDecoder *t, int n_past)
{
  t->n_past = CLAMP (n_past, 0, t->n_past);
}

double
qomni_vk_thinker_decode_bytes (const QomniVkThinker *t)
{
  return qomni_vk_decoder_step_bytes (t) + qomni_dtype_nbytes (t->lm_head[0].dtype,
                                                               (int64_t) t->V * t->H);
}

double
qomni_vk_decoder_step_bytes (const QomniVkDecoder *t)
{
  double sum = 0;
  for (int l = 0; l < t->L; l++) {
    const Layer *ly = &t->layers[l];
    sum += qomni_dtype_nbytes (ly->qkv.dtype, (int64_t) t->QKV * t->H)
           + qomni_dtype_nbytes (ly->o.dtype, (int64_t) t->H * t->qd);
    if (ly->moe)
      sum += qomni_dtype_nbytes (ly->router.dtype, (int64_t) t->R * t->H)
             + t->K * qomni_dtype_nbytes (ly->gate_up.dtype, (int64_t) 3 * t->I * t->H)
             + qomni_dtype_nbytes (ly->gate_up.dtype, (int64_t) 3 * t->Is * t->H);
    else
      sum += qomni_dtype_nbytes (ly->gate_up.dtype, (int64_t) 3 * t->Id * t->H);
  }
  return sum;
}

/* y[n, rows] (+)= x[n, cols] · Wᵀ: matvec for a few rows, tiled matmul for a prompt. A
 * weight larger than one binding may cover is bound as several row ranges. With a gain
 * buffer (matvec only, n ≤ DECODE_ROWS), x is RMS-normalized with gain[g_off ..] first. */
static void
rec_linear_norm (QomniVkDecoder *t, QomniVkCmd *c, const VkW *w, const QomniVkBuffer *x,
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
      QomniVkMatmulArgs a = { .w = b[0], .dtype = w->dtype, .rows = rows, .cols = w->cols,
                              .n = (uint32_t) n, .x = x, .x_off = x_off, .x_stride = x_stride,
                              .y = y, .y_off = y_off + (uint32_t) r0, .y_stride = y_stride,
                              .acc = acc, .scratch = t->mpart };
      qomni_vk_rec_matmul (c, &a);
    }
  }
}

static void
rec_linear (QomniVkDecoder *t, QomniVkCmd *c, const VkW *w, const QomniVkBuffer *x,
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

/* y[n, rows] = silu(x̂·Gᵀ) ⊙ (x̂·Uᵀ) for a dense [gate; up] weight; x̂ = x RMS-normalized
 * with the post-attention gain inside the matvec when `norm`. */
static void
rec_swiglu (QomniVkDecoder *t, QomniVkCmd *c, const VkW *w, const QomniVkBuffer *x,
            const QomniVkBuffer *y, const QomniVkBuffer *gain, int n, gboolean norm)
{
  const int rows = w->rows / 2;
  QomniVkPipe sw = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_SWIGLU_F32, w->dtype);
  const uint32_t nr = qomni_vk_pipe_spec (sw, 1);
  QomniVkMatvecPush p = { .rows = rows, .cols = w->cols, .x_stride = w->cols,
                          .y_stride = rows, .x_div = 1, .flags = norm ? QOMNI_VK_NORM : 0,
                          .g_off = t->H, .eps = (float) t->cfg.rms_norm_eps };
  QomniVkBind b[] = { { w->buf }, { x }, { y }, { t->ids }, { gain } };
  qomni_vk_dispatch (c, sw, b, 5, &p, sizeof p, (rows + nr - 1) / nr, n, 1);
}

/* MoE (§2.6) on n rows of mx (x itself when `dec`: the norm rides inside the router and
 * the experts' gate/up matvec): router → softmax/top-k/renorm → experts by id → weighted
 * sum into x, plus the sigmoid-gated shared expert where there is one (the talker). */
static void
rec_moe (QomniVkDecoder *t, QomniVkCmd *c, const Layer *ly, const QomniVkBuffer *mx, int n,
         gboolean dec)
{
  const int H = t->H, K = t->K, I = t->I;
  const float eps = (float) t->cfg.rms_norm_eps;
  if (dec)
    rec_linear_norm (t, c, &ly->router, t->x, 0, H, t->rlog, 0, t->R, n, FALSE, ly->vec, H,
                     eps);
  else
    rec_linear (t, c, &ly->router, t->xn, 0, H, t->rlog, 0, t->R, n, FALSE);
  /* with a shared expert, the router's last row is its gate: sigmoid(gate) goes to
   * tw[n·K + r] */
  QomniVkTopkPush tp = { .n = n, .E = t->E, .K = K, .renorm = t->cfg.norm_topk_prob,
                         .l_stride = t->R, .shared_gate = t->Is > 0, .sg_off = n * K };
  QomniVkBind bt[] = { { t->rlog }, { t->ids }, { t->tw } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_TOPK, bt, 3, &tp, sizeof tp, n, 1, 1);
  /* the shared expert's gate/up reads x before any down projection adds to it */
  if (t->Is > 0)
    rec_swiglu (t, c, &ly->sh_gate_up, mx, t->gs, ly->vec, n, dec);
  if (dec) {
    /* per (token, chosen expert) pair: the norm rides in gate/up, and the combine
     * x += Σ_j w_j · down_j(g_j) on the down projection */
    QomniVkPipe sw = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_SWIGLU_F32, ly->gate_up.dtype);
    const uint32_t nr = qomni_vk_pipe_spec (sw, 1);
    QomniVkMatvecPush gp = { .rows = I, .cols = H, .x_stride = H, .y_stride = I,
                             .expert_stride = 2 * I * H, .x_div = K,
                             .flags = QOMNI_VK_USE_IDS | QOMNI_VK_NORM, .g_off = H,
                             .eps = eps };
    QomniVkBind bg[] = { { ly->gate_up.buf }, { mx }, { t->g }, { t->ids }, { ly->vec } };
    qomni_vk_dispatch (c, sw, bg, 5, &gp, sizeof gp, (I + nr - 1) / nr, n * K, 1);
    QomniVkPipe dn = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, ly->down.dtype);
    QomniVkMatvecPush dp = { .rows = H, .cols = I, .x_stride = I, .y_stride = H,
                             .expert_stride = H * I, .x_div = 1,
                             .flags = QOMNI_VK_USE_IDS | QOMNI_VK_KSUM | QOMNI_VK_ACCUMULATE,
                             .nslot = K };
    QomniVkBind bd[] = { { ly->down.buf }, { t->g }, { t->x }, { t->ids }, { t->tw } };
    qomni_vk_dispatch (c, dn, bd, 5, &dp, sizeof dp, (H + nr - 1) / nr, n, 1);
  } else {
    /* a prompt: the pairs grouped by expert, each expert a tiled product over its tokens
     * (moe-vk.h); the expert weights in tw[t·K + j], a shared gate after them untouched */
    QomniVkMoe m = { .gate_up = ly->gate_up.buf, .gate_up_dtype = ly->gate_up.dtype,
                     .down = ly->down.buf, .down_dtype = ly->down.dtype, .xn = t->xn,
                     .x = t->x, .ids = t->ids, .tw = t->tw, .route = t->route, .g = t->g,
                     .y = t->y, .n = n, .H = H, .I = I, .E = t->E, .K = K,
                     .coopmat = t->coopmat };
    qomni_vk_moe_prefill (c, &m);
  }
  if (t->Is > 0) {
    /* x += sigmoid(x̂·w_sg) · down_s(silu(gate_s(x̂)) ⊙ up_s(x̂)): the gate is the slot
     * weight of a one-slot KSUM */
    QomniVkMatvecPush sp = { .rows = H, .cols = t->Is, .x_stride = t->Is, .y_stride = H,
                             .x_div = 1, .flags = QOMNI_VK_KSUM | QOMNI_VK_ACCUMULATE,
                             .g_off = n * K, .nslot = 1 };
    QomniVkPipe sd = qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATVEC_F32, ly->sh_down.dtype);
    QomniVkBind bs[] = { { ly->sh_down.buf }, { t->gs }, { t->x }, { t->ids }, { t->tw } };
    const uint32_t snr = qomni_vk_pipe_spec (sd, 1);
    qomni_vk_dispatch (c, sd, bs, 5, &sp, sizeof sp, (H + snr - 1) / snr, n, 1);
  }
}

/* Records the whole stack for n rows already in t->x at positions n_past …, then the final
 * norm; cos/sin of the rows at cs_off and cs_off + sin_off of cs. adds [n_add, n, H]
 * (DeepStack) goes onto x after layer l < n_add, once the layer's output was copied out.
 * dyn (a decode step to replay, cs == dstep): the position is read from cs[DSTEP_POS] when
 * the command runs, attention is always split, over the grid the whole cache would need,
 * and n_past is left alone. */
static void
rec_stack (QomniVkDecoder *t, QomniVkCmd *c, int n, QomniVkBuffer *layers_host,
           const QomniVkBuffer *adds, int n_add, const QomniVkBuffer *cs, uint32_t cs_off,
           uint32_t sin_off, gboolean flush, gboolean dyn)
{
  const int H = t->H, hd = t->hd, p0 = dyn ? 0 : t->n_past;
  const float eps = (float) t->cfg.rms_norm_eps;
  const gboolean dec = n <= DECODE_ROWS;
  g_assert (!dyn || (dec && !flush));
  for (int l = 0; l < t->L; l++) {
    Layer *ly = &t->layers[l];
    if (dec) {
      /* input norm inside the q/k/v matvec; rope q/k and the V copy in one dispatch */
      rec_linear_norm (t, c, &ly->qkv, t->x, 0, H, t->qkv, 0, t->QKV, n, FALSE, ly->vec, 0,
                       eps);
      QomniVkRopeQkvPush rp = { .n = n, .nh = t->nh, .nkv = t->nkv, .hd = hd,
                                .x_stride = t->QKV, .kv_off = p0 * t->kvd, .kv_stride = t->kvd,
                                .cs_off = cs_off, .sin_off = sin_off,
                                .qnorm_off = 2 * H, .knorm_off = 2 * H + hd,
                                .flags = (ly->qk_norm ? QOMNI_VK_ROPE_QK_NORM : 0)
                                         | (dyn ? QOMNI_VK_ROPE_POS_DYN : 0),
                                .eps = eps, .pos_off = DSTEP_POS };
      QomniVkBind br[] = { { t->qkv }, { ly->k_cache }, { ly->v_cache }, { cs },
                           { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE_QKV, br, 5, &rp, sizeof rp,
                         t->nh + 2 * t->nkv, n, 1);
    } else {
      rec_rmsnorm (c, t->x, t->xn, ly->vec, 0, n, H, eps);
      rec_linear (t, c, &ly->qkv, t->xn, 0, H, t->qkv, 0, t->QKV, n, FALSE);
      /* q: head norm + RoPE in place; k: the same, written into the cache at p0 */
      QomniVkRopePush rq = { .n = n, .heads = t->nh, .hd = hd, .x_stride = t->QKV,
                             .y_stride = t->QKV, .cs_off = cs_off, .sin_off = sin_off,
                             .norm_off = 2 * H, .flags = ly->qk_norm, .eps = eps };
      QomniVkBind bq[] = { { t->qkv }, { t->qkv }, { cs }, { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, bq, 4, &rq, sizeof rq, t->nh, n, 1);
      QomniVkRopePush rk = rq;
      rk.heads = t->nkv;
      rk.x_off = t->qd;
      rk.y_off = p0 * t->kvd;
      rk.y_stride = t->kvd;
      rk.norm_off = 2 * H + hd;
      QomniVkBind bk[] = { { t->qkv }, { ly->k_cache }, { cs }, { ly->vec } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, bk, 4, &rk, sizeof rk, t->nkv, n, 1);
      qomni_vk_cmd_copy_rows (c, t->qkv, 4 * (uint64_t) (t->qd + t->kvd),
                              4 * (uint64_t) t->QKV, ly->v_cache, 4 * (uint64_t) p0 * t->kvd,
                              4 * (uint64_t) t->kvd, 4 * (uint64_t) t->kvd, n);
    }
    QomniVkAttnPush ap = { .n = n, .m = p0 + n, .nh = t->nh, .nkv = t->nkv, .hd = hd,
                           .q_stride = t->QKV, .kv_stride = t->kvd, .o_stride = t->qd,
                           .q_pos0 = p0, .causal = 1, .window = t->cfg.sliding_window,
                           .scale = 1.0f / sqrtf ((float) hd) };
    uint32_t span = 0;
    const uint32_t n_chunks = dyn ? qomni_vk_attn_split_max ((uint32_t) t->max_ctx)
                                  : qomni_vk_attn_split (ap.m, &span);
    if (dec && (n_chunks > 1 || dyn)) {
      /* flash-decoding: chunks of the cache in parallel, then one merge per head. A cache
       * that fits one chunk (the code predictor's 16 positions) needs no merge: the
       * single-pass kernel below does the same work in one dispatch. Replayed: the chunks
       * past the live ones stay empty. */
      ap.n_chunks = n_chunks;
      ap.span = span;
      ap.o_stride = 0;
      ap.dyn = dyn;
      ap.dyn_off = DSTEP_POS;
      QomniVkBind ba[] = { { t->qkv }, { ly->k_cache }, { ly->v_cache }, { t->apart },
                           { dyn ? cs : t->qkv } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_SPLIT, ba, 5, &ap, sizeof ap, t->nh, n,
                         ap.n_chunks);
      QomniVkAttnCombinePush cp = { .n = n, .nh = t->nh, .hd = hd, .n_chunks = ap.n_chunks,
                                    .o_stride = t->qd };
      QomniVkBind bc[] = { { t->apart }, { t->att } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ATTN_COMBINE, bc, 2, &cp, sizeof cp, t->nh, n, 1);
    } else {
      qomni_vk_rec_attention (c, &ap, t->qkv, ly->k_cache, ly->v_cache, t->att);
    }
    /* x += o_proj(att): the residual add rides on the product */
    rec_linear (t, c, &ly->o, t->att, 0, t->qd, t->x, 0, H, n, TRUE);

    /* The MLP. Decode: the post-attention norm rides inside the first matvec of each
     * branch (each normalizes x itself), so xn is never written. */
    const QomniVkBuffer *mx = dec ? t->x : t->xn;
    if (!dec)
      rec_rmsnorm (c, t->x, t->xn, ly->vec, H, n, H, eps);
    if (!ly->moe) {
      /* dense SwiGLU (the code predictor): x += down(silu(gate(x̂)) ⊙ up(x̂)) */
      rec_swiglu (t, c, &ly->gate_up, mx, t->g, ly->vec, n, dec);
      rec_linear (t, c, &ly->down, t->g, 0, t->Id, t->x, 0, H, n, TRUE);
    } else {
      rec_moe (t, c, ly, mx, n, dec);
    }
    /* hand the first layers to the GPU while the rest are recorded */
    if (flush && dec && (l == 1 || l == 5 || l == 13 || l == 29))
      qomni_vk_cmd_flush (c);
    if (layers_host)
      qomni_vk_cmd_copy (c, t->x, 0, layers_host, 4 * (uint64_t) l * n * H,
                         4 * (uint64_t) n * H);
    if (l < n_add) {
      /* DeepStack: x += adds[l] */
      QomniVkEltPush dp = { .n = (uint32_t) n * H, .x_off = (uint32_t) l * n * H };
      QomniVkBind bb[] = { { adds }, { t->x } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ADD, bb, 2, &dp, sizeof dp,
                         MIN (((uint32_t) n * H + 255) / 256, 4096), 1, 1);
    }
  }
  rec_rmsnorm (c, t->x, t->x, t->final_norm, 0, n, H, eps);
  if (!dyn)
    t->n_past += n;
}

void
qomni_vk_decoder_rope_table (const QomniVkDecoder *t, const int *pos, int pos_stride, int n,
                             float *cs)
{
  const int half = t->hd / 2;
  for (int r = 0; r < n; r++)
    for (int i = 0; i < half; i++) {
      const float p = (float) pos[t->slot_axis[i] * pos_stride + r];
      const float ang = p * t->inv_freq[i];
      cs[r * half + i] = cosf (ang);
      cs[n * half + r * half + i] = sinf (ang);
    }
}

int qomni_vk_decoder_rope_half (const QomniVkDecoder *t) { return t->hd / 2; }
int qomni_vk_decoder_vocab (const QomniVkDecoder *t) { return t->V; }

static void
write_rope_tables (QomniVkDecoder *t, const int *pos, int pos_stride, int n)
{
  qomni_vk_decoder_rope_table (t, pos, pos_stride, n, (float *) t->step->map + t->step_cs);
}

static gboolean
check_room (const QomniVkDecoder *t, int n, GError **error)
{
  if (t->n_past + n > t->max_ctx || n > t->max_batch) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the context is full: %d cached + %d new positions exceed %d", t->n_past, n,
                 t->max_ctx);
    return FALSE;
  }
  return TRUE;
}

gboolean
qomni_vk_decoder_record (QomniVkDecoder *t, QomniVkCmd *c, int n, const QomniVkBuffer *cs,
                         uint32_t cs_off, uint32_t sin_off, GError **error)
{
  if (!check_room (t, n, error))
    return FALSE;
  rec_stack (t, c, n, NULL, NULL, 0, cs, cs_off, sin_off, FALSE, FALSE);
  return TRUE;
}

void
qomni_vk_decoder_record_head (QomniVkDecoder *t, QomniVkCmd *c, int table, int row,
                              const QomniVkBuffer *dst, uint32_t dst_off)
{
  g_assert (table >= 0 && table < t->n_tables && t->lm_head[table].buf);
  rec_linear (t, c, &t->lm_head[table], t->x, (uint32_t) row * t->H, t->H, dst, dst_off, t->V,
              1, FALSE);
}

void
qomni_vk_decoder_record_embed (QomniVkDecoder *t, QomniVkCmd *c, int table,
                               const QomniVkBuffer *ids, uint32_t ids_off, int n,
                               const QomniVkBuffer *dst, uint32_t dst_off)
{
  g_assert (table >= 0 && table < t->n_tables && t->embed[table].buf);
  const VkW *e = &t->embed[table];
  QomniVkEmbedPush ep = { .cols = t->H, .n = n, .ids_off = ids_off, .y_off = dst_off };
  QomniVkBind be[] = { { e->buf }, { ids }, { dst } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_EMBED_F32, e->dtype), be, 3, &ep,
                     sizeof ep, 1, n, 1);
}

/* The head of row n − 1, its argmax into out[0] and, when asked, its logits into
 * out[16 bytes …]. */
static void
rec_results (QomniVkDecoder *t, QomniVkCmd *c, int n, gboolean logits, gboolean next)
{
  if (!t->lm_head[0].buf || !(logits || next))
    return;
  qomni_vk_decoder_record_head (t, c, 0, n - 1, t->logits_dev, 0);
  QomniVkArgmaxPush am = { .n = t->V, .out_off = 0 };
  QomniVkBind bm[] = { { t->logits_dev }, { t->out } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ARGMAX, bm, 2, &am, sizeof am, 1, 1, 1);
  if (logits)
    qomni_vk_cmd_copy (c, t->logits_dev, 0, t->out, 16, 4 * (uint64_t) t->V);
}

/* adds: [n_add] layers of rows with a stride of add_stride floats per layer (the whole
 * prompt's additions; this slice's rows start at adds). */
static gboolean
run (QomniVkDecoder *t, int n, gboolean from_ids, const float *adds, int n_add,
     size_t add_stride, float *layers, float *hidden, float *logits, int *next, GError **error)
{
  if (!check_room (t, n, error))
    return FALSE;
  QomniVkBuffer *lh = NULL;
  if (layers) {
    lh = qomni_vk_buffer_new (t->vk, 4 * (uint64_t) t->L * n * t->H, QOMNI_VK_MEM_HOST,
                              "layer outputs", error);
    if (!lh)
      return FALSE;
  }
  QomniVkBuffer *ah = NULL;
  if (n_add > 0) {
    ah = qomni_vk_buffer_new (t->vk, 4 * (uint64_t) n_add * n * t->H, QOMNI_VK_MEM_HOST,
                              "DeepStack additions", error);
    if (!ah) {
      qomni_vk_buffer_free (t->vk, lh);
      return FALSE;
    }
    for (int l = 0; l < n_add; l++)
      memcpy ((float *) ah->map + (size_t) l * n * t->H, adds + l * add_stride,
              sizeof (float) * (size_t) n * t->H);
  }
  QomniVkCmd *c = qomni_vk_cmd_begin (t->vk, error);
  if (!c) {
    qomni_vk_buffer_free (t->vk, lh);
    qomni_vk_buffer_free (t->vk, ah);
    return FALSE;
  }
  if (from_ids)
    qomni_vk_decoder_record_embed (t, c, 0, t->step, t->step_ids, n, t->x, 0);
  else
    qomni_vk_cmd_copy (c, t->step, 4 * t->step_x, t->x, 0, 4 * (uint64_t) n * t->H);
  const int p0 = t->n_past;
  rec_stack (t, c, n, lh, ah, n_add, t->step, t->step_cs, n * (t->hd / 2), TRUE, FALSE);
  const gboolean head = t->lm_head[0].buf != NULL;
  rec_results (t, c, n, logits != NULL, next != NULL);
  gboolean ok = qomni_vk_cmd_submit (c, error);
  if (ok) {
    if (next && head)
      *next = (int) ((guint32 *) t->out->map)[0];
    if (logits && head)
      memcpy (logits, (char *) t->out->map + 16, sizeof (float) * t->V);
    if (layers)
      memcpy (layers, lh->map, 4 * (size_t) t->L * n * t->H);
    if (hidden)
      ok = qomni_vk_download (t->vk, t->x, 0, hidden, 4 * (size_t) n * t->H, error);
  }
  if (!ok)
    t->n_past = p0;
  qomni_vk_buffer_free (t->vk, lh);
  qomni_vk_buffer_free (t->vk, ah);
  return ok;
}

gboolean
qomni_vk_decoder_forward (QomniVkDecoder *t, const float *x, int n, const int *pos,
                          float *layers, float *hidden, float *logits, int *next, GError **error)
{
  return qomni_vk_decoder_forward_add (t, x, n, pos, NULL, 0, layers, hidden, logits, next,
                                       error);
}

gboolean
qomni_vk_decoder_forward_add (QomniVkDecoder *t, const float *x, int n, const int *pos,
                              const float *adds, int n_add, float *layers, float *hidden,
                              float *logits, int *next, GError **error)
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
    ok = run (t, len, FALSE, adds ? adds + (size_t) s * t->H : NULL, adds ? n_add : 0,
              (size_t) n * t->H, lay, hidden && n <= t->max_batch ? hidden : NULL,
              last ? logits : NULL, last ? next : NULL, error);
  }
  return ok;
}

static gboolean decode_replay (QomniVkDecoder *t, int id, const int *p3, float *logits,
                               int *next, GError **error);

gboolean
qomni_vk_thinker_decode (QomniVkDecoder *t, int id, int pos, float *logits, int *next,
                         GError **error)
{
  if (id < 0 || id >= t->V) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "token id %d is outside the vocabulary (%d)", id, t->V);
    return FALSE;
  }
  const int p3[3] = { pos, pos, pos };
  if (t->replay < 0)
    t->replay = g_strcmp0 (g_getenv ("QOMNI_VK_REPLAY"), "0") != 0;
  /* replayed once the cache is past one attention chunk: shorter ones take the single-pass
   * kernel, which the recorded split would not match bit for bit */
  uint32_t span;
  if (t->replay && qomni_vk_attn_split ((uint32_t) t->n_past + 1, &span) > 1)
    return decode_replay (t, id, p3, logits, next, error);
  write_rope_tables (t, p3, 1, 1);
  ((guint32 *) t->step->map)[t->step_ids] = (guint32) id;
  return run (t, 1, TRUE, NULL, 0, 0, NULL, NULL, logits, next, error);
}

void
qomni_vk_decoder_set_replay (QomniVkDecoder *t, gboolean on)
{
  t->replay = on;
}

int qomni_vk_decoder_replayed (const QomniVkDecoder *t) { return t->n_replayed; }

static void
replay_clear (QomniVkDecoder *t)
{
  for (guint i = 0; i < G_N_ELEMENTS (t->replay_cmd); i++)
    g_clear_pointer (&t->replay_cmd[i], qomni_vk_cmd_abandon);
}

/* One token through the recorded step: embed dstep's id → the stack at dstep's position →
 * final norm → head → argmax (→ logits), recorded on first use per kind of result (again
 * when profiling is switched), then per token only dstep is written and the command
 * submitted again. Nothing in it depends on n_past, so a reset or truncate keeps it. */
static gboolean
decode_replay (QomniVkDecoder *t, int id, const int *p3, float *logits, int *next,
               GError **error)
{
  if (!check_room (t, 1, error))
    return FALSE;
  const int half = t->hd / 2;
  if (!t->dstep) {
    t->dstep = qomni_vk_buffer_new (t->vk, 4 * (DSTEP_CS + 2 * (uint64_t) half),
                                    QOMNI_VK_MEM_HOST, "replayed step inputs", error);
    if (!t->dstep)
      return FALSE;
  }
  const gboolean prof = qomni_vk_profile_enabled (t->vk);
  if (prof != t->replay_profiled)
    replay_clear (t);
  t->replay_profiled = prof;
  const gboolean head = t->lm_head[0].buf != NULL;
  QomniVkCmd **slot = &t->replay_cmd[(logits != NULL) * 2 + (next != NULL)];
  if (!*slot) {
    QomniVkCmd *c = qomni_vk_cmd_begin_reusable (t->vk, error);
    if (!c)
      return FALSE;
    qomni_vk_decoder_record_embed (t, c, 0, t->dstep, DSTEP_ID, 1, t->x, 0);
    rec_stack (t, c, 1, NULL, NULL, 0, t->dstep, DSTEP_CS, half, FALSE, TRUE);
    rec_results (t, c, 1, logits != NULL, next != NULL);
    *slot = c;
  }
  guint32 *d = t->dstep->map;
  d[DSTEP_POS] = (guint32) t->n_past;
  d[DSTEP_ID] = (guint32) id;
  qomni_vk_decoder_rope_table (t, p3, 1, 1, (float *) d + DSTEP_CS);
  if (!qomni_vk_cmd_submit (*slot, error)) {
    g_clear_pointer (slot, qomni_vk_cmd_abandon);
    return FALSE;
  }
  t->n_past++;
  t->n_replayed++;
  if (next && head)
    *next = (int) ((guint32 *) t->out->map)[0];
  if (logits && head)
    memcpy (logits, (char *) t->out->map + 16, sizeof (float) * t->V);
  return TRUE;
}
