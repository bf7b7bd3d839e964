/* qomni — the code predictor on the CPU. */
#include "code-predictor.h"
#include "decoder.h"
#include "error.h"
#include "ops-cpu.h"

#include <string.h>

struct _QomniCodePredictor {
  QomniDecoder *dec;
  int H, V, G;
  const QomniTensor **embed;  /* [G−1] × [V, H]   # HF: code_predictor.model.codec_embedding.j */
  const QomniTensor **head;   /* [G−1] × [V, H]   # HF: code_predictor.lm_head.j */
  float *x;                   /* [2, H] */
  float *emb;                 /* [H] */
  float *logits;              /* [V] */
};

QomniCodePredictor *
qomni_code_predictor_new (const QomniWeights *w, const QomniConfig *cfg, GError **error)
{
  const QomniTextConfig *tc = &cfg->talker.code_predictor;
  QomniCodePredictor *p = g_new0 (QomniCodePredictor, 1);
  p->H = tc->hidden_size;
  p->V = tc->vocab_size;
  p->G = cfg->talker.num_code_groups;
  if (p->G < 2 || tc->hidden_size != cfg->talker.text.hidden_size) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "talker_config: num_code_groups %d and code predictor width %d (need ≥ 2 "
                 "groups and the talker's width %d)", p->G, tc->hidden_size,
                 cfg->talker.text.hidden_size);
    goto fail;
  }
  p->embed = g_new0 (const QomniTensor *, p->G - 1);
  p->head = g_new0 (const QomniTensor *, p->G - 1);
  for (int j = 0; j < p->G - 1; j++) {
    p->embed[j] = qomni_weights_get (w, error, 2, (int64_t[]) { p->V, p->H },
                                     "talker.code_predictor.model.codec_embedding.%d.weight", j);
    if (!p->embed[j])
      goto fail;
    p->head[j] = qomni_weights_get (w, error, 2, (int64_t[]) { p->V, p->H },
                                    "talker.code_predictor.lm_head.%d.weight", j);
    if (!p->head[j])
      goto fail;
  }
  /* G positions per frame: the 2-row prefill, then G − 2 single rows. */
  p->dec = qomni_decoder_new (w, tc, "talker.code_predictor.model", p->G, 2, error);
  if (!p->dec)
    goto fail;
  p->x = g_new (float, 2 * (gsize) p->H);
  p->emb = g_new (float, p->H);
  p->logits = g_new (float, p->V);
  return p;
fail:
  qomni_code_predictor_free (p);
  return NULL;
}

void
qomni_code_predictor_free (QomniCodePredictor *p)
{
  if (!p)
    return;
  qomni_decoder_free (p->dec);
  g_free (p->embed);
  g_free (p->head);
  g_free (p->x);
  g_free (p->emb);
  g_free (p->logits);
  g_free (p);
}

int
qomni_code_predictor_groups (const QomniCodePredictor *p)
{
  return p->G;
}

gboolean
qomni_code_predictor_run (QomniCodePredictor *p, const float *z, const float *c0_embed,
                          QomniSampler *sampler, int *codes, float *embed_sum, GError **error)
{
  const int H = p->H;
  /* fresh cache every frame (pitfall 21) */
  qomni_decoder_truncate (p->dec, 0);
  memcpy (p->x, z, sizeof (float) * H);
  memcpy (p->x + H, c0_embed, sizeof (float) * H);
  int pos[6] = { 0, 1, 0, 1, 0, 1 };
  if (!qomni_decoder_forward (p->dec, p->x, 2, pos, NULL, NULL, error))
    return FALSE;
  const float *out = p->x + H;   /* last position, final-normed */
  for (int g = 1; g < p->G; g++) {
    if (g > 1) {
      /* feed codebook g−1 through its table codec_embedding.{g−2} at position g */
      int pos1[3] = { g, g, g };
      memcpy (p->x, p->emb, sizeof (float) * H);
      if (!qomni_decoder_forward (p->dec, p->x, 1, pos1, NULL, NULL, error))
        return FALSE;
      out = p->x;
    }
    qomni_cpu_linear (p->logits, out, 1, p->head[g - 1], NULL);
    codes[g] = qomni_sampler_sample (sampler, p->logits, p->V, NULL, 0, 0, 0, -1);
    qomni_weight_row_f32 (p->embed[g - 1], codes[g], p->emb);
    qomni_cpu_add (embed_sum, p->emb, H);
  }
  return TRUE;
}
