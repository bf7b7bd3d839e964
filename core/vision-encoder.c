/* qomni — the vision encoder on the CPU (architecture notes §6). */
#include "vision-encoder.h"
#include "weights-load.h"
#include "error.h"
#include "ops-cpu.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vision-encoder-vk.h"
#endif

#include <math.h>
#include <string.h>

#define PREFIX "thinker.visual"
#define LN_EPS 1e-6f

typedef struct {
  /* # HF: blocks.N.norm1, blocks.N.norm2: [D] each */
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  /* # HF: blocks.N.attn.qkv [3D, D] + [3D] (rows [q | k | v]), blocks.N.attn.proj [D, D] */
  const QomniTensor *qkv, *proj;
  float *qkv_b, *proj_b;
  /* # HF: blocks.N.mlp.linear_fc1 [FF, D] + [FF], blocks.N.mlp.linear_fc2 [D, FF] + [D] */
  const QomniTensor *fc1, *fc2;
  float *b1, *b2;
} Block;

/* # HF: merger (ln_q over [D], before grouping) and merger_list.K (ln_q over [4D], after
 * grouping): mlp.0 [4D, 4D] + [4D], GELU (erf), mlp.2 [OUT, 4D] + [OUT]. */
typedef struct {
  float *ln_w, *ln_b;
  gboolean post_shuffle;
  const QomniTensor *fc1, *fc2;
  float *b1, *b2;
} Merger;

struct _QomniVisionEncoder {
  int D, FF, OUT, nh, hd, L;
  int P, T, M, C;            /* patch, temporal patch, merge, in_channels */
  int patch_dim;             /* C·T·P·P = 1536 */
  int grid_side;             /* 48: sqrt(num_position_embeddings) */
  int n_deep;
  int deep_layer[8];         /* block index after which merger_list.K runs */
  QomniTensor patch_w;       /* # HF: patch_embed.proj.weight [D, C, T, P, P] viewed [D, C·T·P·P] */
  float *patch_b;            /* [D] */
  const QomniTensor *pos;    /* # HF: pos_embed.weight [side², D] */
  float *inv_freq;           /* [hd/4]: the axial RoPE frequencies */
  Block *blocks;
  Merger merger;
  Merger deep[8];
  /* scratch for `cap` patches */
  int64_t cap;
  float *x, *xn, *q, *k, *v, *att;   /* [cap, D] */
  float *qkv;                         /* [cap, 3D] */
  float *ff;                          /* [cap, FF]; also [cap/4, 4D] in the mergers */
  float *cos_t, *sin_t;               /* [cap, hd/2] */
  float *pe_rows;                     /* [4, D] */
  QomniVisionTraceFn trace;
  gpointer trace_user;
#ifdef QOMNI_HAVE_VULKAN
  QomniVkVisionEncoder *gpu;          /* set: encode runs there */
#endif
};

static gboolean
load_merger (Merger *m, const QomniWeights *w, const char *name, gboolean post_shuffle, int D,
             int OUT, GError **error)
{
  const int G = 4 * D;
  m->post_shuffle = post_shuffle;
  QOMNI_LOAD_VEC (m->ln_w, post_shuffle ? G : D, PREFIX ".%s.ln_q.weight", name);
  QOMNI_LOAD_VEC (m->ln_b, post_shuffle ? G : D, PREFIX ".%s.ln_q.bias", name);
  QOMNI_LOAD_MAT (m->fc1, G, G, PREFIX ".%s.mlp.0.weight", name);
  QOMNI_LOAD_MAT (m->fc2, OUT, G, PREFIX ".%s.mlp.2.weight", name);
  QOMNI_LOAD_VEC (m->b1, G, PREFIX ".%s.mlp.0.bias", name);
  QOMNI_LOAD_VEC (m->b2, OUT, PREFIX ".%s.mlp.2.bias", name);
  return TRUE;
fail:
  return FALSE;
}

static void
merger_clear (Merger *m)
{
  g_free (m->ln_w);
  g_free (m->ln_b);
  g_free (m->b1);
  g_free (m->b2);
}

QomniVisionEncoder *
qomni_vision_encoder_new (const QomniWeights *w, const QomniConfig *config, GError **error)
{
  const QomniVisionConfig *vc = &config->thinker.vision;
  QomniVisionEncoder *enc = g_new0 (QomniVisionEncoder, 1);
  enc->D = vc->hidden_size;
  enc->FF = vc->intermediate_size;
  enc->OUT = vc->out_hidden_size;
  enc->L = vc->depth;
  enc->nh = vc->num_heads;
  enc->P = vc->patch_size;
  enc->T = vc->temporal_patch_size;
  enc->M = vc->spatial_merge_size;
  enc->C = vc->in_channels;
  enc->n_deep = vc->n_deepstack;
  enc->grid_side = (int) lround (sqrt ((double) MAX (vc->num_position_embeddings, 0)));
  if (enc->D <= 0 || enc->L <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "the config has no vision encoder (thinker_config.vision_config)");
    goto fail;
  }
  /* Axial RoPE splits each head in 4 quarters (row, column, and their rotate-half pairs);
   * the mergers group merge² = 4 patches, the only grouping the weights' 4·D rows allow. */
  if (enc->FF <= 0 || enc->OUT <= 0 || enc->nh <= 0 || enc->D % enc->nh != 0
      || (enc->D / enc->nh) % 4 != 0 || enc->P <= 0 || enc->T <= 0 || enc->M != 2
      || enc->C <= 0 || enc->grid_side < 1
      || enc->grid_side * enc->grid_side != vc->num_position_embeddings || enc->n_deep > 8) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "vision_config: unsupported sizes (hidden %d, heads %d, merge %d, "
                 "position embeddings %d, %d deepstack taps)", enc->D, enc->nh, enc->M,
                 vc->num_position_embeddings, enc->n_deep);
    goto fail;
  }
  for (int i = 0; i < enc->n_deep; i++) {
    enc->deep_layer[i] = vc->deepstack_visual_indexes[i];
    if (enc->deep_layer[i] < 0 || enc->deep_layer[i] >= enc->L
        || (i > 0 && enc->deep_layer[i] <= enc->deep_layer[i - 1])) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                   "vision_config: deepstack_visual_indexes must increase within [0, %d)",
                   enc->L);
      goto fail;
    }
  }
  enc->hd = enc->D / enc->nh;
  enc->patch_dim = enc->C * enc->T * enc->P * enc->P;
  const int D = enc->D, FF = enc->FF, OUT = enc->OUT;

  /* The Conv3d with kernel = stride = the patch is a linear map of each flattened patch:
   * the [D, C, T, P, P] weight is the [D, C·T·P·P] matrix over the same bytes. */
  const QomniTensor *pw = qomni_weights_get (w, error, 5,
                                             (int64_t[]) { D, enc->C, enc->T, enc->P, enc->P },
                                             PREFIX ".patch_embed.proj.weight");
  if (!pw)
    goto fail;
  if (enc->patch_dim % qomni_dtype_info (pw->dtype)->block_elems != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: %s is stored as %s, whose blocks do not divide its rows of %d; store it "
                 "as f32, f16 or bf16", pw->file, pw->name, qomni_dtype_info (pw->dtype)->name,
                 enc->patch_dim);
    goto fail;
  }
  enc->patch_w = *pw;
  enc->patch_w.ndim = 2;
  enc->patch_w.shape[1] = enc->patch_dim;
  for (int i = 2; i < QOMNI_MAX_DIMS; i++)
    enc->patch_w.shape[i] = 0;
  QOMNI_LOAD_VEC (enc->patch_b, D, PREFIX ".patch_embed.proj.bias");
  QOMNI_LOAD_MAT (enc->pos, vc->num_position_embeddings, D, PREFIX ".pos_embed.weight");

  enc->blocks = g_new0 (Block, enc->L);
  for (int l = 0; l < enc->L; l++) {
    Block *b = &enc->blocks[l];
    QOMNI_LOAD_VEC (b->ln1_w, D, PREFIX ".blocks.%d.norm1.weight", l);
    QOMNI_LOAD_VEC (b->ln1_b, D, PREFIX ".blocks.%d.norm1.bias", l);
    QOMNI_LOAD_VEC (b->ln2_w, D, PREFIX ".blocks.%d.norm2.weight", l);
    QOMNI_LOAD_VEC (b->ln2_b, D, PREFIX ".blocks.%d.norm2.bias", l);
    QOMNI_LOAD_MAT (b->qkv, 3 * D, D, PREFIX ".blocks.%d.attn.qkv.weight", l);
    QOMNI_LOAD_VEC (b->qkv_b, 3 * D, PREFIX ".blocks.%d.attn.qkv.bias", l);
    QOMNI_LOAD_MAT (b->proj, D, D, PREFIX ".blocks.%d.attn.proj.weight", l);
    QOMNI_LOAD_VEC (b->proj_b, D, PREFIX ".blocks.%d.attn.proj.bias", l);
    QOMNI_LOAD_MAT (b->fc1, FF, D, PREFIX ".blocks.%d.mlp.linear_fc1.weight", l);
    QOMNI_LOAD_VEC (b->b1, FF, PREFIX ".blocks.%d.mlp.linear_fc1.bias", l);
    QOMNI_LOAD_MAT (b->fc2, D, FF, PREFIX ".blocks.%d.mlp.linear_fc2.weight", l);
    QOMNI_LOAD_VEC (b->b2, D, PREFIX ".blocks.%d.mlp.linear_fc2.bias", l);
  }
  if (!load_merger (&enc->merger, w, "merger", FALSE, D, OUT, error))
    goto fail;
  for (int i = 0; i < enc->n_deep; i++) {
    g_autofree char *name = g_strdup_printf ("merger_list.%d", i);
    if (!load_merger (&enc->deep[i], w, name, TRUE, D, OUT, error))
      goto fail;
  }

  /* Axial RoPE frequencies as the reference computes them in float32:
   * inv[j] = 1 / θ^(2j / (hd/2)), j < hd/4. */
  const int quarter = enc->hd / 4, dim = enc->hd / 2;
  enc->inv_freq = g_new (float, quarter);
  for (int j = 0; j < quarter; j++)
    enc->inv_freq[j] = 1.0f / powf ((float) vc->rope_theta, (float) (2 * j) / (float) dim);
  enc->pe_rows = g_new (float, 4 * (gsize) D);
  return enc;

fail:
  qomni_vision_encoder_free (enc);
  return NULL;
}

static void
scratch_free (QomniVisionEncoder *enc)
{
  g_clear_pointer (&enc->x, g_free);
  g_clear_pointer (&enc->xn, g_free);
  g_clear_pointer (&enc->q, g_free);
  g_clear_pointer (&enc->k, g_free);
  g_clear_pointer (&enc->v, g_free);
  g_clear_pointer (&enc->att, g_free);
  g_clear_pointer (&enc->qkv, g_free);
  g_clear_pointer (&enc->ff, g_free);
  g_clear_pointer (&enc->cos_t, g_free);
  g_clear_pointer (&enc->sin_t, g_free);
  enc->cap = 0;
}

QomniVisionEncoder *
qomni_vision_encoder_new_on (const QomniWeights *w, const QomniConfig *config, QomniVk *vk,
                             GError **error)
{
  /* the CPU encoder checks the shapes and keeps the position table either way */
  QomniVisionEncoder *enc = qomni_vision_encoder_new (w, config, error);
  if (!enc || !vk)
    return enc;
#ifdef QOMNI_HAVE_VULKAN
  enc->gpu = qomni_vk_vision_encoder_new (vk, w, config, QOMNI_DTYPE_BF16, error);
  if (enc->gpu)
    return enc;
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "this build of qomni has no Vulkan backend");
#endif
  qomni_vision_encoder_free (enc);
  return NULL;
}

gboolean
qomni_vision_encoder_on_gpu (const QomniVisionEncoder *enc)
{
#ifdef QOMNI_HAVE_VULKAN
  return enc->gpu != NULL;
#else
  return FALSE;
#endif
}

void
qomni_vision_encoder_free (QomniVisionEncoder *enc)
{
  if (!enc)
    return;
#ifdef QOMNI_HAVE_VULKAN
  qomni_vk_vision_encoder_free (enc->gpu);
#endif
  g_free (enc->patch_b);
  if (enc->blocks)
    for (int l = 0; l < enc->L; l++) {
      Block *b = &enc->blocks[l];
      g_free (b->ln1_w);
      g_free (b->ln1_b);
      g_free (b->ln2_w);
      g_free (b->ln2_b);
      g_free (b->qkv_b);
      g_free (b->proj_b);
      g_free (b->b1);
      g_free (b->b2);
    }
  g_free (enc->blocks);
  merger_clear (&enc->merger);
  for (int i = 0; i < 8; i++)
    merger_clear (&enc->deep[i]);
  g_free (enc->inv_freq);
  g_free (enc->pe_rows);
  scratch_free (enc);
  g_free (enc);
}

int qomni_vision_encoder_output_dim (const QomniVisionEncoder *enc) { return enc->OUT; }
int qomni_vision_encoder_n_deepstack (const QomniVisionEncoder *enc) { return enc->n_deep; }
int qomni_vision_encoder_patch_dim (const QomniVisionEncoder *enc) { return enc->patch_dim; }

int
qomni_vision_encoder_n_tokens (const QomniVisionEncoder *enc, const int grid_thw[3])
{
  const int t = grid_thw[0], h = grid_thw[1], w = grid_thw[2];
  if (t <= 0 || h <= 0 || w <= 0 || h % enc->M != 0 || w % enc->M != 0
      || (int64_t) t * h * w > G_MAXINT / 2)
    return -1;
  return t * h * w / (enc->M * enc->M);
}

void
qomni_vision_encoder_set_trace (QomniVisionEncoder *enc, QomniVisionTraceFn fn, gpointer user)
{
  enc->trace = fn;
  enc->trace_user = user;
}

gboolean
qomni_vision_encoder_reserve (QomniVisionEncoder *enc, int64_t n, GError **error)
{
#ifdef QOMNI_HAVE_VULKAN
  if (enc->gpu) {
    /* the device's scratch; the CPU's stays unused */
    if (n > G_MAXINT / 4) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "%" G_GINT64_FORMAT " patches are "
                   "too many for the GPU vision encoder", n);
      return FALSE;
    }
    return qomni_vk_vision_encoder_reserve (enc->gpu, (int) n, error);
  }
#endif
  if (n <= enc->cap)
    return TRUE;
  scratch_free (enc);
  const gsize D = enc->D, G = 4 * D;
  /* ff doubles as the mergers' [n/4, 4D] input and hidden rows (2 · n/4 · 4D = 2nD). */
  const gsize ff = MAX ((gsize) n * enc->FF, (gsize) 2 * ((n + 3) / 4) * G);
  enc->x = g_try_new (float, n * D);
  enc->xn = g_try_new (float, n * D);
  enc->q = g_try_new (float, n * D);
  enc->k = g_try_new (float, n * D);
  enc->v = g_try_new (float, n * D);
  enc->att = g_try_new (float, n * D);
  enc->qkv = g_try_new (float, n * 3 * D);
  enc->ff = g_try_new (float, ff);
  enc->cos_t = g_try_new (float, (gsize) n * enc->hd / 2);
  enc->sin_t = g_try_new (float, (gsize) n * enc->hd / 2);
  if (!enc->x || !enc->xn || !enc->q || !enc->k || !enc->v || !enc->att || !enc->qkv
      || !enc->ff || !enc->cos_t || !enc->sin_t) {
    scratch_free (enc);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory for the vision encoder's scratch (%" G_GINT64_FORMAT
                 " patches)", n);
    return FALSE;
  }
  enc->cap = n;
  return TRUE;
}

/* Exact or tanh GELU over n values, split across threads. */
static void
gelu_par (float *x, int64_t n, gboolean tanh_form)
{
  const int64_t block = 16384;
#pragma omp parallel for schedule(static) if (n > 2 * block)
  for (int64_t i0 = 0; i0 < n; i0 += block) {
    if (tanh_form)
      qomni_cpu_gelu_tanh (x + i0, MIN (block, n - i0));
    else
      qomni_cpu_gelu (x + i0, MIN (block, n - i0));
  }
}

/* torch.linspace (0, side − 1, n) in float32: the first half counts up from the start, the
 * second half down from the end, as PyTorch computes it. */
static float
linspace_at (int i, int n, int side)
{
  if (n == 1)
    return 0.0f;
  const float end = (float) (side - 1), step = end / (float) (n - 1);
  return i < n / 2 ? step * (float) i : end - step * (float) (n - 1 - i);
}

/* Position of patch p (merge-block order within one temporal slice of gh × gw patches). */
static inline void
patch_rc (int p, int gw, int M, int *row, int *col)
{
  const int per_block = M * M, bw_n = gw / M;
  const int blk = p / per_block, in = p % per_block;
  *row = (blk / bw_n) * M + in / M;
  *col = (blk % bw_n) * M + in % M;
}

/* x[p] += the 48×48 table resampled bilinearly (align_corners) at the patch's grid point,
 * for the gh·gw patches of one temporal slice. Weights and the 4-term sum in float32, in
 * the reference's order (top-left, top-right, bottom-left, bottom-right). */
static void
add_pos_embed (QomniVisionEncoder *enc, float *x, int gh, int gw)
{
  const int D = enc->D, S = enc->grid_side;
  float *e = enc->pe_rows;
  for (int p = 0; p < gh * gw; p++) {
    int r, c;
    patch_rc (p, gw, enc->M, &r, &c);
    const float sr = linspace_at (r, gh, S), sc = linspace_at (c, gw, S);
    const int r0 = (int) sr, c0 = (int) sc;
    const int r1 = MIN (r0 + 1, S - 1), c1 = MIN (c0 + 1, S - 1);
    const float dr = sr - (float) r0, dc = sc - (float) c0;
    const float wt[4] = { (1.0f - dr) * (1.0f - dc), (1.0f - dr) * dc, dr * (1.0f - dc),
                          dr * dc };
    const int idx[4] = { r0 * S + c0, r0 * S + c1, r1 * S + c0, r1 * S + c1 };
    for (int i = 0; i < 4; i++)
      qomni_weight_row_f32 (enc->pos, idx[i], e + (gsize) i * D);
    float *xr = x + (gsize) p * D;
    for (int d = 0; d < D; d++)
      xr[d] += ((wt[0] * e[d] + wt[1] * e[D + d]) + wt[2] * e[2 * D + d]) + wt[3] * e[3 * D + d];
  }
}

/* cos/sin [gh·gw, hd/2] of one temporal slice: slot j < hd/4 turns by row·inv[j], slot
 * hd/4 + j by col·inv[j]; rotate-half pairs element i with i + hd/2. */
static void
rope_tables (QomniVisionEncoder *enc, int gh, int gw, float *cos_t, float *sin_t)
{
  const int half = enc->hd / 2, quarter = enc->hd / 4;
  for (int p = 0; p < gh * gw; p++) {
    int r, c;
    patch_rc (p, gw, enc->M, &r, &c);
    float *ct = cos_t + (gsize) p * half, *st = sin_t + (gsize) p * half;
    for (int j = 0; j < quarter; j++) {
      const float ar = (float) r * enc->inv_freq[j], ac = (float) c * enc->inv_freq[j];
      ct[j] = cosf (ar);
      st[j] = sinf (ar);
      ct[quarter + j] = cosf (ac);
      st[quarter + j] = sinf (ac);
    }
  }
}

/* One pre-LN block over x [n, D], attention within each slice of `seg` patches. */
static void
run_block (QomniVisionEncoder *enc, const Block *b, int n, int seg)
{
  const int D = enc->D, D3 = 3 * D;
  float *x = enc->x, *xn = enc->xn;
  /* x = x + proj(Attn(norm1(x))) */
  qomni_cpu_layernorm (xn, x, n, D, b->ln1_w, b->ln1_b, LN_EPS);
  qomni_cpu_linear (enc->qkv, xn, n, b->qkv, b->qkv_b);   /* [n, 3D] = [q | k | v] */
  for (int r = 0; r < n; r++) {
    const float *src = enc->qkv + (gsize) r * D3;
    memcpy (enc->q + (gsize) r * D, src, sizeof (float) * D);
    memcpy (enc->k + (gsize) r * D, src + D, sizeof (float) * D);
    memcpy (enc->v + (gsize) r * D, src + 2 * D, sizeof (float) * D);
  }
  for (int s0 = 0; s0 < n; s0 += seg) {
    /* every temporal slice has the same (row, col) layout, so the same tables */
    qomni_cpu_rope (enc->q + (gsize) s0 * D, seg, enc->nh, enc->hd, enc->cos_t, enc->sin_t);
    qomni_cpu_rope (enc->k + (gsize) s0 * D, seg, enc->nh, enc->hd, enc->cos_t, enc->sin_t);
    qomni_cpu_attention (enc->att + (gsize) s0 * D, enc->q + (gsize) s0 * D,
                         enc->k + (gsize) s0 * D, enc->v + (gsize) s0 * D, seg, seg, enc->nh,
                         enc->nh, enc->hd, D, 0, FALSE, 0);
  }
  qomni_cpu_linear (xn, enc->att, n, b->proj, b->proj_b);
  qomni_cpu_add (x, xn, (int64_t) n * D);
  /* x = x + fc2(GELU_tanh(fc1(norm2(x)))) */
  qomni_cpu_layernorm (xn, x, n, D, b->ln2_w, b->ln2_b, LN_EPS);
  qomni_cpu_linear (enc->ff, xn, n, b->fc1, b->b1);
  gelu_par (enc->ff, (int64_t) n * enc->FF, TRUE);
  qomni_cpu_linear (xn, enc->ff, n, b->fc2, b->b2);
  qomni_cpu_add (x, xn, (int64_t) n * D);
}

/* out [n/4, OUT] from x [n, D]: the final merger normalises each patch then groups 4,
 * a DeepStack merger groups 4 then normalises the 4D vector. */
static void
run_merger (QomniVisionEncoder *enc, const Merger *m, const float *x, int n, float *out)
{
  const int D = enc->D, G = 4 * D, nt = n / 4;
  float *g = enc->ff, *h = enc->ff + (gsize) nt * G;
  if (m->post_shuffle)
    qomni_cpu_layernorm (g, x, nt, G, m->ln_w, m->ln_b, LN_EPS);
  else
    qomni_cpu_layernorm (g, x, n, D, m->ln_w, m->ln_b, LN_EPS);   /* [n, D] = [nt, 4D] */
  qomni_cpu_linear (h, g, nt, m->fc1, m->b1);
  gelu_par (h, (int64_t) nt * G, FALSE);
  qomni_cpu_linear (out, h, nt, m->fc2, m->b2);
}

#ifdef QOMNI_HAVE_VULKAN
/* The GPU path: the per-image tables here (the same functions as the CPU path), tiled over
 * every temporal slice, the transformer there. */
static gboolean
encode_gpu (QomniVisionEncoder *enc, const float *pixels, const int grid[3], float *embeds,
            float *deepstack, GError **error)
{
  if (enc->trace) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the vision encoder's stages cannot be traced on the GPU; trace a CPU "
                 "encoder");
    return FALSE;
  }
  const int gh = grid[1], gw = grid[2], seg = gh * gw, n = grid[0] * seg;
  const gsize D = enc->D, half = enc->hd / 2;
  float *pos = g_try_new0 (float, (gsize) n * D);
  float *rope = g_try_new (float, (gsize) 2 * n * half);
  if (!pos || !rope) {
    g_free (pos);
    g_free (rope);
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "out of memory for the vision encoder's tables (%d patches)", n);
    return FALSE;
  }
  /* # HF: pos_embed (onto zeros, so the rows are the resampled table itself) */
  add_pos_embed (enc, pos, gh, gw);
  rope_tables (enc, gh, gw, rope, rope + (gsize) n * half);
  for (int s0 = seg; s0 < n; s0 += seg) {
    memcpy (pos + (gsize) s0 * D, pos, sizeof (float) * seg * D);
    memcpy (rope + (gsize) s0 * half, rope, sizeof (float) * seg * half);
    memcpy (rope + (gsize) (n + s0) * half, rope + (gsize) n * half, sizeof (float) * seg * half);
  }
  gboolean ok = qomni_vk_vision_encoder_encode (enc->gpu, pixels, n, seg, pos, rope, embeds,
                                                deepstack, error);
  g_free (pos);
  g_free (rope);
  return ok;
}
#endif

gboolean
qomni_vision_encoder_encode (QomniVisionEncoder *enc, const float *pixels, const int grid[3],
                             float *embeds, float *deepstack, GError **error)
{
  g_return_val_if_fail (enc != NULL && grid != NULL && embeds != NULL, FALSE);
  const int n_tok = qomni_vision_encoder_n_tokens (enc, grid);
  if (n_tok < 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "vision grid (t %d, h %d, w %d) is not valid: all positive, h and w "
                 "multiples of %d", grid[0], grid[1], grid[2], enc->M);
    return FALSE;
  }
  g_return_val_if_fail (pixels != NULL, FALSE);
  const int gh = grid[1], gw = grid[2], seg = gh * gw, n = grid[0] * seg;
  const int D = enc->D;
  const gsize n_in = (gsize) n * enc->patch_dim;
  for (gsize i = 0; i < n_in; i++)
    if (!isfinite (pixels[i])) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "pixel value %" G_GSIZE_FORMAT " (patch %d) is not finite", i,
                   (int) (i / enc->patch_dim));
      return FALSE;
    }
#ifdef QOMNI_HAVE_VULKAN
  if (enc->gpu)
    return encode_gpu (enc, pixels, grid, embeds, deepstack, error);
#endif
  if (!qomni_vision_encoder_reserve (enc, n, error))
    return FALSE;

  /* # HF: patch_embed: [n, C·T·P·P] -> [n, D] */
  qomni_cpu_linear (enc->x, pixels, n, &enc->patch_w, enc->patch_b);
  if (enc->trace)
    enc->trace ("patch_embed", enc->x, (int64_t[]) { n, D }, 2, enc->trace_user);
  /* # HF: pos_embed, resampled to the grid and repeated for every temporal slice */
  for (int s0 = 0; s0 < n; s0 += seg)
    add_pos_embed (enc, enc->x + (gsize) s0 * D, gh, gw);
  rope_tables (enc, gh, gw, enc->cos_t, enc->sin_t);

  int k = 0;
  for (int l = 0; l < enc->L; l++) {
    /* # HF: blocks.N */
    run_block (enc, &enc->blocks[l], n, seg);
    if (enc->trace) {
      g_autofree char *name = g_strdup_printf ("blocks.%d", l);
      enc->trace (name, enc->x, (int64_t[]) { n, D }, 2, enc->trace_user);
    }
    if (k < enc->n_deep && enc->deep_layer[k] == l) {
      /* # HF: merger_list.K */
      if (deepstack) {
        float *out = deepstack + (gsize) k * n_tok * enc->OUT;
        run_merger (enc, &enc->deep[k], enc->x, n, out);
        if (enc->trace) {
          g_autofree char *name = g_strdup_printf ("merger_list.%d", k);
          enc->trace (name, out, (int64_t[]) { n_tok, enc->OUT }, 2, enc->trace_user);
        }
      }
      k++;
    }
  }
  /* # HF: merger */
  run_merger (enc, &enc->merger, enc->x, n, embeds);
  if (enc->trace)
    enc->trace ("merger", embeds, (int64_t[]) { n_tok, enc->OUT }, 2, enc->trace_user);
  return TRUE;
}
