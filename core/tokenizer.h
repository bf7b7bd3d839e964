/* qomni — Qwen's byte-level BPE tokenizer and the Qwen3-Omni chat template.
 *
 *   QomniTokenizer *tok = qomni_tokenizer_load_for_model ("/models/qwen3-omni", &error);
 *   int n;
 *   int *ids = qomni_tokenizer_encode (tok, "Hello world", -1, TRUE, &n, &error);
 *   char *text = qomni_tokenizer_decode (tok, ids, n, FALSE);
 *   g_free (ids); g_free (text);
 *   qomni_tokenizer_free (tok);
 *
 * Data: vocab.json + merges.txt (151643 regular tokens), the added tokens of
 * tokenizer_config.json, and Qwen3-Omni's seven extra added tokens (151669..151675), which
 * are always present. Added tokens are split out of the text before BPE.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QomniTokenizer QomniTokenizer;

/* (transfer full) Loads vocab.json, merges.txt and tokenizer_config.json from dir. */
QomniTokenizer *qomni_tokenizer_load (const char *dir, GError **error);
/* (transfer full) The model folder's own tokenizer files when it has them; otherwise the
 * tokenizer qomni ships (QOMNI_TOKENIZER_DIR, the installed data folder, the source tree). */
QomniTokenizer *qomni_tokenizer_load_for_model (const char *model_dir, GError **error);
/* The folder qomni's own tokenizer files are found in, or NULL. (transfer full) */
char *qomni_tokenizer_find_shipped_dir (void);
void qomni_tokenizer_free (QomniTokenizer *tok);

/* Number of ids (regular + added). */
int qomni_tokenizer_n_tokens (const QomniTokenizer *tok);
/* The id of a token given by its text form ("<|im_end|>", "Ġthe"), or -1. */
int qomni_tokenizer_token_id (const QomniTokenizer *tok, const char *token);
/* The bytes a token decodes to (not NUL-terminated), or NULL for an unknown id. */
const char *qomni_tokenizer_token_bytes (const QomniTokenizer *tok, int id, gsize *len);
gboolean qomni_tokenizer_is_special (const QomniTokenizer *tok, int id);
/* The id of the token that is the single byte `byte` (every byte has one). */
int qomni_tokenizer_byte_token_id (const QomniTokenizer *tok, guint8 byte);

/* (transfer full) Encodes UTF-8 text (len −1: NUL-terminated). With split_special, added
 * tokens written in the text become their ids (as transformers does for chat prompts).
 * Invalid UTF-8 is an error. Returns a g_malloc'd array of *n_ids ids (non-NULL even when
 * empty). */
int *qomni_tokenizer_encode (const QomniTokenizer *tok, const char *text, gssize len,
                             gboolean split_special, int *n_ids, GError **error);
/* (transfer full) Decodes ids to text; invalid UTF-8 byte sequences become U+FFFD. */
char *qomni_tokenizer_decode (const QomniTokenizer *tok, const int *ids, int n_ids,
                              gboolean skip_special);

/* Streaming decode: feeds ids one at a time and hands out only complete UTF-8 characters,
 * holding back the bytes of a character split across tokens. */
typedef struct _QomniStreamDecoder QomniStreamDecoder;
QomniStreamDecoder *qomni_stream_decoder_new (const QomniTokenizer *tok, gboolean skip_special);
/* (transfer full) The text that became complete with this id; "" when none. */
char *qomni_stream_decoder_push (QomniStreamDecoder *dec, int id);
/* (transfer full) What is still held back, invalid bytes as U+FFFD; resets the decoder. */
char *qomni_stream_decoder_flush (QomniStreamDecoder *dec);
void qomni_stream_decoder_free (QomniStreamDecoder *dec);

/* The chat template of Qwen3-Omni (ChatML):
 *   <|im_start|>system\n{system}<|im_end|>\n
 *   <|im_start|>user\n<|audio_start|><|audio_pad|>×A<|audio_end|>{text}<|im_end|>\n
 *   <|im_start|>assistant\n
 * Images: <|vision_start|><|image_pad|>×N<|vision_end|>; video: <|video_pad|>.
 * A prompt is built as text and tokenized once with special tokens split out, as
 * transformers' apply_chat_template + processor do. */
typedef struct _QomniChat QomniChat;
QomniChat *qomni_chat_new (void);
void qomni_chat_free (QomniChat *chat);
/* Opens a turn: role is "system", "user" or "assistant". */
void qomni_chat_begin (QomniChat *chat, const char *role);
void qomni_chat_text (QomniChat *chat, const char *text);
void qomni_chat_audio (QomniChat *chat, int n_audio_tokens);
void qomni_chat_image (QomniChat *chat, int n_image_tokens);
void qomni_chat_video (QomniChat *chat, int n_video_tokens);
/* A video with its soundtrack (use_audio_in_video): <|vision_start|><|audio_start|>, then
 * grid_t · tokens_per_grid <|video_pad|> and n_audio_tokens <|audio_pad|> merged in time
 * order (temporal patch k at k · second_per_grid · position_id_per_seconds, audio token a
 * at a; video first on a tie), then <|audio_end|><|vision_end|>. */
void qomni_chat_video_with_audio (QomniChat *chat, int grid_t, int tokens_per_grid,
                                  float second_per_grid, int position_id_per_seconds,
                                  int n_audio_tokens);
/* Closes the open turn with <|im_end|>\n. */
void qomni_chat_end (QomniChat *chat);
/* Appends the generation prompt <|im_start|>assistant\n. */
void qomni_chat_assistant_prompt (QomniChat *chat);
/* The template text built so far. (transfer none) */
const char *qomni_chat_text_so_far (const QomniChat *chat);
/* (transfer full) Tokenizes the prompt; see qomni_tokenizer_encode. */
int *qomni_chat_tokenize (const QomniChat *chat, const QomniTokenizer *tok, int *n_ids,
                          GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniTokenizer, qomni_tokenizer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniStreamDecoder, qomni_stream_decoder_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QomniChat, qomni_chat_free)

G_END_DECLS
