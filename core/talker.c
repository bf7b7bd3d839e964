/* qomni — the talker: its decoder and the code predictor on the CPU, or on the Vulkan
 * device behind the same calls (the prompt rows and text projections are built on the CPU
 * either way; they are a few small products per frame). */
#include "talker.h"
#include "code-predictor.h"
#include "decoder.h"
#include "error.h"
#include "ops-cpu.h"
#ifdef QOMNI_HAVE_VULKAN
#include "code-predictor-vk.h"
#include "thinker-vk.h"
#endif

#include <string.h>

/* # HF: talker.text_projection / hidden_projection: fc2(silu(fc1(x) + b1)) + b2 */
typedef struct {
  const QomniTensor *fc1, *fc2;  /* [I, Ht], [H, I] */
  float *b1, *b2;                /* [I], [H] */
} Proj;

struct _QomniTalker {
  const QomniConfig *cfg;
  QomniDecoder *dec;                /* the CPU decoder, or NULL on the GPU */
  QomniCodePredictor *cp;
#ifdef QOMNI_HAVE_VULKAN
  QomniVkDecoder *gpu;              /* the Vulkan decoder with codec_embedding/codec_head */
  QomniVkCodePredictor *gpu_cp;
  int z_row;                        /* the row of gpu's states that produced c0 */
#endif
  int H, Ht, I, V, G, cb, max_ctx;
  const QomniTensor *codec_embed;  /* [V, H]  # HF: talker.model.codec_embedding */
  const QomniTensor *codec_head;   /* [V, H]  # HF: talker.codec_head */
  const QomniTensor *thinker_embed;/* [Vt, Ht] for the tts_* tokens */
  Proj text_proj, hidden_proj;
  float *tts_pad, *tts_bos, *tts_eos;  /* [H] = text_projection(embed(tts_*)) */
  QomniTalkerInputHook hook;
  gpointer hook_user;
  gint64 t_talker, t_cp;               /* µs */

  /* one utterance */
  QomniTalkerOptions opt;
  QomniSampler *s_talker, *s_cp;
  gboolean started, prefilled, advance, done;
  float *prompt;                       /* [n_prompt, H]; the last row waits for A_3 */
  int *prompt_pos;                     /* [3, n_prompt] */
  int n_prompt, prompt_cap, next_pos;
  float *text;                         /* [n_text, Ht]: A_3, A_4, … (raw hs[0] rows) */
  int n_text, text_cap;
  gboolean text_ended;
  int *history;                        /* [max_ctx] codebook-0 ids generated so far */
  int n_hist, c0, n_frames, max_frames;

  /* scratch */
  float *z;                            /* [H] final-normed hidden that produced c0 */
  float *cur;                          /* [H] Σ of the last frame's 16 code embeddings */
  float *x, *mid, *logits, *row;       /* [H], [I], [V], [Ht] */
};

static gboolean
proj_load (Proj *p, const QomniWeights *w, const char *name, int I, int Ht, int H,
           GError **error)
{
  p->fc1 = qomni_weights_get (w, error, 2, (int64_t[]) { I, Ht }, "talker.%s.linear_fc1.weight",
                              name);
  if (!p->fc1)
    return FALSE;
  p->fc2 = qomni_weights_get (w, error, 2, (int64_t[]) { H, I }, "talker.%s.linear_fc2.weight",
                              name);
  if (!p->fc2)
    return FALSE;
  const QomniTensor *b1 = qomni_weights_get (w, error, 1, (int64_t[]) { I },
                                             "talker.%s.linear_fc1.bias", name);
  if (!b1)
    return FALSE;
  const QomniTensor *b2 = qomni_weights_get (w, error, 1, (int64_t[]) { H },
                                             "talker.%s.linear_fc2.bias", name);
  if (!b2)
    return FALSE;
  p->b1 = qomni_tensor_to_f32_alloc (b1);
  p->b2 = qomni_tensor_to_f32_alloc (b2);
  return TRUE;
}

/* out [H] = P(in [Ht]); uses t->mid. */
static void
proj_run (QomniTalker *t, const Proj *p, const float *in, float *out)
{
  qomni_cpu_linear (t->mid, in, 1, p->fc1, p->b1);
  qomni_cpu_silu (t->mid, t->I);
  qomni_cpu_linear (out, t->mid, 1, p->fc2, p->b2);
}

void
qomni_talker_options_init (QomniTalkerOptions *opt, const QomniConfig *cfg)
{
  int spk = qomni_config_speaker_id (cfg, "ethan");
  if (spk < 0 && cfg->talker.n_speakers > 0)
    spk = cfg->talker.speakers[0].codec_id;
  *opt = (QomniTalkerOptions) {
    .speaker_codec_id = spk,
    .talker = { .temperature = 0.9f, .top_k = 50, .top_p = 1.0f, .repetition_penalty = 1.05f },
    .code_predictor = { .temperature = 1.0f, .top_k = 50, .top_p = 0.8f,
                        .repetition_penalty = 1.0f, .seed = 1 },
    .max_frames = 0,
  };
}

void
qomni_talker_options_greedy (QomniTalkerOptions *opt)
{
  opt->talker.temperature = 0.0f;
  opt->code_predictor.temperature = 0.0f;
}

QomniTalker *
qomni_talker_new (const QomniWeights *w, const QomniConfig *cfg, int max_ctx, GError **error)
{
  return qomni_talker_new_on (w, cfg, max_ctx, NULL, error);
}

QomniTalker *
qomni_talker_new_on (const QomniWeights *w, const QomniConfig *cfg, int max_ctx, QomniVk *vk,
                     GError **error)
{
  const QomniTalkerConfig *tc = &cfg->talker;
  if (!tc->present) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING,
                 "the config has no talker_config: this checkpoint cannot speak");
    return NULL;
  }
  QomniTalker *t = g_new0 (QomniTalker, 1);
  t->cfg = cfg;
  t->H = tc->text.hidden_size;
  t->Ht = cfg->thinker.text.hidden_size;
  t->I = tc->text.intermediate_size;  /* the projections' width (pitfall 27) */
  t->V = tc->text.vocab_size;
  t->G = tc->num_code_groups;
  t->cb = tc->code_predictor.vocab_size;
  t->max_ctx = max_ctx;
  if (max_ctx < 16) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "talker context of %d positions is too small", max_ctx);
    goto fail;
  }
  if (t->cb <= 0 || t->cb > t->V || tc->codec_eos_id < 0 || tc->codec_eos_id >= t->V) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "talker_config: codebook size %d, codec EOS %d and vocabulary %d disagree",
                 t->cb, tc->codec_eos_id, t->V);
    goto fail;
  }
  t->codec_embed = qomni_weights_get (w, error, 2, (int64_t[]) { t->V, t->H },
                                      "talker.model.codec_embedding.weight");
  if (!t->codec_embed)
    goto fail;
  t->codec_head = qomni_weights_get (w, error, 2, (int64_t[]) { t->V, t->H },
                                     "talker.codec_head.weight");
  if (!t->codec_head)
    goto fail;
  t->thinker_embed = qomni_weights_get (w, error, 2,
                                        (int64_t[]) { cfg->thinker.text.vocab_size, t->Ht },
                                        "thinker.model.embed_tokens.weight");
  if (!t->thinker_embed)
    goto fail;
  if (!proj_load (&t->text_proj, w, "text_projection", t->I, t->Ht, t->H, error) ||
      !proj_load (&t->hidden_proj, w, "hidden_projection", t->I, t->Ht, t->H, error))
    goto fail;
  if (vk) {
#ifdef QOMNI_HAVE_VULKAN
    const QomniVkStackNames names = { .prefix = "talker.model",
                                      .embed = "talker.model.codec_embedding.weight",
                                      .head = "talker.codec_head.weight" };
    t->gpu = qomni_vk_decoder_new (vk, w, &tc->text, &names, QOMNI_DTYPE_BF16, max_ctx,
                                   MIN (512, max_ctx), error);
    if (!t->gpu)
      goto fail;
    t->gpu_cp = qomni_vk_code_predictor_new (vk, w, tc, QOMNI_DTYPE_BF16, error);
    if (!t->gpu_cp)
      goto fail;
#else
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "built without Vulkan");
    goto fail;
#endif
  } else {
    t->dec = qomni_decoder_new (w, &tc->text, "talker.model", max_ctx, MIN (512, max_ctx),
                                error);
    if (!t->dec)
      goto fail;
    t->cp = qomni_code_predictor_new (w, cfg, error);
    if (!t->cp)
      goto fail;
  }

  t->z = g_new (float, t->H);
  t->cur = g_new (float, t->H);
  t->x = g_new (float, t->H);
  t->mid = g_new (float, MAX (t->I, 1));
  t->logits = g_new (float, t->V);
  t->row = g_new (float, t->Ht);
  t->history = g_new (int, max_ctx);
  t->tts_pad = g_new (float, t->H);
  t->tts_bos = g_new (float, t->H);
  t->tts_eos = g_new (float, t->H);
  const int ids[3] = { cfg->tts_pad_token_id, cfg->tts_bos_token_id, cfg->tts_eos_token_id };
  float *dst[3] = { t->tts_pad, t->tts_bos, t->tts_eos };
  for (int i = 0; i < 3; i++) {
    if (ids[i] < 0 || ids[i] >= cfg->thinker.text.vocab_size) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "tts token id %d is outside the thinker vocabulary", ids[i]);
      goto fail;
    }
    qomni_weight_row_f32 (t->thinker_embed, ids[i], t->row);
    proj_run (t, &t->text_proj, t->row, dst[i]);
  }
  return t;
fail:
  qomni_talker_free (t);
  return NULL;
}

void
qomni_talker_free (QomniTalker *t)
{
  if (!t)
    return;
  qomni_decoder_free (t->dec);
  qomni_code_predictor_free (t->cp);
#ifdef QOMNI_HAVE_VULKAN
  qomni_vk_code_predictor_free (t->gpu_cp);
  qomni_vk_decoder_free (t->gpu);
#endif
  qomni_sampler_free (t->s_talker);
  qomni_sampler_free (t->s_cp);
  Proj *p[2] = { &t->text_proj, &t->hidden_proj };
  for (int i = 0; i < 2; i++) {
    g_free (p[i]->b1);
    g_free (p[i]->b2);
  }
  float *f[] = { t->tts_pad, t->tts_bos, t->tts_eos, t->prompt, t->text, t->z, t->cur, t->x,
                 t->mid, t->logits, t->row };
  for (guint i = 0; i < G_N_ELEMENTS (f); i++)
    g_free (f[i]);
  g_free (t->prompt_pos);
  g_free (t->history);
  g_free (t);
}

int qomni_talker_groups (const QomniTalker *t) { return t->G; }

gboolean
qomni_talker_on_gpu (const QomniTalker *t)
{
#ifdef QOMNI_HAVE_VULKAN
  return t->gpu != NULL;
#else
  return FALSE;
#endif
}
int qomni_talker_thinker_hidden_size (const QomniTalker *t) { return t->Ht; }
int qomni_talker_n_frames (const QomniTalker *t) { return t->n_frames; }

void
qomni_talker_set_input_hook (QomniTalker *t, QomniTalkerInputHook hook, gpointer user)
{
  t->hook = hook;
  t->hook_user = user;
}

void
qomni_talker_timing (const QomniTalker *t, double *talker_s, double *cp_s)
{
  if (talker_s)
    *talker_s = t->t_talker / 1e6;
  if (cp_s)
    *cp_s = t->t_cp / 1e6;
}

/* y [H] += codec_embedding(id) */
static void
add_codec (QomniTalker *t, float *y, int id)
{
  qomni_weight_row_f32 (t->codec_embed, id, t->x);
  qomni_cpu_add (y, t->x, t->H);
}

static gboolean
is_media_pad (const QomniConfig *c, int id)
{
  return id == c->thinker.audio_token_id || id == c->thinker.image_token_id ||
         id == c->thinker.video_token_id;
}

static void
text_append (QomniTalker *t, const float *row)
{
  if (t->n_text == t->text_cap) {
    t->text_cap = MAX (16, 2 * t->text_cap);
    t->text = g_renew (float, t->text, (gsize) t->text_cap * t->Ht);
  }
  memcpy (t->text + (gsize) t->n_text++ * t->Ht, row, sizeof (float) * t->Ht);
}

gboolean
qomni_talker_start (QomniTalker *t, const int *ids, int n, const float *embed,
                    const float *hidden, const QomniMediaGrid *grids, int n_grids,
                    const QomniTalkerOptions *opt, GError **error)
{
  const QomniConfig *c = t->cfg;
  const QomniTalkerConfig *tc = &c->talker;
  const int H = t->H, Ht = t->Ht;
  t->started = t->prefilled = t->advance = t->done = FALSE;
  t->n_text = t->n_hist = t->n_frames = 0;
  t->text_ended = FALSE;
  if (t->dec)
    qomni_decoder_truncate (t->dec, 0);
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu)
    qomni_vk_decoder_reset (t->gpu);
#endif

  if (opt->speaker_codec_id < 0 || opt->speaker_codec_id >= t->V) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "speaker codec id %d is outside the talker vocabulary (%d)",
                 opt->speaker_codec_id, t->V);
    return FALSE;
  }
  /* a = the last <|im_start|> followed by `assistant` */
  int a = -1;
  for (int i = 0; i + 1 < n; i++)
    if (ids[i] == c->im_start_token_id && ids[i + 1] == c->assistant_token_id)
      a = i;
  if (a < 0 || a + 3 > n) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the prompt does not end with an assistant header (<|im_start|>assistant\\n)");
    return FALSE;
  }

  /* User part (§8.2): every position governed by an <|im_start|>user. Media items are
   * counted over the whole prompt so that the user turns' grids can be picked out. */
  int U = 0, g = 0, n_user_grids = 0;
  gboolean in_user = FALSE;
  QomniMediaGrid *ugrids = g_new (QomniMediaGrid, MAX (n_grids, 1));
  for (int i = 0; i < a; i++) {
    if (ids[i] == c->im_start_token_id)
      in_user = i + 1 < n && ids[i + 1] == c->user_token_id;
    const gboolean visual = ids[i] == c->thinker.image_token_id ||
                            ids[i] == c->thinker.video_token_id;
    if (visual && (i == 0 || ids[i - 1] != ids[i])) {
      if (g < n_grids && in_user)
        ugrids[n_user_grids++] = grids[g];
      g++;
    }
    if (!in_user)
      continue;
    if (is_media_pad (c, ids[i]) && !hidden) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "the prompt has media placeholders but no thinker hidden states were given");
      g_free (ugrids);
      return FALSE;
    }
    U++;
  }

  t->n_prompt = U + 9;
  if (t->n_prompt > t->max_ctx) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "the talker prompt (%d positions) does not fit its context (%d)", t->n_prompt,
                 t->max_ctx);
    g_free (ugrids);
    return FALSE;
  }
  if (t->n_prompt > t->prompt_cap) {
    t->prompt_cap = t->n_prompt;
    t->prompt = g_renew (float, t->prompt, (gsize) t->prompt_cap * H);
    t->prompt_pos = g_renew (int, t->prompt_pos, 3 * (gsize) t->prompt_cap);
  }
  int *pids = g_new (int, t->n_prompt);
  int r = 0;
  in_user = FALSE;
  for (int i = 0; i < a; i++) {
    if (ids[i] == c->im_start_token_id)
      in_user = i + 1 < n && ids[i + 1] == c->user_token_id;
    if (!in_user)
      continue;
    if (is_media_pad (c, ids[i]))
      proj_run (t, &t->hidden_proj, hidden + (gsize) i * Ht, t->prompt + (gsize) r * H);
    else
      proj_run (t, &t->text_proj, embed + (gsize) i * Ht, t->prompt + (gsize) r * H);
    pids[r++] = ids[i];
  }
  /* Assistant part: A_0..A_2, then tts_pad/tts_bos + codec control ids; row 8 (A_3 +
   * codec_bos) is completed when the first answer row is there. */
  float *as = t->prompt + (gsize) U * H;
  for (int k = 0; k < 3; k++)
    proj_run (t, &t->text_proj, embed + (gsize) (a + k) * Ht, as + (gsize) k * H);
  const int codec_ids[5] = { tc->codec_nothink_id, tc->codec_think_bos_id, tc->codec_think_eos_id,
                             opt->speaker_codec_id, tc->codec_pad_id };
  for (int k = 3; k < 8; k++) {
    memcpy (as + (gsize) k * H, k == 7 ? t->tts_bos : t->tts_pad, sizeof (float) * H);
    add_codec (t, as + (gsize) k * H, codec_ids[k - 3]);
  }
  for (int k = 0; k < 9; k++)
    pids[U + k] = c->tts_pad_token_id;
  int next = 0;
  gboolean ok = qomni_positions_build (&c->thinker, pids, t->n_prompt, ugrids, n_user_grids, 0,
                                       t->prompt_pos, &next, error);
  g_free (pids);
  g_free (ugrids);
  if (!ok)
    return FALSE;
  t->next_pos = next;

  /* prompt positions after the assistant header are already answer text */
  for (int i = a + 3; i < n; i++)
    text_append (t, embed + (gsize) i * Ht);

  qomni_sampler_free (t->s_talker);
  qomni_sampler_free (t->s_cp);
  t->s_talker = qomni_sampler_new (&opt->talker);
  t->s_cp = qomni_sampler_new (&opt->code_predictor);
  t->opt = *opt;
  /* c0 of frame F needs n_prompt + F − 1 positions */
  const int fit = t->max_ctx - t->n_prompt + 1;
  t->max_frames = opt->max_frames > 0 ? MIN (opt->max_frames, fit) : fit;
  t->started = TRUE;
  return TRUE;
}

void
qomni_talker_push_text (QomniTalker *t, const float *row)
{
  g_return_if_fail (t->started && !t->text_ended);
  text_append (t, row);
}

void
qomni_talker_end_text (QomniTalker *t)
{
  t->text_ended = TRUE;
}

/* Runs n rows x [n, H] at pos [3, n] through the talker's decoder; on the CPU x becomes
 * the final-normed states and z their last row; on the GPU they stay there and
 * t->logits = codec_head(z). */
static gboolean
talker_forward (QomniTalker *t, float *x, int n, const int *pos, GError **error)
{
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu) {
    const int B = MIN (512, t->max_ctx);
    t->z_row = (n - 1) % B;   /* the row of the last slice */
    return qomni_vk_decoder_forward (t->gpu, x, n, pos, NULL, NULL, t->logits, NULL, error);
  }
#endif
  if (!qomni_decoder_forward (t->dec, x, n, pos, NULL, NULL, error))
    return FALSE;
  memcpy (t->z, x + (gsize) (n - 1) * t->H, sizeof (float) * t->H);
  qomni_cpu_linear (t->logits, t->z, 1, t->codec_head, NULL);
  return TRUE;
}

/* t->logits → c0 with the talker's penalty and suppression (§8.3). */
static void
sample_c0 (QomniTalker *t)
{
  const int eos = t->cfg->talker.codec_eos_id;
  t->c0 = qomni_sampler_sample (t->s_talker, t->logits, t->V, t->history, t->n_hist, t->cb,
                                t->V, eos);
  t->history[t->n_hist++] = t->c0;
}

QomniTalkerStatus
qomni_talker_step (QomniTalker *t, int *codes, GError **error)
{
  const int H = t->H;
  if (!t->started) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "qomni_talker_step before qomni_talker_start");
    return QOMNI_TALKER_ERROR;
  }
  if (t->done)
    return QOMNI_TALKER_DONE;

  gint64 t0 = g_get_monotonic_time ();
  if (!t->prefilled) {
    if (t->n_text == 0) {
      if (!t->text_ended)
        return QOMNI_TALKER_NEED_TEXT;
      t->done = TRUE;  /* no answer at all: nothing to say */
      return QOMNI_TALKER_DONE;
    }
    /* row 8 of the assistant part: A_3 + codec_bos */
    float *last = t->prompt + (gsize) (t->n_prompt - 1) * H;
    proj_run (t, &t->text_proj, t->text, last);
    add_codec (t, last, t->cfg->talker.codec_bos_id);
    if (t->hook)
      t->hook (t->prompt, t->n_prompt, H, t->hook_user);
    if (!talker_forward (t, t->prompt, t->n_prompt, t->prompt_pos, error))
      return QOMNI_TALKER_ERROR;
    sample_c0 (t);
    t->prefilled = TRUE;
  } else if (t->advance) {
    if (t->n_frames >= t->max_frames) {
      t->done = TRUE;
      return QOMNI_TALKER_DONE;
    }
    /* step k = n_frames consumes trailing[k − 1] = answer row k, then tts_eos, tts_pad */
    const int k = t->n_frames;
    memcpy (t->x, t->cur, sizeof (float) * H);
    if (k < t->n_text) {
      proj_run (t, &t->text_proj, t->text + (gsize) k * t->Ht, t->z);
      qomni_cpu_add (t->x, t->z, H);
    } else if (!t->text_ended) {
      return QOMNI_TALKER_NEED_TEXT;
    } else {
      qomni_cpu_add (t->x, k == t->n_text ? t->tts_eos : t->tts_pad, H);
    }
    if (t->hook)
      t->hook (t->x, 1, H, t->hook_user);
    const int p = t->next_pos + k - 1;
    int pos[3] = { p, p, p };
    if (!talker_forward (t, t->x, 1, pos, error))
      return QOMNI_TALKER_ERROR;
    sample_c0 (t);
    t->advance = FALSE;
  }
  if (t->c0 == t->cfg->talker.codec_eos_id || t->n_frames >= t->max_frames) {
    t->t_talker += g_get_monotonic_time () - t0;
    t->done = TRUE;
    return QOMNI_TALKER_DONE;
  }

  /* codebooks 1..15 and the next input's code part: C(c0) + Σ CP tables */
  gint64 t1 = g_get_monotonic_time ();
  t->t_talker += t1 - t0;
  codes[0] = t->c0;
#ifdef QOMNI_HAVE_VULKAN
  if (t->gpu) {
    /* z and C(c0) stay on the GPU; cur comes back as C(c0) + Σ CP tables */
    if (!qomni_vk_code_predictor_run (t->gpu_cp, t->gpu, t->z_row, t->c0, t->s_cp, codes,
                                      t->cur, error))
      return QOMNI_TALKER_ERROR;
  } else
#endif
  {
    qomni_weight_row_f32 (t->codec_embed, t->c0, t->cur);
    memcpy (t->x, t->cur, sizeof (float) * H);
    if (!qomni_code_predictor_run (t->cp, t->z, t->x, t->s_cp, codes, t->cur, error))
      return QOMNI_TALKER_ERROR;
  }
  t->t_cp += g_get_monotonic_time () - t1;
  t->n_frames++;
  t->advance = TRUE;
  return QOMNI_TALKER_FRAME;
}

gboolean
qomni_talker_generate (QomniTalker *t, const int *ids, int n_prompt, const float *embed,
                       const float *hidden, int n_answer, const QomniMediaGrid *grids,
                       int n_grids, const QomniTalkerOptions *opt, int **codes_out,
                       int *n_frames, GError **error)
{
  *codes_out = NULL;
  *n_frames = 0;
  if (!qomni_talker_start (t, ids, n_prompt, embed, hidden, grids, n_grids, opt, error))
    return FALSE;
  for (int i = 0; i < n_answer; i++)
    qomni_talker_push_text (t, embed + (gsize) (n_prompt + i) * t->Ht);
  qomni_talker_end_text (t);
  GArray *frames = g_array_new (FALSE, FALSE, sizeof (int));
  int *codes = g_new (int, t->G);
  QomniTalkerStatus st;
  while ((st = qomni_talker_step (t, codes, error)) == QOMNI_TALKER_FRAME)
    g_array_append_vals (frames, codes, t->G);
  g_free (codes);
  g_assert (st != QOMNI_TALKER_NEED_TEXT);
  if (st == QOMNI_TALKER_ERROR) {
    g_array_free (frames, TRUE);
    return FALSE;
  }
  const int F = (int) frames->len / t->G;
  if (F > 0) {
    /* frame-major → codebook-major [G, F] */
    int *out = g_new (int, (gsize) t->G * F);
    const int *fm = (const int *) frames->data;
    for (int f = 0; f < F; f++)
      for (int q = 0; q < t->G; q++)
        out[(gsize) q * F + f] = fm[(gsize) f * t->G + q];
    *codes_out = out;
  }
  *n_frames = F;
  g_array_free (frames, TRUE);
  return TRUE;
}
