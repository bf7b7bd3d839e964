/* qomni — the vision encoder's transformer on the Vulkan device (see vision-encoder-vk.h). */
#include "vision-encoder-vk.h"
#include "encoder-vk.h"
#include "error.h"
#include "vk-ops.h"

#include <string.h>

#define PREFIX "thinker.visual"
#define LN_EPS 1e-6f   /* as vision-encoder.c */

/* # HF: merger (ln_q over [D], before grouping) and merger_list.K (ln_q over [4D], after
 * grouping): mlp.0 [4D, 4D] + [4D], GELU (erf), mlp.2 [OUT, 4D] + [OUT]. */
typedef struct {
  int ln_w, ln_b, b1, b2;
  gboolean post_shuffle;
  QomniVkMat fc1, fc2;
} Merger;

/* The weights and shapes are loaded once per (device, store) into one of these and never
 * changed after (qomni_vk_shared_get; random weights: each encoder its own); an encoder is
 * a copy of it with its own scratch. */
struct _QomniVkVisionEncoder {
  QomniVk *vk;
  QomniVkVisionEncoder *loaded;  /* an encoder: the weights it copies */
  gboolean owns_loaded;          /* random weights, not shared */
  int D, FF, OUT, nh, hd, L, patch_dim, n_deep;
  int deep_layer[8];
  QomniVkMat patch;          /* # HF: patch_embed.proj [D, C, T, P, P] as [D, C·T·P·P] */
  int patch_b;
  QomniVkEncBlock *blocks;   /* # HF: blocks.N */
  Merger merger, deep[8];
  QomniVkBuffer *vecs;
  QomniVkEncShape shape;
  /* scratch for `cap` patches */
  int cap;
  QomniVkEncActs acts;
  QomniVkBuffer *mg, *mh;    /* the mergers' normed input and hidden rows, [cap/4, 4D] */
  QomniVkBuffer *res;        /* [1 + n_deep, cap/4, OUT]: embeds, then the DeepStack rows */
  QomniVkBuffer *in, *out;   /* host-visible: inputs and results of a call (grow-only) */
};

static gboolean
merger_load (QomniVkVisionEncoder *enc, Merger *m, const QomniWeights *w, GArray *vecs,
             const char *name, gboolean post_shuffle, QomniDType rdt, guint32 seed,
             GError **error)
{
  const int D = enc->D, G = 4 * D;
  m->post_shuffle = post_shuffle;
  return (m->ln_w = qomni_vk_vecs_add (vecs, w, post_shuffle ? G : D, 1.0f, error,
                                       PREFIX ".%s.ln_q.weight", name)) >= 0
         && (m->ln_b = qomni_vk_vecs_add (vecs, w, post_shuffle ? G : D, 0.0f, error,
                                          PREFIX ".%s.ln_q.bias", name)) >= 0
         && (m->b1 = qomni_vk_vecs_add (vecs, w, G, 0.0f, error, PREFIX ".%s.mlp.0.bias",
                                        name)) >= 0
         && (m->b2 = qomni_vk_vecs_add (vecs, w, enc->OUT, 0.0f, error,
                                        PREFIX ".%s.mlp.2.bias", name)) >= 0
         && qomni_vk_mat_load (enc->vk, &m->fc1, w, G, G, rdt, seed, error,
                               PREFIX ".%s.mlp.0.weight", name)
         && qomni_vk_mat_load (enc->vk, &m->fc2, w, enc->OUT, G, rdt, seed + 1, error,
                               PREFIX ".%s.mlp.2.weight", name);
}

#define VEC(dst, len, fill, ...)                                                              \
  G_STMT_START {                                                                              \
    if ((dst = qomni_vk_vecs_add (vecs, w, len, fill, error, __VA_ARGS__)) < 0)               \
      goto fail;                                                                              \
  } G_STMT_END

static void vision_unload (gpointer p);

typedef struct {
  const QomniWeights *w;
  const QomniConfig *config;
  QomniDType rdt;
} VisionMake;

/* (a QomniVkSharedMake) The weights on the device and the shapes, no scratch. */
static gpointer
vision_load (QomniVk *vk, gpointer data, GError **error)
{
  const QomniWeights *w = ((const VisionMake *) data)->w;
  const QomniConfig *config = ((const VisionMake *) data)->config;
  const QomniDType rdt = ((const VisionMake *) data)->rdt;
  const QomniVisionConfig *vc = &config->thinker.vision;
  QomniVkVisionEncoder *enc = g_new0 (QomniVkVisionEncoder, 1);
  GArray *vecs = g_array_new (FALSE, FALSE, sizeof (float));
  enc->vk = vk;
  enc->D = vc->hidden_size;
  enc->FF = vc->intermediate_size;
  enc->OUT = vc->out_hidden_size;
  enc->L = vc->depth;
  enc->nh = vc->num_heads;
  enc->n_deep = vc->n_deepstack;
  enc->patch_dim = vc->in_channels * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
  if (enc->D <= 0 || enc->L <= 0 || enc->FF <= 0 || enc->OUT <= 0 || enc->nh <= 0
      || enc->D % enc->nh != 0 || enc->patch_dim <= 0 || enc->n_deep > 8
      || vc->spatial_merge_size != 2) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "vision_config: unsupported sizes (hidden %d, heads %d, depth %d)", enc->D,
                 enc->nh, enc->L);
    goto fail;
  }
  enc->hd = enc->D / enc->nh;
  if (enc->hd % 4 != 0 || enc->hd > 256) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "the GPU attention needs a head size that is a multiple of 4 up to 256 "
                 "(vision encoder: %d)", enc->hd);
    goto fail;
  }
  for (int i = 0; i < enc->n_deep; i++)
    enc->deep_layer[i] = vc->deepstack_visual_indexes[i];
  const int D = enc->D, FF = enc->FF;

  if (w) {
    const QomniTensor *pw = qomni_weights_get (
        w, error, 5,
        (int64_t[]) { D, vc->in_channels, vc->temporal_patch_size, vc->patch_size,
                      vc->patch_size },
        PREFIX ".patch_embed.proj.weight");
    if (!pw)
      goto fail;
    QomniTensor m = *pw;   /* the same bytes as the matrix [D, C·T·P·P] */
    m.ndim = 2;
    m.shape[1] = enc->patch_dim;
    const QomniTensor *parts[] = { &m };
    if (!qomni_vk_mat_new (vk, &enc->patch, parts, 1, D, enc->patch_dim, rdt, 0,
                           "vision patch_embed", error))
      goto fail;
  } else if (!qomni_vk_mat_new (vk, &enc->patch, NULL, 1, D, enc->patch_dim, rdt, 2000,
                                "vision patch_embed", error))
    goto fail;
  VEC (enc->patch_b, D, 0.0f, PREFIX ".patch_embed.proj.bias");

  enc->blocks = g_new0 (QomniVkEncBlock, enc->L);
  for (int l = 0; l < enc->L; l++) {
    QomniVkEncBlock *b = &enc->blocks[l];
    const guint32 seed = 3000 + 8 * l;
    if (!qomni_vk_mat_load (vk, &b->qkv, w, 3 * D, D, rdt, seed, error,
                            PREFIX ".blocks.%d.attn.qkv.weight", l)
        || !qomni_vk_mat_load (vk, &b->o, w, D, D, rdt, seed + 1, error,
                               PREFIX ".blocks.%d.attn.proj.weight", l)
        || !qomni_vk_mat_load (vk, &b->fc1, w, FF, D, rdt, seed + 2, error,
                               PREFIX ".blocks.%d.mlp.linear_fc1.weight", l)
        || !qomni_vk_mat_load (vk, &b->fc2, w, D, FF, rdt, seed + 3, error,
                               PREFIX ".blocks.%d.mlp.linear_fc2.weight", l))
      goto fail;
    VEC (b->ln1_w, D, 1.0f, PREFIX ".blocks.%d.norm1.weight", l);
    VEC (b->ln1_b, D, 0.0f, PREFIX ".blocks.%d.norm1.bias", l);
    VEC (b->ln2_w, D, 1.0f, PREFIX ".blocks.%d.norm2.weight", l);
    VEC (b->ln2_b, D, 0.0f, PREFIX ".blocks.%d.norm2.bias", l);
    VEC (b->qkv_b, 3 * D, 0.0f, PREFIX ".blocks.%d.attn.qkv.bias", l);
    VEC (b->o_b, D, 0.0f, PREFIX ".blocks.%d.attn.proj.bias", l);
    VEC (b->fc1_b, FF, 0.0f, PREFIX ".blocks.%d.mlp.linear_fc1.bias", l);
    VEC (b->fc2_b, D, 0.0f, PREFIX ".blocks.%d.mlp.linear_fc2.bias", l);
  }
  if (!merger_load (enc, &enc->merger, w, vecs, "merger", FALSE, rdt, 4000, error))
    goto fail;
  for (int i = 0; i < enc->n_deep; i++) {
    g_autofree char *name = g_strdup_printf ("merger_list.%d", i);
    if (!merger_load (enc, &enc->deep[i], w, vecs, name, TRUE, rdt, 4002 + 2 * i, error))
      goto fail;
  }
  if (!(enc->vecs = qomni_vk_vecs_upload (vk, vecs, error)))
    goto fail;
  enc->shape = (QomniVkEncShape) { .D = D, .FF = FF, .nh = enc->nh, .hd = enc->hd,
                                   .eps = LN_EPS, .act = QOMNI_VK_ACT_GELU_TANH };
  g_array_free (vecs, TRUE);
  return enc;

fail:
  g_array_free (vecs, TRUE);
  vision_unload (enc);
  return NULL;
}

QomniVkVisionEncoder *
qomni_vk_vision_encoder_new (QomniVk *vk, const QomniWeights *w, const QomniConfig *config,
                             QomniDType rdt, GError **error)
{
  /* one upload per store (and upload dtype) on this device, whichever element asks */
  VisionMake make = { w, config, rdt };
  QomniVkVisionEncoder *loaded;
  if (w) {
    g_autofree char *key = g_strdup_printf ("vision encoder: store %u, %s",
                                            qomni_weights_serial (w),
                                            qomni_dtype_info (rdt)->name);
    loaded = qomni_vk_shared_get (vk, key, vision_load, &make, vision_unload, error);
  } else {
    loaded = vision_load (vk, &make, error);
  }
  if (!loaded)
    return NULL;
  QomniVkVisionEncoder *enc = g_memdup2 (loaded, sizeof *enc);
  enc->loaded = loaded;
  enc->owns_loaded = w == NULL;
  return enc;
}

static void
scratch_free (QomniVkVisionEncoder *enc)
{
  qomni_vk_enc_acts_clear (enc->vk, &enc->acts);
  QomniVkBuffer **bs[] = { &enc->mg, &enc->mh, &enc->res };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++) {
    qomni_vk_buffer_free (enc->vk, *bs[i]);
    *bs[i] = NULL;
  }
  enc->cap = 0;
}

/* Frees what vision_load made. */
static void
vision_unload (gpointer p)
{
  QomniVkVisionEncoder *enc = p;
  if (!enc)
    return;
  QomniVk *vk = enc->vk;
  qomni_vk_mat_clear (vk, &enc->patch);
  for (int l = 0; enc->blocks && l < enc->L; l++)
    qomni_vk_enc_block_clear (vk, &enc->blocks[l]);
  g_free (enc->blocks);
  Merger *ms[9] = { &enc->merger };
  for (int i = 0; i < 8; i++)
    ms[i + 1] = &enc->deep[i];
  for (int i = 0; i < 9; i++) {
    qomni_vk_mat_clear (vk, &ms[i]->fc1);
    qomni_vk_mat_clear (vk, &ms[i]->fc2);
  }
  qomni_vk_buffer_free (vk, enc->vecs);
  g_free (enc);
}

void
qomni_vk_vision_encoder_free (QomniVkVisionEncoder *enc)
{
  if (!enc)
    return;
  QomniVk *vk = enc->vk;
  qomni_vk_buffer_free (vk, enc->in);
  qomni_vk_buffer_free (vk, enc->out);
  scratch_free (enc);
  if (enc->owns_loaded)
    vision_unload (enc->loaded);
  else
    qomni_vk_shared_release (vk, enc->loaded);
  g_free (enc);
}

gboolean
qomni_vk_vision_encoder_reserve (QomniVkVisionEncoder *enc, int n, GError **error)
{
  if (n <= enc->cap)
    return TRUE;
  scratch_free (enc);
  const uint64_t nt = (uint64_t) (n + 3) / 4;
  if (!qomni_vk_enc_acts_new (enc->vk, &enc->acts, &enc->shape, n, error)
      || !(enc->mg = qomni_vk_buffer_new (enc->vk, 4 * nt * 4 * enc->D, QOMNI_VK_MEM_DEVICE,
                                          "vision merger input", error))
      || !(enc->mh = qomni_vk_buffer_new (enc->vk, 4 * nt * 4 * enc->D, QOMNI_VK_MEM_DEVICE,
                                          "vision merger hidden", error))
      || !(enc->res = qomni_vk_buffer_new (enc->vk, 4 * (1 + enc->n_deep) * nt * enc->OUT,
                                           QOMNI_VK_MEM_DEVICE, "vision encoder output",
                                           error))) {
    scratch_free (enc);
    return FALSE;
  }
  enc->cap = n;
  return TRUE;
}

/* out rows [n/4, OUT] at out_off (floats) of enc->res from x [n, D]: the final merger
 * normalizes each patch then groups 4, a DeepStack merger groups 4 then normalizes. */
static void
rec_merger (QomniVkVisionEncoder *enc, QomniVkCmd *c, const Merger *m, int n, uint32_t out_off)
{
  const int D = enc->D, G = 4 * D, nt = n / 4;
  const QomniVkEncActs *a = &enc->acts;
  if (m->post_shuffle)
    qomni_vk_rec_layernorm (c, a->x, G, enc->mg, G, nt, G, enc->vecs, m->ln_w, m->ln_b,
                            LN_EPS);
  else
    qomni_vk_rec_layernorm (c, a->x, D, enc->mg, D, n, D, enc->vecs, m->ln_w, m->ln_b, LN_EPS);
  qomni_vk_rec_linear (c, &m->fc1, enc->mg, 0, G, enc->mh, 0, G, nt, FALSE, enc->vecs, m->b1,
                       QOMNI_VK_ACT_GELU, enc->acts.scratch);
  qomni_vk_rec_linear (c, &m->fc2, enc->mh, 0, G, enc->res, out_off, enc->OUT, nt, FALSE,
                       enc->vecs, m->b2, QOMNI_VK_ACT_NONE, enc->acts.scratch);
}

gboolean
qomni_vk_vision_encoder_encode (QomniVkVisionEncoder *enc, const float *pixels, int n, int seg,
                                const float *pos, const float *rope, float *embeds,
                                float *deepstack, GError **error)
{
  g_return_val_if_fail (enc && pixels && pos && rope && embeds, FALSE);
  if (n <= 0 || seg <= 0 || n % seg != 0 || n % 4 != 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "%d patches in slices of %d: not a whole number of slices of 2×2 blocks", n,
                 seg);
    return FALSE;
  }
  if (!qomni_vk_vision_encoder_reserve (enc, n, error))
    return FALSE;
  QomniVk *vk = enc->vk;
  const int D = enc->D, OUT = enc->OUT, half = enc->hd / 2, nt = n / 4;
  /* host inputs: [pixels | positions | cos | sin] */
  const uint64_t pix_f = (uint64_t) n * enc->patch_dim, pos_f = (uint64_t) n * D;
  const uint64_t rope_f = 2 * (uint64_t) n * half;
  const uint64_t res_f = (uint64_t) (1 + enc->n_deep) * nt * OUT;
  if (!qomni_vk_host_ensure (vk, &enc->in, 4 * (pix_f + pos_f + rope_f),
                             "vision encoder inputs", error)
      || !qomni_vk_host_ensure (vk, &enc->out, 4 * res_f, "vision encoder result", error))
    return FALSE;
  QomniVkBuffer *in = enc->in, *res = enc->out;
  float *h = in->map;
  memcpy (h, pixels, 4 * pix_f);
  memcpy (h + pix_f, pos, 4 * pos_f);
  memcpy (h + pix_f + pos_f, rope, 4 * rope_f);

  QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
  if (!c)
    return FALSE;
  const QomniVkEncActs *a = &enc->acts;
  /* # HF: patch_embed onto pos_embed: x = positions + W·patch + b */
  qomni_vk_cmd_copy (c, in, 4 * pix_f, a->x, 0, 4 * pos_f);
  qomni_vk_rec_linear (c, &enc->patch, in, 0, enc->patch_dim, a->x, 0, D, n, TRUE, enc->vecs,
                       enc->patch_b, QOMNI_VK_ACT_NONE, a->scratch);
  int k = 0;
  for (int l = 0; l < enc->L; l++) {
    /* # HF: blocks.N, attention within each temporal slice, 2-D RoPE on q and k */
    qomni_vk_enc_block_record (c, &enc->blocks[l], enc->vecs, &enc->shape, a, n, seg, in,
                               (uint32_t) (pix_f + pos_f), (uint32_t) n * half);
    if (k < enc->n_deep && enc->deep_layer[k] == l) {
      /* # HF: merger_list.K */
      if (deepstack)
        rec_merger (enc, c, &enc->deep[k], n, (uint32_t) ((1 + k) * nt * OUT));
      k++;
    }
  }
  /* # HF: merger */
  rec_merger (enc, c, &enc->merger, n, 0);
  qomni_vk_cmd_copy (c, enc->res, 0, res, 0, 4 * res_f);
  gboolean ok = qomni_vk_cmd_submit (c, error);
  if (ok) {
    memcpy (embeds, res->map, 4 * (size_t) nt * OUT);
    if (deepstack)
      memcpy (deepstack, (float *) res->map + (size_t) nt * OUT,
              4 * (size_t) enc->n_deep * nt * OUT);
  }
  return ok;
}
