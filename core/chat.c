/* qomni — the Qwen3-Omni (ChatML) chat template.
 *
 * The prompt is built as text, with the special tokens written out, and tokenized once with
 * special tokens split out. That is what transformers' apply_chat_template followed by the
 * processor does, so the ids match those of the reference implementation, including the
 * merges BPE makes across the boundary between a role name and its newline.
 */
#include "tokenizer.h"

struct _QomniChat {
  GString *text;
};

QomniChat *
qomni_chat_new (void)
{
  QomniChat *chat = g_new0 (QomniChat, 1);
  chat->text = g_string_new (NULL);
  return chat;
}

void
qomni_chat_free (QomniChat *chat)
{
  if (!chat)
    return;
  g_string_free (chat->text, TRUE);
  g_free (chat);
}

void
qomni_chat_begin (QomniChat *chat, const char *role)
{
  g_return_if_fail (chat != NULL && role != NULL);
  g_string_append_printf (chat->text, "<|im_start|>%s\n", role);
}

void
qomni_chat_text (QomniChat *chat, const char *text)
{
  g_return_if_fail (chat != NULL);
  if (text)
    g_string_append (chat->text, text);
}

static void
append_run (QomniChat *chat, const char *start, const char *pad, int n, const char *end)
{
  g_string_append (chat->text, start);
  for (int i = 0; i < n; i++)
    g_string_append (chat->text, pad);
  g_string_append (chat->text, end);
}

void
qomni_chat_audio (QomniChat *chat, int n_audio_tokens)
{
  g_return_if_fail (chat != NULL && n_audio_tokens >= 0);
  append_run (chat, "<|audio_start|>", "<|audio_pad|>", n_audio_tokens, "<|audio_end|>");
}

void
qomni_chat_image (QomniChat *chat, int n_image_tokens)
{
  g_return_if_fail (chat != NULL && n_image_tokens >= 0);
  append_run (chat, "<|vision_start|>", "<|image_pad|>", n_image_tokens, "<|vision_end|>");
}

void
qomni_chat_video (QomniChat *chat, int n_video_tokens)
{
  g_return_if_fail (chat != NULL && n_video_tokens >= 0);
  append_run (chat, "<|vision_start|>", "<|video_pad|>", n_video_tokens, "<|vision_end|>");
}

void
qomni_chat_video_with_audio (QomniChat *chat, int grid_t, int tokens_per_grid,
                             float second_per_grid, int position_id_per_seconds,
                             int n_audio_tokens)
{
  g_return_if_fail (chat != NULL && grid_t >= 0 && tokens_per_grid >= 0 && n_audio_tokens >= 0);
  /* The processor's order: each token carries a time in positions (a video token that of
   * its temporal patch, k · second_per_grid · position_id_per_seconds; audio token a the
   * value a) and the two streams are merged by it, the video token first on a tie. */
  g_string_append (chat->text, "<|vision_start|><|audio_start|>");
  const int n_video = grid_t * tokens_per_grid;
  int v = 0, a = 0;
  while (v < n_video || a < n_audio_tokens) {
    const float tv = (float) (v / MAX (tokens_per_grid, 1)) * second_per_grid
                     * (float) position_id_per_seconds;
    if (v < n_video && (a >= n_audio_tokens || tv <= (float) a)) {
      g_string_append (chat->text, "<|video_pad|>");
      v++;
    } else {
      g_string_append (chat->text, "<|audio_pad|>");
      a++;
    }
  }
  g_string_append (chat->text, "<|audio_end|><|vision_end|>");
}

void
qomni_chat_end (QomniChat *chat)
{
  g_return_if_fail (chat != NULL);
  g_string_append (chat->text, "<|im_end|>\n");
}

void
qomni_chat_assistant_prompt (QomniChat *chat)
{
  g_return_if_fail (chat != NULL);
  g_string_append (chat->text, "<|im_start|>assistant\n");
}

const char *
qomni_chat_text_so_far (const QomniChat *chat)
{
  g_return_val_if_fail (chat != NULL, NULL);
  return chat->text->str;
}

int *
qomni_chat_tokenize (const QomniChat *chat, const QomniTokenizer *tok, int *n_ids,
                     GError **error)
{
  g_return_val_if_fail (chat != NULL && tok != NULL && n_ids != NULL, NULL);
  return qomni_tokenizer_encode (tok, chat->text->str, chat->text->len, TRUE, n_ids, error);
}
