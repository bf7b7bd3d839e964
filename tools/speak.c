/* qomni generate --speak. */
#include "speak.h"
#include "code2wav.h"
#include "error.h"
#include "talker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct _SpeechOut {
  SpeechOutOptions opt;
  QomniModel *model;
  QomniThinker *thinker;
  QomniTalker *talker;
  QomniTalkerOptions topt;
  QomniCode2Wav *vocoder;
  QomniCode2WavStream *stream;
  int H;
  GArray *embed, *hidden;   /* float rows [positions, H] captured from the thinker */
  int n_prompt;             /* rows of the prompt (the first forward); -1 before it */
  GArray *grids;            /* QomniMediaGrid of the prompt's images/videos */
  int n_pushed;             /* answer rows handed to the talker */
  gboolean started, done;
  GArray *wav;              /* float samples */
  double vocoder_s;
  GArray *prompt_ids;
  GString *codes_text;      /* --print-codes lines, printed after the answer's text */
};

static void
capture_state (const float *embed, const float *hidden, int n, gpointer user)
{
  SpeechOut *s = user;
  if (s->n_prompt < 0)
    s->n_prompt = n;
  g_array_append_vals (s->embed, embed, (guint) n * s->H);
  if (s->hidden->len < (guint) s->n_prompt * s->H)
    g_array_append_vals (s->hidden, hidden, (guint) n * s->H);
}

SpeechOut *
speech_out_new (QomniModel *model, QomniThinker *thinker, const SpeechOutOptions *opt,
                GError **error)
{
  const QomniConfig *c = model->config;
  if (!c->talker.present || !c->code2wav.present) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s has no talker or code2wav: this model cannot speak", model->path);
    return NULL;
  }
  SpeechOut *s = g_new0 (SpeechOut, 1);
  s->opt = *opt;
  s->model = qomni_model_ref (model);
  s->thinker = thinker;
  s->H = qomni_thinker_hidden_size (thinker);
  s->n_prompt = -1;
  s->embed = g_array_new (FALSE, FALSE, sizeof (float));
  s->hidden = g_array_new (FALSE, FALSE, sizeof (float));
  s->wav = g_array_new (FALSE, FALSE, sizeof (float));
  s->codes_text = g_string_new (NULL);
  qomni_talker_options_init (&s->topt, c);
  if (opt->greedy)
    qomni_talker_options_greedy (&s->topt);
  /* the reference stops the talker after 4096 steps (talker_max_new_tokens) */
  s->topt.max_frames = opt->max_frames > 0 ? opt->max_frames : 4096;
  if (opt->speaker) {
    s->topt.speaker_codec_id = qomni_config_speaker_id (c, opt->speaker);
    if (s->topt.speaker_codec_id < 0) {
      GString *known = g_string_new (NULL);
      for (int i = 0; i < c->talker.n_speakers; i++)
        g_string_append_printf (known, "%s%s", i ? ", " : "", c->talker.speakers[i].name);
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                   "unknown speaker '%s' (this model has: %s)", opt->speaker, known->str);
      g_string_free (known, TRUE);
      speech_out_free (s);
      return NULL;
    }
  }
  s->talker = qomni_talker_new_on (model->weights, c, 8192, opt->vk, error);
  if (s->talker)
    s->vocoder = qomni_code2wav_new_on (model->weights, c, opt->vk, error);
  if (s->vocoder)
    s->stream = qomni_code2wav_stream_new (s->vocoder, opt->chunk_frames, opt->left_context,
                                           error);
  if (!s->stream) {
    speech_out_free (s);
    return NULL;
  }
  qomni_thinker_set_state_fn (thinker, c->talker.accept_hidden_layer, capture_state, s);
  return s;
}

void
speech_out_set_prompt (SpeechOut *s, const int *ids, int n, const QomniMediaGrid *grids,
                       int n_grids)
{
  if (!s->prompt_ids)
    s->prompt_ids = g_array_new (FALSE, FALSE, sizeof (int));
  g_array_set_size (s->prompt_ids, 0);
  g_array_append_vals (s->prompt_ids, ids, (guint) n);
  if (!s->grids)
    s->grids = g_array_new (FALSE, FALSE, sizeof (QomniMediaGrid));
  g_array_set_size (s->grids, 0);
  if (n_grids > 0)
    g_array_append_vals (s->grids, grids, (guint) n_grids);
}

static gboolean
vocode (SpeechOut *s, const int *frame, gboolean finish, GError **error)
{
  float *wav = NULL;
  int n = 0;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok = finish ? qomni_code2wav_stream_finish (s->stream, &wav, &n, error)
                       : qomni_code2wav_stream_push (s->stream, frame, &wav, &n, error);
  s->vocoder_s += (double) (g_get_monotonic_time () - t0) / 1e6;
  if (ok && n > 0)
    g_array_append_vals (s->wav, wav, (guint) n);
  g_free (wav);
  return ok;
}

static gboolean
run_talker (SpeechOut *s, GError **error)
{
  const int groups = qomni_talker_groups (s->talker);
  int codes[64];
  while (!s->done) {
    switch (qomni_talker_step (s->talker, codes, error)) {
      case QOMNI_TALKER_FRAME:
        if (s->opt.print_codes) {
          /* kept until the answer's text is out, so frames and text never share a line */
          g_string_append (s->codes_text, "codes:");
          for (int q = 0; q < groups; q++)
            g_string_append_printf (s->codes_text, " %d", codes[q]);
          g_string_append_c (s->codes_text, '\n');
        }
        if (!vocode (s, codes, FALSE, error))
          return FALSE;
        break;
      case QOMNI_TALKER_NEED_TEXT:
        return TRUE;
      case QOMNI_TALKER_DONE:
        s->done = TRUE;
        return TRUE;
      case QOMNI_TALKER_ERROR:
        return FALSE;
    }
  }
  return TRUE;
}

gboolean
speech_out_step (SpeechOut *s, GError **error)
{
  if (s->n_prompt < 0 || s->done)
    return TRUE;
  if (!s->started) {
    g_assert (s->prompt_ids && (int) s->prompt_ids->len == s->n_prompt);
    if (!qomni_talker_start (s->talker, (const int *) s->prompt_ids->data, s->n_prompt,
                             (const float *) s->embed->data, (const float *) s->hidden->data,
                             (const QomniMediaGrid *) s->grids->data, (int) s->grids->len,
                             &s->topt, error))
      return FALSE;
    s->started = TRUE;
    s->n_pushed = s->n_prompt;
  }
  const int rows = (int) (s->embed->len / (guint) s->H);
  for (; s->n_pushed < rows; s->n_pushed++)
    qomni_talker_push_text (s->talker, &g_array_index (s->embed, float, (gsize) s->n_pushed * s->H));
  return run_talker (s, error);
}

static gboolean
write_wav_f32 (const char *path, const float *x, guint n, int rate, GError **error)
{
  FILE *f = fopen (path, "wb");
  if (!f) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "cannot create %s: %s", path,
                 g_strerror (errno));
    return FALSE;
  }
  /* RIFF/WAVE, format 3 (IEEE float), mono, 32-bit */
  const guint32 data_bytes = n * 4;
  guint8 h[44];
  memcpy (h, "RIFF", 4);
  guint32 v32;
  guint16 v16;
#define PUT32(off, v) (v32 = GUINT32_TO_LE (v), memcpy (h + (off), &v32, 4))
#define PUT16(off, v) (v16 = GUINT16_TO_LE (v), memcpy (h + (off), &v16, 2))
  PUT32 (4, 36 + data_bytes);
  memcpy (h + 8, "WAVEfmt ", 8);
  PUT32 (16, 16);
  PUT16 (20, 3);
  PUT16 (22, 1);
  PUT32 (24, (guint32) rate);
  PUT32 (28, (guint32) rate * 4);
  PUT16 (32, 4);
  PUT16 (34, 32);
  memcpy (h + 36, "data", 4);
  PUT32 (40, data_bytes);
#undef PUT32
#undef PUT16
  gboolean ok = fwrite (h, 1, 44, f) == 44;
  for (guint i = 0; ok && i < n; i++) {
    union { float f; guint32 u; } s = { .f = x[i] };
    guint32 le = GUINT32_TO_LE (s.u);
    ok = fwrite (&le, 4, 1, f) == 1;
  }
  ok = fclose (f) == 0 && ok;
  if (!ok)
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO, "writing %s failed", path);
  return ok;
}

gboolean
speech_out_finish (SpeechOut *s, GError **error)
{
  qomni_thinker_set_state_fn (s->thinker, 0, NULL, NULL);
  if (!speech_out_step (s, error))
    return FALSE;
  if (s->started && !s->done) {
    qomni_talker_end_text (s->talker);
    if (!run_talker (s, error))
      return FALSE;
  }
  if (!vocode (s, NULL, TRUE, error))
    return FALSE;
  fputs (s->codes_text->str, stdout);
  fflush (stdout);
  if (!write_wav_f32 (s->opt.wav_path, (const float *) s->wav->data, s->wav->len, 24000, error))
    return FALSE;
  double talker_s = 0, cp_s = 0;
  qomni_talker_timing (s->talker, &talker_s, &cp_s);
  const double seconds = s->wav->len / 24000.0;
  fprintf (stderr, "speech: %d frames, %.2f s of audio in %s; per second of speech: talker %.3f s, "
           "code predictor %.3f s, vocoder %.3f s\n", qomni_talker_n_frames (s->talker), seconds,
           s->opt.wav_path, talker_s / MAX (seconds, 1e-9), cp_s / MAX (seconds, 1e-9),
           s->vocoder_s / MAX (seconds, 1e-9));
  return TRUE;
}

void
speech_out_free (SpeechOut *s)
{
  if (!s)
    return;
  if (s->stream)
    qomni_code2wav_stream_free (s->stream);
  if (s->vocoder)
    qomni_code2wav_free (s->vocoder);
  if (s->talker)
    qomni_talker_free (s->talker);
  qomni_model_unref (s->model);
  g_array_free (s->embed, TRUE);
  g_array_free (s->hidden, TRUE);
  g_array_free (s->wav, TRUE);
  g_string_free (s->codes_text, TRUE);
  if (s->prompt_ids)
    g_array_free (s->prompt_ids, TRUE);
  if (s->grids)
    g_array_free (s->grids, TRUE);
  g_free (s);
}
