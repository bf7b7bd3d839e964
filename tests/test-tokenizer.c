/* qomni — tests of the byte-level BPE tokenizer, the stream decoder and the chat template.
 *
 * The reference ids are llama.cpp's Qwen2 tokenizer test vectors (fixtures/tokenizer, see
 * SOURCE.md there) and the Qwen3-Omni chat prompt ids of the project brief. */
#include "tokenizer.h"
#include "error.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static QomniTokenizer *tok;
static char *fixture_dir;

static char *
find_fixture_dir (void)
{
  const char *shared = g_getenv ("QOMNI_SHARED_DIR");
  if (shared)
    return g_build_filename (shared, "fixtures", "tokenizer", NULL);
  const char *source = g_getenv ("QOMNI_SOURCE_DIR");
  return g_build_filename (source ? source : ".", "..", "shared", "fixtures", "tokenizer",
                           NULL);
}

static int *
encode (const char *text, gboolean split_special, int *n)
{
  g_autoptr (GError) error = NULL;
  int *ids = qomni_tokenizer_encode (tok, text, -1, split_special, n, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ids);
  return ids;
}

static void
assert_ids (const int *ids, int n, const int *want, int n_want)
{
  g_assert_cmpmem (ids, n * sizeof (int), want, n_want * sizeof (int));
}

/* All 46 llama.cpp vectors encode to the expected ids and decode back to their input. */
static void
test_vectors (void)
{
  g_autofree char *inp_path = g_build_filename (fixture_dir, "ggml-vocab-qwen2.gguf.inp", NULL);
  g_autofree char *out_path = g_build_filename (fixture_dir, "ggml-vocab-qwen2.gguf.out", NULL);
  g_autofree char *inp = NULL, *outp = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (inp_path, &inp, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (out_path, &outp, NULL, &error));
  g_assert_no_error (error);

  /* Each input is followed by "\n__ggml_vocab_test__\n"; each output is one line. */
  g_auto (GStrv) inputs = g_strsplit (inp, "\n__ggml_vocab_test__\n", -1);
  g_auto (GStrv) outputs = g_strsplit (outp, "\n", -1);
  guint n_inputs = g_strv_length (inputs);
  g_assert_cmpstr (inputs[n_inputs - 1], ==, "");
  g_assert_cmpuint (n_inputs - 1, ==, 46);
  g_assert_cmpuint (g_strv_length (outputs), >=, 46);

  for (guint t = 0; t < 46; t++) {
    g_autoptr (GArray) want = g_array_new (FALSE, FALSE, sizeof (int));
    g_auto (GStrv) fields = g_strsplit (outputs[t], " ", -1);
    for (char **f = fields; *f; f++) {
      if (!**f)
        continue;
      gint64 v;
      g_assert_true (g_ascii_string_to_signed (*f, 10, 0, G_MAXINT, &v, NULL));
      int id = (int) v;
      g_array_append_val (want, id);
    }
    int n;
    g_autofree int *ids = encode (inputs[t], FALSE, &n);
    if (n != (int) want->len || memcmp (ids, want->data, n * sizeof (int)) != 0)
      g_test_message ("vector %u (\"%s\") differs", t, inputs[t]);
    assert_ids (ids, n, (const int *) want->data, want->len);

    g_autofree char *back = qomni_tokenizer_decode (tok, ids, n, FALSE);
    g_assert_cmpstr (back, ==, inputs[t]);
  }
}

static void
test_special_tokens (void)
{
  int n;
  g_autofree int *ids = encode ("<|im_start|>user\nhi<|im_end|>", TRUE, &n);
  const int want[] = { 151644, 872, 198, 6023, 151645 };
  assert_ids (ids, n, want, G_N_ELEMENTS (want));
  g_autofree char *back = qomni_tokenizer_decode (tok, ids, n, FALSE);
  g_assert_cmpstr (back, ==, "<|im_start|>user\nhi<|im_end|>");
  g_autofree char *skipped = qomni_tokenizer_decode (tok, ids, n, TRUE);
  g_assert_cmpstr (skipped, ==, "user\nhi");

  /* Qwen3-Omni's extras are present although tokenizer_config.json (Qwen3's) lacks them. */
  static const struct {
    int id;
    const char *content;
  } extras[] = {
    { 151669, "<|audio_start|>" },   { 151670, "<|audio_end|>" },
    { 151671, "<tts_pad>" },         { 151672, "<tts_text_bos>" },
    { 151673, "<tts_text_eod>" },    { 151674, "<tts_text_bos_single>" },
    { 151675, "<|audio_pad|>" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (extras); i++) {
    g_assert_cmpint (qomni_tokenizer_token_id (tok, extras[i].content), ==, extras[i].id);
    g_assert_true (qomni_tokenizer_is_special (tok, extras[i].id));
    int m;
    g_autofree int *one = encode (extras[i].content, TRUE, &m);
    assert_ids (one, m, &extras[i].id, 1);
  }
  g_assert_cmpint (qomni_tokenizer_n_tokens (tok), ==, 151676);

  /* <think> is an added token that is not special: split out, kept by skip_special. */
  g_autofree int *think = encode ("<think>ok</think>", TRUE, &n);
  const int want_think[] = { 151667, 562, 151668 };
  assert_ids (think, n, want_think, G_N_ELEMENTS (want_think));
  g_assert_false (qomni_tokenizer_is_special (tok, 151667));
  g_autofree char *think_text = qomni_tokenizer_decode (tok, think, n, TRUE);
  g_assert_cmpstr (think_text, ==, "<think>ok</think>");
}

static void
test_no_split_special (void)
{
  const char *text = "<|im_end|>";
  int n;
  g_autofree int *ids = encode (text, FALSE, &n);
  g_assert_cmpint (n, >, 1);
  for (int i = 0; i < n; i++)
    g_assert_cmpint (ids[i], <, 151643);
  g_autofree char *back = qomni_tokenizer_decode (tok, ids, n, FALSE);
  g_assert_cmpstr (back, ==, text);
}

static void
test_token_lookup (void)
{
  g_assert_cmpint (qomni_tokenizer_token_id (tok, "Ġthe"), ==, 279);
  g_assert_cmpint (qomni_tokenizer_token_id (tok, "<|im_end|>"), ==, 151645);
  g_assert_cmpint (qomni_tokenizer_token_id (tok, "no such token, surely"), ==, -1);
  gsize len;
  const char *b = qomni_tokenizer_token_bytes (tok, 279, &len);
  g_assert_cmpmem (b, len, " the", 4);
  g_assert_null (qomni_tokenizer_token_bytes (tok, -1, &len));
  g_assert_null (qomni_tokenizer_token_bytes (tok, 151676, &len));
  /* GPT-2's byte table: '!' is the first printable byte and token 0; byte 0 is "Ā" (U+0100). */
  g_assert_cmpint (qomni_tokenizer_byte_token_id (tok, '!'), ==, 0);
  g_assert_cmpint (qomni_tokenizer_byte_token_id (tok, 0), ==,
                   qomni_tokenizer_token_id (tok, "Ā"));
  g_assert_cmpint (qomni_tokenizer_byte_token_id (tok, ' '), ==,
                   qomni_tokenizer_token_id (tok, "Ġ"));
}

/* NFC: a decomposed "é" encodes like the composed one. */
static void
test_nfc (void)
{
  int n1, n2;
  g_autofree int *composed = encode ("caf\xc3\xa9", FALSE, &n1);
  g_autofree int *decomposed = encode ("cafe\xcc\x81", FALSE, &n2);
  assert_ids (decomposed, n2, composed, n1);
  g_autofree char *back = qomni_tokenizer_decode (tok, decomposed, n2, FALSE);
  g_assert_cmpstr (back, ==, "caf\xc3\xa9");
}

/* Encoding and decoding of text with NUL bytes: a NUL is an ordinary byte token. */
static void
test_nul_bytes (void)
{
  const char text[] = "a\0b";
  int n;
  g_autoptr (GError) error = NULL;
  g_autofree int *ids = qomni_tokenizer_encode (tok, text, 3, FALSE, &n, &error);
  g_assert_no_error (error);
  const int want[] = { 64, qomni_tokenizer_byte_token_id (tok, 0), 65 };
  assert_ids (ids, n, want, G_N_ELEMENTS (want));
}

static void
test_invalid_utf8 (void)
{
  const char *bad[] = { "abc\xff", "\xc3", "\xed\xa0\x80", "\xf0\x9f\x98", "\xc0\xaf" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    int n = -1;
    int *ids = qomni_tokenizer_encode (tok, bad[i], -1, TRUE, &n, &error);
    g_assert_null (ids);
    g_assert_cmpint (n, ==, 0);
    g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  }
  /* Empty input is not an error: an empty, non-NULL array. */
  int n = -1;
  g_autofree int *none = encode ("", TRUE, &n);
  g_assert_cmpint (n, ==, 0);
}

/* Feeds ids one at a time; checks each chunk is valid UTF-8 and the whole is text. */
static void
check_stream (const int *ids, int n, const char *text)
{
  QomniStreamDecoder *dec = qomni_stream_decoder_new (tok, FALSE);
  g_autoptr (GString) all = g_string_new (NULL);
  for (int i = 0; i < n; i++) {
    g_autofree char *chunk = qomni_stream_decoder_push (dec, ids[i]);
    g_assert_true (g_utf8_validate (chunk, -1, NULL));
    g_string_append (all, chunk);
  }
  g_autofree char *rest = qomni_stream_decoder_flush (dec);
  g_assert_cmpstr (rest, ==, "");
  g_assert_cmpstr (all->str, ==, text);
  qomni_stream_decoder_free (dec);
}

static void
test_stream_decode (void)
{
  /* Rare CJK characters and emoji are split over byte-level tokens by BPE. */
  const char *texts[] = {
    "你好😀", "\xf0\x9f\xa6\x80\xf0\x9f\xa7\xac 龘靐齉 🫠!", "Grüße, 世界 🌍🚀",
  };
  gboolean saw_split = FALSE;
  for (guint t = 0; t < G_N_ELEMENTS (texts); t++) {
    int n;
    g_autofree int *ids = encode (texts[t], FALSE, &n);
    for (int i = 0; i < n; i++) {
      gsize len;
      const char *b = qomni_tokenizer_token_bytes (tok, ids[i], &len);
      if (!g_utf8_validate_len (b, len, NULL))
        saw_split = TRUE;
    }
    check_stream (ids, n, texts[t]);
  }
  /* The test is only meaningful if some token held part of a character. */
  g_assert_true (saw_split);

  /* 😀 = F0 9F 98 80 fed as four single-byte tokens: nothing until the last byte. */
  const guint8 emoji[] = { 0xf0, 0x9f, 0x98, 0x80 };
  QomniStreamDecoder *dec = qomni_stream_decoder_new (tok, FALSE);
  for (int i = 0; i < 4; i++) {
    g_autofree char *chunk = qomni_stream_decoder_push (dec, qomni_tokenizer_byte_token_id (tok,
                                                                                       emoji[i]));
    g_assert_cmpstr (chunk, ==, i < 3 ? "" : "😀");
  }

  /* A character cut short by a byte that cannot continue it becomes U+FFFD. */
  g_autofree char *c1 = qomni_stream_decoder_push (dec, qomni_tokenizer_byte_token_id (tok, 0xe4));
  g_assert_cmpstr (c1, ==, "");
  g_autofree char *c2 = qomni_stream_decoder_push (dec, qomni_tokenizer_byte_token_id (tok, 'a'));
  g_assert_cmpstr (c2, ==, "\xef\xbf\xbd" "a");
  /* A byte that can never start a character is replaced at once. */
  g_autofree char *c3 = qomni_stream_decoder_push (dec, qomni_tokenizer_byte_token_id (tok, 0xff));
  g_assert_cmpstr (c3, ==, "\xef\xbf\xbd");
  /* flush hands out a truncated character as U+FFFD and resets. */
  g_autofree char *c4 = qomni_stream_decoder_push (dec, qomni_tokenizer_byte_token_id (tok, 0xf0));
  g_assert_cmpstr (c4, ==, "");
  g_autofree char *c5 = qomni_stream_decoder_flush (dec);
  g_assert_cmpstr (c5, ==, "\xef\xbf\xbd");
  g_autofree char *c6 = qomni_stream_decoder_flush (dec);
  g_assert_cmpstr (c6, ==, "");
  qomni_stream_decoder_free (dec);

  /* skip_special drops special tokens in the stream as well. */
  dec = qomni_stream_decoder_new (tok, TRUE);
  g_autofree char *s1 = qomni_stream_decoder_push (dec, 151645);
  g_assert_cmpstr (s1, ==, "");
  g_autofree char *s2 = qomni_stream_decoder_push (dec, 9707);
  g_assert_cmpstr (s2, ==, "Hello");
  qomni_stream_decoder_free (dec);

  /* Whole-sequence decode replaces invalid bytes too. */
  const int bad[] = { qomni_tokenizer_byte_token_id (tok, 0xff), 9707,
                      qomni_tokenizer_byte_token_id (tok, 0xe4) };
  g_autofree char *text = qomni_tokenizer_decode (tok, bad, G_N_ELEMENTS (bad), FALSE);
  g_assert_cmpstr (text, ==, "\xef\xbf\xbdHello\xef\xbf\xbd");
}

static void
test_chat_prompt (void)
{
  QomniChat *chat = qomni_chat_new ();
  qomni_chat_begin (chat, "system");
  qomni_chat_text (chat, "You are a helpful assistant.");
  qomni_chat_end (chat);
  qomni_chat_begin (chat, "user");
  qomni_chat_audio (chat, 43);
  qomni_chat_text (chat, "What is this?");
  qomni_chat_end (chat);
  qomni_chat_assistant_prompt (chat);

  int want[68], k = 0;
  const int head[] = { 151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198,
                       151644, 872, 198, 151669 };
  const int tail[] = { 151670, 3838, 374, 419, 30, 151645, 198, 151644, 77091, 198 };
  for (guint i = 0; i < G_N_ELEMENTS (head); i++)
    want[k++] = head[i];
  for (int i = 0; i < 43; i++)
    want[k++] = 151675;
  for (guint i = 0; i < G_N_ELEMENTS (tail); i++)
    want[k++] = tail[i];
  g_assert_cmpint (k, ==, 68);

  int n;
  g_autoptr (GError) error = NULL;
  g_autofree int *ids = qomni_chat_tokenize (chat, tok, &n, &error);
  g_assert_no_error (error);
  assert_ids (ids, n, want, 68);
  g_assert_true (g_str_has_suffix (qomni_chat_text_so_far (chat),
                                   "<|audio_pad|><|audio_end|>What is this?<|im_end|>\n"
                                   "<|im_start|>assistant\n"));
  qomni_chat_free (chat);

  chat = qomni_chat_new ();
  qomni_chat_image (chat, 2);
  qomni_chat_video (chat, 1);
  g_assert_cmpstr (qomni_chat_text_so_far (chat),
                   ==, "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>"
                       "<|vision_start|><|video_pad|><|vision_end|>");
  g_autofree int *vids = qomni_chat_tokenize (chat, tok, &n, &error);
  g_assert_no_error (error);
  const int want_v[] = { 151652, 151655, 151655, 151653, 151652, 151656, 151653 };
  assert_ids (vids, n, want_v, G_N_ELEMENTS (want_v));
  qomni_chat_free (chat);
}

static void
test_load_missing_dir (void)
{
  g_autoptr (GError) error = NULL;
  const char *path = "/nonexistent/qomni-tokenizer-test";
  QomniTokenizer *t = qomni_tokenizer_load (path, &error);
  g_assert_null (t);
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_IO);
  g_assert_nonnull (strstr (error->message, path));
}

static void
write_file (const char *dir, const char *name, const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, contents, -1, &error));
  g_assert_no_error (error);
}

static void
remove_dir (const char *dir)
{
  const char *names[] = { "vocab.json", "merges.txt", "tokenizer_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *path = g_build_filename (dir, names[i], NULL);
    g_unlink (path);
  }
  g_rmdir (dir);
}

/* Tries a small tokenizer folder whose loading must fail with code naming file. */
static void
expect_load_error (const char *vocab, const char *merges, const char *config, int code,
                   const char *file)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qomni-tok-XXXXXX", &error);
  g_assert_no_error (error);
  if (vocab)
    write_file (dir, "vocab.json", vocab);
  if (merges)
    write_file (dir, "merges.txt", merges);
  if (config)
    write_file (dir, "tokenizer_config.json", config);
  QomniTokenizer *t = qomni_tokenizer_load (dir, &error);
  g_assert_null (t);
  g_assert_error (error, QOMNI_ERROR, code);
  g_assert_nonnull (strstr (error->message, file));
  remove_dir (dir);
}

/* A vocabulary with the 256 byte tokens (GPT-2 order) plus "ab", "abc". */
static char *
tiny_vocab (void)
{
  GString *s = g_string_new ("{");
  int moved = 0;
  for (int b = 0; b < 256; b++) {
    gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    gunichar c = printable ? (gunichar) b : (gunichar) (256 + moved++);
    char u[8] = { 0 };
    g_unichar_to_utf8 (c, u);
    if (c == '"' || c == '\\')
      g_string_append_printf (s, "\"\\%s\": %d, ", u, b);
    else
      g_string_append_printf (s, "\"%s\": %d, ", u, b);
  }
  g_string_append (s, "\"ab\": 256, \"abc\": 257}");
  return g_string_free (s, FALSE);
}

static void
test_load_bad_files (void)
{
  g_autofree char *vocab = tiny_vocab ();
  const char *merges = "#version: 0.2\na b\nab c\n";

  /* Sanity: the tiny folder itself loads and merges as listed. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp ("qomni-tok-XXXXXX", &error);
    g_assert_no_error (error);
    write_file (dir, "vocab.json", vocab);
    write_file (dir, "merges.txt", merges);
    QomniTokenizer *t = qomni_tokenizer_load (dir, &error);
    g_assert_no_error (error);
    int n;
    g_autofree int *ids = qomni_tokenizer_encode (t, "abcab", -1, TRUE, &n, &error);
    const int want[] = { 257, 256 };
    assert_ids (ids, n, want, 2);
    /* the seven Qwen3-Omni tokens are there even without a tokenizer_config.json */
    g_assert_cmpint (qomni_tokenizer_token_id (t, "<|audio_pad|>"), ==, 151675);
    g_assert_cmpint (qomni_tokenizer_n_tokens (t), ==, 151676);
    qomni_tokenizer_free (t);
    remove_dir (dir);
  }

  expect_load_error (NULL, merges, NULL, QOMNI_ERROR_IO, "vocab.json");
  expect_load_error (vocab, NULL, NULL, QOMNI_ERROR_IO, "merges.txt");
  expect_load_error ("{\"a\": 0,", merges, NULL, QOMNI_ERROR_FORMAT, "vocab.json");
  expect_load_error ("[1, 2]", merges, NULL, QOMNI_ERROR_FORMAT, "vocab.json");
  expect_load_error ("{\"a\": \"zero\"}", merges, NULL, QOMNI_ERROR_FORMAT, "vocab.json");
  expect_load_error ("{\"a\": -5}", merges, NULL, QOMNI_ERROR_FORMAT, "vocab.json");
  /* no byte tokens at all */
  expect_load_error ("{\"a\": 0}", "", NULL, QOMNI_ERROR_FORMAT, "vocab.json");
  expect_load_error (vocab, "#version: 0.2\n\x01garbage\xff\xfe with spaces\n", NULL,
                     QOMNI_ERROR_FORMAT, "merges.txt");
  expect_load_error (vocab, "a b\nnot_a_token c\n", NULL, QOMNI_ERROR_FORMAT, "merges.txt:2");
  expect_load_error (vocab, "a d\n", NULL, QOMNI_ERROR_FORMAT, "merges.txt:1");
  expect_load_error (vocab, "abc\n", NULL, QOMNI_ERROR_FORMAT, "merges.txt:1");
  expect_load_error (vocab, merges, "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<a>\"}}}",
                     QOMNI_ERROR_FORMAT, "tokenizer_config.json");
  expect_load_error (vocab, merges, "{\"added_tokens_decoder\": {\"300\": {}}}",
                     QOMNI_ERROR_FORMAT, "tokenizer_config.json");
  expect_load_error (vocab, merges, "not json", QOMNI_ERROR_FORMAT, "tokenizer_config.json");
}

static void
test_load_for_model (void)
{
  /* A model folder without tokenizer files gets the shipped tokenizer. */
  g_autoptr (GError) error = NULL;
  g_autofree char *empty = g_dir_make_tmp ("qomni-model-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *shipped = qomni_tokenizer_find_shipped_dir ();
  g_assert_nonnull (shipped);
  QomniTokenizer *t = qomni_tokenizer_load_for_model (empty, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qomni_tokenizer_n_tokens (t), ==, 151676);
  int n;
  g_autofree int *ids = qomni_tokenizer_encode (t, "<|im_start|>user\nhi<|im_end|>", -1, TRUE,
                                                &n, &error);
  const int want[] = { 151644, 872, 198, 6023, 151645 };
  assert_ids (ids, n, want, G_N_ELEMENTS (want));
  qomni_tokenizer_free (t);

  /* A model folder with its own vocab.json and merges.txt, but no tokenizer_config.json:
   * its files are used, and the ChatML tokens come from the shipped config. */
  g_autofree char *vocab = tiny_vocab ();
  write_file (empty, "vocab.json", vocab);
  write_file (empty, "merges.txt", "a b\n");
  t = qomni_tokenizer_load_for_model (empty, &error);
  g_assert_no_error (error);
  g_autofree int *ids2 = qomni_tokenizer_encode (t, "<|im_end|>ab", -1, TRUE, &n, &error);
  const int want2[] = { 151645, 256 };
  assert_ids (ids2, n, want2, G_N_ELEMENTS (want2));
  qomni_tokenizer_free (t);
  remove_dir (empty);
}

/* Not a correctness check: reports the encode speed on a few KB of mixed text, and checks
 * the result round-trips. */
static void
test_speed (void)
{
  g_autoptr (GString) text = g_string_new (NULL);
  for (int i = 0; i < 40; i++)
    g_string_append_printf (text, "Paragraph %d: The quick brown fox jumps over the lazy dog. "
                            "这是一个测试句子，包含中文。 Ünïcödé & symbols: {x: %d}; 🚀\n", i,
                            i * 37);
  gint64 t0 = g_get_monotonic_time ();
  int n;
  g_autofree int *ids = encode (text->str, TRUE, &n);
  gint64 t1 = g_get_monotonic_time ();
  g_autofree int *ids2 = encode (text->str, TRUE, &n);
  gint64 t2 = g_get_monotonic_time ();
  g_test_message ("encode of %" G_GSIZE_FORMAT " bytes -> %d ids: %.2f ms cold, %.2f ms cached",
                  text->len, n, (t1 - t0) / 1000.0, (t2 - t1) / 1000.0);
  assert_ids (ids2, n, ids, n);
  g_autofree char *back = qomni_tokenizer_decode (tok, ids, n, FALSE);
  g_assert_cmpstr (back, ==, text->str);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fixture_dir = find_fixture_dir ();

  g_autoptr (GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  tok = qomni_tokenizer_load (fixture_dir, &error);
  if (!tok)
    g_error ("cannot load the tokenizer fixture: %s", error->message);
  g_test_message ("tokenizer loaded in %.1f ms", (g_get_monotonic_time () - t0) / 1000.0);

  g_test_add_func ("/tokenizer/vectors", test_vectors);
  g_test_add_func ("/tokenizer/special-tokens", test_special_tokens);
  g_test_add_func ("/tokenizer/no-split-special", test_no_split_special);
  g_test_add_func ("/tokenizer/token-lookup", test_token_lookup);
  g_test_add_func ("/tokenizer/nfc", test_nfc);
  g_test_add_func ("/tokenizer/nul-bytes", test_nul_bytes);
  g_test_add_func ("/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/tokenizer/stream-decode", test_stream_decode);
  g_test_add_func ("/tokenizer/chat-prompt", test_chat_prompt);
  g_test_add_func ("/tokenizer/load-missing-dir", test_load_missing_dir);
  g_test_add_func ("/tokenizer/load-bad-files", test_load_bad_files);
  g_test_add_func ("/tokenizer/load-for-model", test_load_for_model);
  g_test_add_func ("/tokenizer/speed", test_speed);

  int ret = g_test_run ();
  qomni_tokenizer_free (tok);
  g_free (fixture_dir);
  return ret;
}
