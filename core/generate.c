/* qomni — generation loop. */
#include "generate.h"

#include <string.h>

static gboolean
is_stop (const QomniGenerateParams *p, const QomniTokenizer *tok, int id)
{
  if (p->stop_ids[0] < 0)
    return id == qomni_tokenizer_token_id (tok, "<|im_end|>") ||
           id == qomni_tokenizer_token_id (tok, "<|endoftext|>");
  for (int i = 0; i < 4 && p->stop_ids[i] >= 0; i++)
    if (p->stop_ids[i] == id)
      return TRUE;
  return FALSE;
}

gboolean
qomni_generate (QomniThinker *t, const QomniTokenizer *tok, const int *prompt, int n_prompt,
                const float *audio, int n_audio, const QomniGenerateParams *p, QomniTokenFn fn,
                gpointer user, GArray *out_ids, QomniGenerateStats *stats, GError **error)
{
  const QomniThinkerMedia media = { .audio = audio, .n_audio = n_audio };
  return qomni_generate_media (t, tok, prompt, n_prompt, &media, p, fn, user, out_ids, stats,
                               error);
}

gboolean
qomni_generate_media (QomniThinker *t, const QomniTokenizer *tok, const int *prompt,
                      int n_prompt, const QomniThinkerMedia *media,
                      const QomniGenerateParams *p, QomniTokenFn fn, gpointer user,
                      GArray *out_ids, QomniGenerateStats *stats, GError **error)
{
  const int V = qomni_thinker_vocab_size (t);
  QomniGenerateStats st = { .prompt_tokens = n_prompt };
  float *logits = g_new (float, V);
  /* the repetition penalty sees prompt and answer, as transformers' does */
  GArray *history = g_array_sized_new (FALSE, FALSE, sizeof (int), n_prompt + p->max_tokens);
  g_array_append_vals (history, prompt, n_prompt);
  QomniSampler *sampler = qomni_sampler_new (&p->sampling);
  QomniStreamDecoder *dec = qomni_stream_decoder_new (tok, TRUE);

  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = qomni_thinker_prefill_media (t, prompt, n_prompt, media, logits, error);
  gint64 t1 = g_get_monotonic_time ();
  st.prefill_seconds = (double) (t1 - t0) / 1e6;
  while (ok && st.generated < p->max_tokens) {
    const int id = qomni_sampler_sample (sampler, logits, V, (const int *) history->data,
                                         (int) history->len, 0, 0, -1);
    st.generated++;
    g_array_append_val (history, id);
    if (out_ids)
      g_array_append_val (out_ids, id);
    if (is_stop (p, tok, id)) {
      st.stopped = TRUE;
      break;
    }
    g_autofree char *text = qomni_stream_decoder_push (dec, id);
    if (fn && !fn (id, text, user))
      break;
    if (st.generated == p->max_tokens)
      break;
    ok = qomni_thinker_decode (t, id, logits, error);
  }
  if (ok && fn) {
    g_autofree char *rest = qomni_stream_decoder_flush (dec);
    if (*rest)
      fn (-1, rest, user);
  }
  st.decode_seconds = (double) (g_get_monotonic_time () - t1) / 1e6;
  if (stats)
    *stats = st;
  qomni_stream_decoder_free (dec);
  qomni_sampler_free (sampler);
  g_array_free (history, TRUE);
  g_free (logits);
  return ok;
}
