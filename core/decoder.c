/* qomni — shared decoder stack on the CPU. */
#include "decoder.h"
#include "weights-load.h"
#include "error.h"
#include "ops-cpu.h"
#include "quant.h"

#include <math.h>
#include <string.h>

typedef struct {
  /* attention: q [nh·hd, H], k/v [nkv·hd, H], o [H, nh·hd] */
  const QomniTensor *wq, *wk, *wv, *wo;
  float *q_norm, *k_norm;          /* [hd] or NULL */
  float *in_norm, *post_norm;      /* [H] */
  float *ls_attn, *ls_mlp;         /* [H] layer scales or NULL */
  /* MoE: router [E, H]; experts gate/up [I, H], down [H, I] */
  const QomniTensor *router;
  const QomniTensor **gate, **up, **down;
  /* shared expert (talker): gate/up [Is, H], down [H, Is], sigmoid gate [1, H] */
  const QomniTensor *sh_gate, *sh_up, *sh_down, *sh_gate_w;
  /* dense SwiGLU (code predictor, Code2Wav, mlp_only_layers) */
  const QomniTensor *d_gate, *d_up, *d_down;
  float *k_cache, *v_cache;        /* [max_ctx, nkv·hd] */
} Layer;

struct _QomniDecoder {
  QomniTextConfig cfg;
  int H, nh, nkv, hd, q_dim, kv_dim;
  int max_ctx, max_batch, n_past;
  Layer *layers;
  float *final_norm;
  float *inv_freq;                 /* [hd/2] */
  guint8 *slot_axis;               /* [hd/2]: which position axis drives each frequency */
  /* scratch, [max_batch, ...] */
  float *xn, *q, *k, *v, *att, *tmp, *cos_t, *sin_t;
  float *router_p, *topw, *moe_out, *xg, *g, *u, *yg;
  int *topi, *rows;
  int max_inter;
  guint8 *xq, *actq;               /* Q8_0 copies: one [H] row, k expert rows of [I] */
};

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

static float *
get_vec (const QomniWeights *w, GError **error, int64_t len, gboolean optional,
         const char *prefix, int layer, const char *name)
{
  g_autofree char *full = g_strdup_printf ("%s.layers.%d.%s", prefix, layer, name);
  if (optional && !qomni_weights_find (w, full))
    return NULL;
  return qomni_weights_get_f32 (w, error, len, "%s", full);
}

QomniDecoder *
qomni_decoder_new (const QomniWeights *w, const QomniTextConfig *cfg, const char *prefix,
                   int max_ctx, int max_batch, GError **error)
{
  QomniDecoder *d = g_new0 (QomniDecoder, 1);
  d->cfg = *cfg;
  d->cfg.mlp_only_layers = g_memdup2 (cfg->mlp_only_layers,
                                      sizeof (int) * (gsize) MAX (cfg->n_mlp_only_layers, 1));
  d->H = cfg->hidden_size;
  d->nh = cfg->num_attention_heads;
  d->nkv = cfg->num_key_value_heads;
  d->hd = cfg->head_dim;
  d->q_dim = d->nh * d->hd;
  d->kv_dim = d->nkv * d->hd;
  d->max_ctx = max_ctx;
  d->max_batch = max_batch;
  const int H = d->H, L = cfg->num_hidden_layers, E = cfg->num_experts;
  const int I = cfg->moe_intermediate_size, Is = cfg->shared_expert_intermediate_size;
  const int Id = cfg->intermediate_size;
  d->layers = g_new0 (Layer, MAX (L, 1));

  for (int l = 0; l < L; l++) {
    Layer *ly = &d->layers[l];
    QOMNI_LOAD_MAT (ly->wq, d->q_dim, H, "%s.layers.%d.self_attn.q_proj.weight", prefix, l);
    QOMNI_LOAD_MAT (ly->wk, d->kv_dim, H, "%s.layers.%d.self_attn.k_proj.weight", prefix, l);
    QOMNI_LOAD_MAT (ly->wv, d->kv_dim, H, "%s.layers.%d.self_attn.v_proj.weight", prefix, l);
    QOMNI_LOAD_MAT (ly->wo, H, d->q_dim, "%s.layers.%d.self_attn.o_proj.weight", prefix, l);
    GError *e = NULL;
    ly->q_norm = get_vec (w, &e, d->hd, TRUE, prefix, l, "self_attn.q_norm.weight");
    if (!e)
      ly->k_norm = get_vec (w, &e, d->hd, TRUE, prefix, l, "self_attn.k_norm.weight");
    if (!e)
      ly->in_norm = get_vec (w, &e, H, FALSE, prefix, l, "input_layernorm.weight");
    if (!e)
      ly->post_norm = get_vec (w, &e, H, FALSE, prefix, l, "post_attention_layernorm.weight");
    if (!e)
      ly->ls_attn = get_vec (w, &e, H, TRUE, prefix, l, "self_attn_layer_scale.scale");
    if (!e)
      ly->ls_mlp = get_vec (w, &e, H, TRUE, prefix, l, "mlp_layer_scale.scale");
    if (e) {
      g_propagate_error (error, e);
      goto fail;
    }
    if (layer_is_moe (cfg, l)) {
      QOMNI_LOAD_MAT (ly->router, E, H, "%s.layers.%d.mlp.gate.weight", prefix, l);
      ly->gate = g_new0 (const QomniTensor *, E);
      ly->up = g_new0 (const QomniTensor *, E);
      ly->down = g_new0 (const QomniTensor *, E);
      for (int x = 0; x < E; x++) {
        QOMNI_LOAD_MAT (ly->gate[x], I, H, "%s.layers.%d.mlp.experts.%d.gate_proj.weight", prefix, l, x);
        QOMNI_LOAD_MAT (ly->up[x], I, H, "%s.layers.%d.mlp.experts.%d.up_proj.weight", prefix, l, x);
        QOMNI_LOAD_MAT (ly->down[x], H, I, "%s.layers.%d.mlp.experts.%d.down_proj.weight", prefix, l, x);
      }
      if (Is > 0) {
        QOMNI_LOAD_MAT (ly->sh_gate, Is, H, "%s.layers.%d.mlp.shared_expert.gate_proj.weight", prefix, l);
        QOMNI_LOAD_MAT (ly->sh_up, Is, H, "%s.layers.%d.mlp.shared_expert.up_proj.weight", prefix, l);
        QOMNI_LOAD_MAT (ly->sh_down, H, Is, "%s.layers.%d.mlp.shared_expert.down_proj.weight", prefix, l);
        QOMNI_LOAD_MAT (ly->sh_gate_w, 1, H, "%s.layers.%d.mlp.shared_expert_gate.weight", prefix, l);
      }
    } else {
      QOMNI_LOAD_MAT (ly->d_gate, Id, H, "%s.layers.%d.mlp.gate_proj.weight", prefix, l);
      QOMNI_LOAD_MAT (ly->d_up, Id, H, "%s.layers.%d.mlp.up_proj.weight", prefix, l);
      QOMNI_LOAD_MAT (ly->d_down, H, Id, "%s.layers.%d.mlp.down_proj.weight", prefix, l);
    }
    ly->k_cache = g_try_new (float, (gsize) max_ctx * d->kv_dim);
    ly->v_cache = g_try_new (float, (gsize) max_ctx * d->kv_dim);
    if (!ly->k_cache || !ly->v_cache) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                   "%s: cannot allocate a KV cache of %d positions", prefix, max_ctx);
      goto fail;
    }
  }
  {
    const QomniTensor *t = qomni_weights_get (w, error, 1, (int64_t[]) { H }, "%s.norm.weight",
                                              prefix);
    if (!t)
      goto fail;
    d->final_norm = qomni_tensor_to_f32_alloc (t);
  }

  /* RoPE: inv_freq[i] = θ^(−2i/hd), in float32 as the reference computes it. With an
   * interleaved mrope_section [t, h, w], slot i uses axis h when i%3 == 1 and i < 3h,
   * axis w when i%3 == 2 and i < 3w, else axis t (§2.4). */
  const int half = d->hd / 2;
  d->inv_freq = g_new (float, half);
  d->slot_axis = g_new0 (guint8, half);
  for (int i = 0; i < half; i++) {
    d->inv_freq[i] = 1.0f / powf ((float) cfg->rope_theta, (float) (2 * i) / (float) d->hd);
    if (cfg->mrope_interleaved) {
      if (i % 3 == 1 && i < 3 * cfg->mrope_section[1])
        d->slot_axis[i] = 1;
      else if (i % 3 == 2 && i < 3 * cfg->mrope_section[2])
        d->slot_axis[i] = 2;
    } else if (cfg->mrope_section[0]) {
      /* contiguous sections (Qwen2-VL style) */
      if (i >= cfg->mrope_section[0] + cfg->mrope_section[1])
        d->slot_axis[i] = 2;
      else if (i >= cfg->mrope_section[0])
        d->slot_axis[i] = 1;
    }
  }

  d->max_inter = MAX (MAX (I, Is), Id);
  const gsize B = (gsize) max_batch;
  d->xn = g_new (float, B * H);
  d->q = g_new (float, B * d->q_dim);
  d->k = g_new (float, B * d->kv_dim);
  d->v = g_new (float, B * d->kv_dim);
  d->att = g_new (float, B * d->q_dim);
  d->tmp = g_new (float, B * H);
  d->cos_t = g_new (float, B * half);
  d->sin_t = g_new (float, B * half);
  d->router_p = g_new (float, B * MAX (E, 1));
  d->topw = g_new (float, B * MAX (cfg->num_experts_per_tok, 1));
  d->topi = g_new (int, B * MAX (cfg->num_experts_per_tok, 1));
  d->rows = g_new (int, B);
  d->moe_out = g_new (float, B * H);
  d->xg = g_new (float, B * H);
  d->yg = g_new (float, B * H);
  d->g = g_new (float, B * MAX (d->max_inter, 1));
  d->u = g_new (float, B * MAX (d->max_inter, 1));
  d->xq = g_new (guint8, qomni_cpu_act_q8_bytes (H) + 64);
  d->actq = g_new (guint8, qomni_cpu_act_q8_bytes (I) * (gsize) MAX (cfg->num_experts_per_tok, 1) + 64);
  return d;

fail:
  qomni_decoder_free (d);
  return NULL;
}

void
qomni_decoder_free (QomniDecoder *d)
{
  if (!d)
    return;
  for (int l = 0; l < d->cfg.num_hidden_layers; l++) {
    Layer *ly = &d->layers[l];
    g_free (ly->q_norm);
    g_free (ly->k_norm);
    g_free (ly->in_norm);
    g_free (ly->post_norm);
    g_free (ly->ls_attn);
    g_free (ly->ls_mlp);
    g_free (ly->gate);
    g_free (ly->up);
    g_free (ly->down);
    g_free (ly->k_cache);
    g_free (ly->v_cache);
  }
  g_free (d->layers);
  g_free (d->cfg.mlp_only_layers);
  g_free (d->final_norm);
  g_free (d->inv_freq);
  g_free (d->slot_axis);
  float *bufs[] = { d->xn, d->q, d->k, d->v, d->att, d->tmp, d->cos_t, d->sin_t, d->router_p,
                    d->topw, d->moe_out, d->xg, d->yg, d->g, d->u };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++)
    g_free (bufs[i]);
  g_free (d->topi);
  g_free (d->rows);
  g_free (d->xq);
  g_free (d->actq);
  g_free (d);
}

const QomniTextConfig *
qomni_decoder_config (const QomniDecoder *d)
{
  return &d->cfg;
}

int
qomni_decoder_n_past (const QomniDecoder *d)
{
  return d->n_past;
}

int
qomni_decoder_max_ctx (const QomniDecoder *d)
{
  return d->max_ctx;
}

void
qomni_decoder_truncate (QomniDecoder *d, int n_past)
{
  d->n_past = CLAMP (n_past, 0, d->n_past);
}

/* SwiGLU: y[n, H] = down(silu(gate(x)) ⊙ up(x)) */
static void
swiglu (QomniDecoder *d, float *y, const float *x, int n, const QomniTensor *gate,
        const QomniTensor *up, const QomniTensor *down)
{
  const int I = (int) gate->shape[0];
  qomni_cpu_linear (d->g, x, n, gate, NULL);
  qomni_cpu_linear (d->u, x, n, up, NULL);
  qomni_cpu_silu_mul (d->g, d->u, (int64_t) n * I);
  qomni_cpu_linear (y, d->g, n, down, NULL);
}

/* Several rows: rows routed to the same expert run as one batch, so each expert's
 * weights are read once per slice. */
static void
moe_grouped (QomniDecoder *d, const Layer *ly, float *out, const float *x, int n)
{
  const int H = d->H, E = d->cfg.num_experts, K = d->cfg.num_experts_per_tok;
  memset (out, 0, sizeof (float) * (gsize) n * H);
  for (int e = 0; e < E; e++) {
    int cnt = 0;
    for (int r = 0; r < n; r++)
      for (int j = 0; j < K; j++)
        if (d->topi[r * K + j] == e)
          d->rows[cnt++] = r * K + j;
    if (!cnt)
      continue;
    for (int i = 0; i < cnt; i++)
      memcpy (d->xg + (int64_t) i * H, x + (int64_t) (d->rows[i] / K) * H, sizeof (float) * H);
    swiglu (d, d->yg, d->xg, cnt, ly->gate[e], ly->up[e], ly->down[e]);
    for (int i = 0; i < cnt; i++) {
      const float wgt = d->topw[d->rows[i]];
      float *o = out + (int64_t) (d->rows[i] / K) * H;
      const float *y = d->yg + (int64_t) i * H;
      for (int h = 0; h < H; h++)
        o[h] += wgt * y[h];
    }
  }
}

/* dot of weight row i with x: int8 by int8 against xq (x quantized) for block formats,
 * else against the f32 x. */
static inline float
expert_dot (const QomniTensor *w, int64_t i, int64_t k, const float *x, const void *xq)
{
  const guint8 *row = (const guint8 *) w->data + (size_t) i * qomni_dtype_nbytes (w->dtype, k);
  return qomni_cpu_dtype_is_block (w->dtype) ? qomni_cpu_dot_row_q8 (w->dtype, row, xq, k)
                                             : qomni_cpu_dot_row (w->dtype, row, x, k);
}

/* One row (decode): one parallel region for the whole expert block. Each expert's gate and
 * up rows (fused: one pass computes silu(g)·u) are split over all threads, with no barrier
 * between experts, then the k down products are summed per output row. Every matrix is
 * split the way qomni_cpu_linear splits it, so a thread reads the rows it reads there. */
static void
moe_one_token (QomniDecoder *d, const Layer *ly, float *out, const float *x)
{
  const int H = d->H, K = d->cfg.num_experts_per_tok, I = d->cfg.moe_intermediate_size;
  const int *ti = d->topi;
  const float *tw = d->topw;
  float *act = d->g;   /* [K, I] */
  guint8 *xq = d->xq, *actq = d->actq;
  const gsize act_row = qomni_cpu_act_q8_bytes (I);
  /* Quantized copies whenever the widths allow (a block-format matrix implies they do);
   * experts of other dtypes read the f32 vectors. */
  const gboolean q8_act = I % QOMNI_QK8_0 == 0;
  if (H % QOMNI_QK8_0 == 0)
    qomni_cpu_quantize_act (x, 1, H, xq);
#pragma omp parallel
  {
    for (int k = 0; k < K; k++) {
      const QomniTensor *g = ly->gate[ti[k]], *u = ly->up[ti[k]];
#pragma omp for schedule(static) nowait
      for (int i = 0; i < I; i++) {
        const float gv = expert_dot (g, i, H, x, xq), uv = expert_dot (u, i, H, x, xq);
        act[k * I + i] = gv / (1.0f + expf (-gv)) * uv;
      }
    }
#pragma omp barrier
    if (q8_act) {
#pragma omp for schedule(static)
      for (int k = 0; k < K; k++)
        qomni_cpu_quantize_act (act + (size_t) k * I, 1, I, actq + k * act_row);
    }
#pragma omp for schedule(static)
    for (int h = 0; h < H; h++) {
      float acc = 0.0f;
      for (int k = 0; k < K; k++)
        acc += tw[k] * expert_dot (ly->down[ti[k]], h, I, act + (size_t) k * I,
                                   actq + k * act_row);
      out[h] = acc;
    }
  }
}

/* MoE (§2.6): softmax over all experts in f32, top-k, renormalize, then the experts. */
static void
moe (QomniDecoder *d, const Layer *ly, float *out, const float *x, int n)
{
  const QomniTextConfig *c = &d->cfg;
  const int H = d->H, E = c->num_experts, K = c->num_experts_per_tok;
  qomni_cpu_linear (d->router_p, x, n, ly->router, NULL);
  for (int r = 0; r < n; r++) {
    float *p = d->router_p + (int64_t) r * E;
    qomni_cpu_softmax (p, E);
    int *ti = d->topi + (int64_t) r * K;
    float *tw = d->topw + (int64_t) r * K;
    qomni_cpu_topk (p, E, K, ti);
    float sum = 0.0f;
    for (int j = 0; j < K; j++)
      sum += (tw[j] = p[ti[j]]);
    if (c->norm_topk_prob)
      for (int j = 0; j < K; j++)
        tw[j] /= sum;
  }
  if (n == 1) {
    moe_one_token (d, ly, out, x);
  } else {
    moe_grouped (d, ly, out, x, n);
  }
  if (ly->sh_gate) {
    /* shared expert scaled by sigmoid(x · w_sg) per row */
    swiglu (d, d->yg, x, n, ly->sh_gate, ly->sh_up, ly->sh_down);
    qomni_cpu_linear (d->xg, x, n, ly->sh_gate_w, NULL);
    for (int r = 0; r < n; r++) {
      const float gsig = 1.0f / (1.0f + expf (-d->xg[r]));
      for (int h = 0; h < H; h++)
        out[(int64_t) r * H + h] += gsig * d->yg[(int64_t) r * H + h];
    }
  }
}

static void
rope_tables (QomniDecoder *d, const int *pos, int pos_stride, int n)
{
  const int half = d->hd / 2;
  for (int r = 0; r < n; r++)
    for (int i = 0; i < half; i++) {
      const float p = (float) pos[d->slot_axis[i] * pos_stride + r];
      const float ang = p * d->inv_freq[i];
      d->cos_t[r * half + i] = cosf (ang);
      d->sin_t[r * half + i] = sinf (ang);
    }
}

static void
forward_slice (QomniDecoder *d, float *x, int n, const int *pos, int pos_stride,
               QomniLayerHook hook, gpointer user, int row0)
{
  const QomniTextConfig *c = &d->cfg;
  const int H = d->H, p0 = d->n_past;
  rope_tables (d, pos, pos_stride, n);
  for (int l = 0; l < c->num_hidden_layers; l++) {
    Layer *ly = &d->layers[l];
    qomni_cpu_rmsnorm (d->xn, x, n, H, ly->in_norm, (float) c->rms_norm_eps);
    qomni_cpu_linear_same_input ((float *const[]) { d->q, d->k, d->v },
                                 (const QomniTensor *const[]) { ly->wq, ly->wk, ly->wv }, 3,
                                 d->xn, n);
    if (ly->q_norm)
      qomni_cpu_rmsnorm (d->q, d->q, n * d->nh, d->hd, ly->q_norm, (float) c->rms_norm_eps);
    if (ly->k_norm)
      qomni_cpu_rmsnorm (d->k, d->k, n * d->nkv, d->hd, ly->k_norm, (float) c->rms_norm_eps);
    qomni_cpu_rope (d->q, n, d->nh, d->hd, d->cos_t, d->sin_t);
    qomni_cpu_rope (d->k, n, d->nkv, d->hd, d->cos_t, d->sin_t);
    memcpy (ly->k_cache + (gsize) p0 * d->kv_dim, d->k, sizeof (float) * (gsize) n * d->kv_dim);
    memcpy (ly->v_cache + (gsize) p0 * d->kv_dim, d->v, sizeof (float) * (gsize) n * d->kv_dim);
    qomni_cpu_attention (d->att, d->q, ly->k_cache, ly->v_cache, n, p0 + n, d->nh, d->nkv,
                         d->hd, d->kv_dim, p0, TRUE, c->sliding_window);
    qomni_cpu_linear (d->tmp, d->att, n, ly->wo, NULL);
    for (int r = 0; r < n; r++)
      for (int h = 0; h < H; h++)
        x[r * H + h] += d->tmp[r * H + h] * (ly->ls_attn ? ly->ls_attn[h] : 1.0f);

    qomni_cpu_rmsnorm (d->xn, x, n, H, ly->post_norm, (float) c->rms_norm_eps);
    if (ly->router)
      moe (d, ly, d->moe_out, d->xn, n);
    else
      swiglu (d, d->moe_out, d->xn, n, ly->d_gate, ly->d_up, ly->d_down);
    for (int r = 0; r < n; r++)
      for (int h = 0; h < H; h++)
        x[r * H + h] += d->moe_out[r * H + h] * (ly->ls_mlp ? ly->ls_mlp[h] : 1.0f);
    if (hook)
      hook (l, x, row0, n, user);
  }
  qomni_cpu_rmsnorm (x, x, n, H, d->final_norm, (float) c->rms_norm_eps);
  d->n_past += n;
}

gboolean
qomni_decoder_forward (QomniDecoder *d, float *x, int n, const int *pos, QomniLayerHook hook,
                       gpointer user, GError **error)
{
  if (d->n_past + n > d->max_ctx) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the context is full: %d cached + %d new positions exceed %d", d->n_past, n,
                 d->max_ctx);
    return FALSE;
  }
  for (int s = 0; s < n; s += d->max_batch) {
    const int len = MIN (d->max_batch, n - s);
    forward_slice (d, x + (gsize) s * d->H, len, pos + s, n, hook, user, s);
  }
  return TRUE;
}
