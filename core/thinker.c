/* qomni — the thinker: the CPU decoder, or the Vulkan one behind the same calls. */
#include "thinker.h"
#include "error.h"
#include "ops-cpu.h"
#ifdef QOMNI_HAVE_VULKAN
#include "thinker-vk.h"
#endif

#include <string.h>

struct _QomniThinker {
  const QomniConfig *cfg;
  QomniDecoder *dec;           /* the CPU decoder, or NULL on the GPU */
#ifdef QOMNI_HAVE_VULKAN
  QomniVkThinker *gpu;         /* the Vulkan decoder, or NULL on the CPU */
  float *gpu_layers;           /* [L, gpu_rows, H]: layer outputs brought back for hooks */
  int gpu_rows;
#endif
  int max_ctx;
  const QomniTensor *embed;    /* [V, H] */
  const QomniTensor *lm_head;  /* [V, H] */
  int H, V;
  int next_pos;                /* the position the next token gets (1 + largest so far) */
  QomniLayerHook hook;
  gpointer hook_user;
  QomniThinkerStateFn state_fn;
  gpointer state_user;
  int state_layer;             /* hs[state_layer] goes to state_fn */
  float *state_embed, *state_hidden;  /* [state_rows, H] */
  int state_rows;
  float *row;                  /* [H] scratch for decode */
};

QomniThinker *
qomni_thinker_new_on (const QomniWeights *w, const QomniConfig *cfg, int max_ctx,
                      QomniVk *vk, GError **error)
{
  const QomniTextConfig *tc = &cfg->thinker.text;
  QomniThinker *t = g_new0 (QomniThinker, 1);
  t->cfg = cfg;
  t->H = tc->hidden_size;
  t->V = tc->vocab_size;
  t->embed = qomni_weights_get (w, error, 2, (int64_t[]) { t->V, t->H },
                                "thinker.model.embed_tokens.weight");
  if (!t->embed)
    goto fail;
  t->lm_head = tc->tie_word_embeddings && !qomni_weights_find (w, "thinker.lm_head.weight")
                   ? t->embed
                   : qomni_weights_get (w, error, 2, (int64_t[]) { t->V, t->H },
                                        "thinker.lm_head.weight");
  if (!t->lm_head)
    goto fail;
  /* Prompts run in slices of 512 rows: big enough to reuse each weight row many times,
   * small enough that the scratch stays a few MB even at full width. */
  t->max_ctx = max_ctx;
  if (vk) {
#ifdef QOMNI_HAVE_VULKAN
    t->gpu = qomni_vk_thinker_new (vk, w, tc, QOMNI_DTYPE_BF16, max_ctx, MIN (512, max_ctx),
                                   error);
    if (!t->gpu)
      goto fail;
#else
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "this build of qomni has no Vulkan backend");
    goto fail;
#endif
  } else {
    t->dec = qomni_decoder_new (w, tc, "thinker.model", max_ctx, MIN (512, max_ctx), error);
    if (!t->dec)
      goto fail;
  }
  t->row = g_new (float, t->H);
  return t;
fail:
  qomni_thinker_free (t);
  return NULL;
}

QomniThinker *
qomni_thinker_new (const QomniWeights *w, const QomniConfig *cfg, int max_ctx, GError **error)
{
  return qomni_thinker_new_on (w, cfg, max_ctx, NULL, error);
}

void
qomni_thinker_free (QomniThinker *t)
{
  if (!t)
    return;
  if (t->dec)
    qomni_decoder_free (t->dec);
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu)
    qomni_vk_thinker_free (t->gpu);
  g_free (t->gpu_layers);
#endif
  g_free (t->state_embed);
  g_free (t->state_hidden);
  g_free (t->row);
  g_free (t);
}

int qomni_thinker_hidden_size (const QomniThinker *t) { return t->H; }
int qomni_thinker_vocab_size (const QomniThinker *t) { return t->V; }
int qomni_thinker_max_ctx (const QomniThinker *t) { return t->max_ctx; }

int
qomni_thinker_n_past (const QomniThinker *t)
{
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu)
    return qomni_vk_thinker_n_past (t->gpu);
#endif
  return qomni_decoder_n_past (t->dec);
}

gboolean
qomni_thinker_on_gpu (const QomniThinker *t)
{
#ifdef QOMNI_HAVE_VULKAN
  return t->gpu != NULL;
#else
  return FALSE;
#endif
}

void
qomni_thinker_reset (QomniThinker *t)
{
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu)
    qomni_vk_thinker_reset (t->gpu);
#endif
  if (t->dec)
    qomni_decoder_truncate (t->dec, 0);
  t->next_pos = 0;
}

void
qomni_thinker_set_layer_hook (QomniThinker *t, QomniLayerHook hook, gpointer user)
{
  t->hook = hook;
  t->hook_user = user;
}

void
qomni_thinker_embed (const QomniThinker *t, const int *ids, int n, float *out)
{
  for (int i = 0; i < n; i++)
    qomni_weight_row_f32 (t->embed, ids[i], out + (gsize) i * t->H);
}

gboolean
qomni_thinker_scatter (const QomniThinker *t, const int *ids, int n, int token_id,
                       const float *rows, int n_rows, float *x, GError **error)
{
  int count = 0;
  for (int i = 0; i < n; i++)
    count += ids[i] == token_id;
  if (count != n_rows) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the prompt has %d placeholders of token %d but %d embedding rows were given",
                 count, token_id, n_rows);
    return FALSE;
  }
  for (int i = 0, r = 0; i < n; i++)
    if (ids[i] == token_id)
      memcpy (x + (gsize) i * t->H, rows + (gsize) r++ * t->H, sizeof (float) * t->H);
  return TRUE;
}

void
qomni_thinker_set_state_fn (QomniThinker *t, int layer, QomniThinkerStateFn fn, gpointer user)
{
  t->state_fn = fn;
  t->state_user = user;
  t->state_layer = layer;
}

/* Layer observers of one run: the caller's hook, the state capture, DeepStack. */
typedef struct {
  QomniThinker *t;
  QomniLayerHook extra;   /* DeepStack, or NULL */
  gpointer extra_user;
} Observers;

/* The decoder's hook: keeps hs[state_layer] rows for the state callback, then the
 * caller's hook (it sees the layer output itself, as the reference's hidden_states), then
 * DeepStack's addition. */
static void
observe_layer (int layer, float *hidden, int row0, int n, gpointer user)
{
  Observers *o = user;
  QomniThinker *t = o->t;
  if (t->state_fn && layer == t->state_layer - 1)
    memcpy (t->state_hidden + (gsize) row0 * t->H, hidden, sizeof (float) * (gsize) n * t->H);
  if (t->hook)
    t->hook (layer, hidden, row0, n, t->hook_user);
  if (o->extra)
    o->extra (layer, hidden, row0, n, o->extra_user);
}

/* Runs x[n, H] at pos[3, n] through the decoder, CPU or GPU; x becomes the final-normed
 * hidden states; logits (optional) of the last row. extra (DeepStack) changes the outputs
 * of layers 0 .. extra_layers − 1 after the observers have seen them. */
static gboolean
run (QomniThinker *t, float *x, const int *pos, int n, QomniLayerHook extra,
     gpointer extra_user, int extra_layers, float *logits, GError **error)
{
  const int H = t->H;
  if (t->state_fn) {
    if (t->state_rows < n) {
      /* grows to the longest prompt once; decode steps reuse it */
      g_free (t->state_embed);
      g_free (t->state_hidden);
      t->state_embed = g_new (float, (gsize) n * H);
      t->state_hidden = g_new (float, (gsize) n * H);
      t->state_rows = n;
    }
    memcpy (t->state_embed, x, sizeof (float) * (gsize) n * H);
    if (t->state_layer == 0)
      memcpy (t->state_hidden, x, sizeof (float) * (gsize) n * H);
  }
  Observers obs = { t, extra, extra_user };
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu) {
    const int L = t->cfg->thinker.text.num_hidden_layers;
    /* DeepStack: the hook adds its features onto zero rows, which gives the additions of
     * layers 0 .. extra_layers − 1 as dense [n, H] rows for the GPU to add */
    g_autofree float *adds = NULL;
    const int n_add = extra ? MIN (extra_layers, L) : 0;
    if (n_add > 0) {
      adds = g_try_new0 (float, (gsize) n_add * n * H);
      if (!adds) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                     "out of memory for the DeepStack additions");
        return FALSE;
      }
      for (int l = 0; l < n_add; l++)
        extra (l, adds + (gsize) l * n * H, 0, n, extra_user);
    }
    obs.extra = NULL;   /* added on the GPU, after the layer outputs were copied out */
    /* hooks and the talker's states need the layer outputs back from the GPU */
    const gboolean observed = t->hook || t->state_fn;
    if (observed && t->gpu_rows < n) {
      g_free (t->gpu_layers);
      t->gpu_layers = g_try_new (float, (gsize) L * n * H);
      t->gpu_rows = t->gpu_layers ? n : 0;
      if (!t->gpu_layers) {
        g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for layer outputs");
        return FALSE;
      }
    }
    int next;
    if (!qomni_vk_thinker_forward_add (t->gpu, x, n, pos, adds, n_add,
                                       observed ? t->gpu_layers : NULL, x, logits, &next,
                                       error))
      return FALSE;
    for (int l = 0; observed && l < L; l++)
      observe_layer (l, t->gpu_layers + (gsize) l * n * H, 0, n, &obs);
  } else
#endif
  {
    if (!qomni_decoder_forward (t->dec, x, n, pos, observe_layer, &obs, error))
      return FALSE;
    if (logits)
      qomni_thinker_logits (t, x + (gsize) (n - 1) * H, 1, logits);
  }
  if (t->state_fn)
    t->state_fn (t->state_embed, t->state_hidden, n, t->state_user);
  return TRUE;
}

gboolean
qomni_thinker_forward (QomniThinker *t, float *x, const int *pos, int n, GError **error)
{
  return run (t, x, pos, n, NULL, NULL, 0, NULL, error);
}

void
qomni_thinker_logits (const QomniThinker *t, const float *hidden, int n, float *logits)
{
  qomni_cpu_linear (logits, hidden, n, t->lm_head, NULL);
}

static gboolean
check_ids (const QomniThinker *t, const int *ids, int n, GError **error)
{
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= t->V) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "token id %d at position %d is outside the vocabulary (%d)", ids[i], i, t->V);
      return FALSE;
    }
  return TRUE;
}

/* DeepStack: where each visual placeholder's features come from, for the layer hook. */
typedef struct {
  QomniThinker *t;
  const QomniVisualRows **src;   /* [n]: the image or video rows of a placeholder, or NULL */
  int *row;                      /* [n]: its row within them */
  int n_layers;                  /* layers that get an addition: the most n_deepstack */
} DeepStack;

static void
deepstack_hook (int layer, float *hidden, int row0, int n, gpointer user)
{
  DeepStack *ds = user;
  QomniThinker *t = ds->t;
  if (layer >= ds->n_layers)
    return;
  const int H = t->H;
  for (int r = 0; r < n; r++) {
    const QomniVisualRows *v = ds->src[row0 + r];
    if (!v || layer >= v->n_deepstack || !v->deepstack)
      continue;
    const float *add = v->deepstack + ((gsize) layer * v->n_rows + ds->row[row0 + r]) * H;
    float *h = hidden + (gsize) r * H;
    for (int i = 0; i < H; i++)
      h[i] += add[i];
  }
}

/* Scatters one kind of visual rows and notes their DeepStack sources. */
static gboolean
scatter_visual (QomniThinker *t, const int *ids, int n, int token_id, const char *what,
                const QomniVisualRows *v, float *x, DeepStack *ds, GError **error)
{
  static const QomniVisualRows none = { 0 };
  if (!v)
    v = &none;
  if (v->n_rows > 0 && !v->embeds) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "%s rows without data", what);
    return FALSE;
  }
  if (v->n_deepstack < 0 || v->n_deepstack > t->cfg->thinker.text.num_hidden_layers) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "%d DeepStack levels for the %s, but the thinker has %d layers",
                 v->n_deepstack, what, t->cfg->thinker.text.num_hidden_layers);
    return FALSE;
  }
  if (!qomni_thinker_scatter (t, ids, n, token_id, v->embeds, v->n_rows, x, error)) {
    g_prefix_error (error, "%s: ", what);
    return FALSE;
  }
  if (v->n_rows == 0 || !v->deepstack || v->n_deepstack == 0)
    return TRUE;
  for (int i = 0, r = 0; i < n; i++)
    if (ids[i] == token_id) {
      ds->src[i] = v;
      ds->row[i] = r++;
    }
  ds->n_layers = MAX (ds->n_layers, v->n_deepstack);
  return TRUE;
}

gboolean
qomni_thinker_prefill_media (QomniThinker *t, const int *ids, int n,
                             const QomniThinkerMedia *media, float *logits, GError **error)
{
  static const QomniThinkerMedia no_media = { 0 };
  if (!media)
    media = &no_media;
  if (n <= 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT, "empty prompt");
    return FALSE;
  }
  if (!check_ids (t, ids, n, error))
    return FALSE;
  if (qomni_thinker_n_past (t) + n > qomni_thinker_max_ctx (t)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the prompt (%d tokens) does not fit the context (%d of %d used)", n,
                 qomni_thinker_n_past (t), qomni_thinker_max_ctx (t));
    return FALSE;
  }
  const QomniThinkerConfig *tc = &t->cfg->thinker;
  float *x = g_try_new (float, (gsize) n * t->H);
  int *pos = g_try_new (int, (gsize) 3 * n);
  DeepStack ds = { t, g_try_new0 (const QomniVisualRows *, n), g_try_new0 (int, n), 0 };
  gboolean ok = x && pos && ds.src && ds.row;
  if (!ok)
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "out of memory for a %d-token prompt", n);
  if (ok) {
    qomni_thinker_embed (t, ids, n, x);
    ok = qomni_thinker_scatter (t, ids, n, tc->audio_token_id, media->audio, media->n_audio, x,
                                error)
         && scatter_visual (t, ids, n, tc->image_token_id, "images", media->images, x, &ds,
                            error)
         && scatter_visual (t, ids, n, tc->video_token_id, "videos", media->videos, x, &ds,
                            error);
  }
  int next = 0;
  if (ok)
    ok = qomni_positions_build (tc, ids, n, media->grids, media->n_grids, t->next_pos, pos,
                                &next, error);
  if (ok)
    ok = run (t, x, pos, n, ds.n_layers > 0 ? deepstack_hook : NULL, &ds, ds.n_layers, logits,
              error);
  if (ok)
    t->next_pos = next;
  g_free (x);
  g_free (pos);
  g_free (ds.src);
  g_free (ds.row);
  return ok;
}

gboolean
qomni_thinker_prefill (QomniThinker *t, const int *ids, int n, const float *audio, int n_audio,
                       const QomniMediaGrid *grids, int n_grids, float *logits, GError **error)
{
  const QomniThinkerMedia media = { .audio = audio, .n_audio = n_audio, .grids = grids,
                                    .n_grids = n_grids };
  return qomni_thinker_prefill_media (t, ids, n, &media, logits, error);
}

gboolean
qomni_thinker_decode (QomniThinker *t, int id, float *logits, GError **error)
{
  if (!check_ids (t, &id, 1, error))
    return FALSE;
  if (qomni_thinker_n_past (t) + 1 > t->max_ctx) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the context is full (%d positions)", t->max_ctx);
    return FALSE;
  }
  int pos[3] = { t->next_pos, t->next_pos, t->next_pos };
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu && !t->hook && !t->state_fn) {
    /* nothing to observe: the token is embedded on the GPU, one submission */
    int next;
    if (!qomni_vk_thinker_decode (t->gpu, id, t->next_pos, logits, &next, error))
      return FALSE;
    t->next_pos++;
    return TRUE;
  }
#endif
  qomni_thinker_embed (t, &id, 1, t->row);
  if (!run (t, t->row, pos, 1, NULL, NULL, 0, logits, error))
    return FALSE;
  t->next_pos++;
  return TRUE;
}
