/* End to end from audio.wave_16k (tiny-omni fixture): a 16 kHz float WAV file through
 *   filesrc ! decodebin ! audioconvert ! audioresample ! qomniencode chunk-duration=0 !
 *   qomnithinker task=custom prompt="What is this?" temperature=0 max-tokens=8 ! filesink
 * and through `qomni generate --audio`, also with `--device vulkan` (audio encoder and
 * thinker on the GPU; skipped where no Vulkan device exists); all must give transformers'
 * greedy answer, generate.sequences[68:76]. Needs the plugin on GST_PLUGIN_PATH and
 * QOMNI_EXE. */
#include "refs.h"
#include "tokenizer.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <glib/gstdio.h>
#include <gst/gst.h>
#include <string.h>

#define N_WAVE 52800
#define N_PROMPT 68
#define N_ANSWER 8

static char *tmpdir, *wav_path, *model_dir;
static int answer_ids[N_ANSWER];

static void
put_u32 (GByteArray *b, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &le, 4);
}

static void
put_u16 (GByteArray *b, guint16 v)
{
  guint16 le = GUINT16_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &le, 2);
}

/* A mono 32-bit IEEE float WAV file (format tag 3), so the samples reach the encoder
 * bit for bit. */
static void
write_wav (const char *path, const float *pcm, int n, int rate)
{
  GByteArray *b = g_byte_array_new ();
  const guint32 data_bytes = (guint32) n * 4;
  g_byte_array_append (b, (const guint8 *) "RIFF", 4);
  put_u32 (b, 4 + (8 + 18) + (8 + 4) + (8 + data_bytes));
  g_byte_array_append (b, (const guint8 *) "WAVEfmt ", 8);
  put_u32 (b, 18);
  put_u16 (b, 3);            /* WAVE_FORMAT_IEEE_FLOAT */
  put_u16 (b, 1);            /* channels */
  put_u32 (b, rate);
  put_u32 (b, rate * 4);     /* bytes per second */
  put_u16 (b, 4);            /* block align */
  put_u16 (b, 32);           /* bits per sample */
  put_u16 (b, 0);            /* cbSize */
  g_byte_array_append (b, (const guint8 *) "fact", 4);
  put_u32 (b, 4);
  put_u32 (b, n);
  g_byte_array_append (b, (const guint8 *) "data", 4);
  put_u32 (b, data_bytes);
  for (int i = 0; i < n; i++) {
    guint32 bits;
    memcpy (&bits, &pcm[i], 4);
    put_u32 (b, bits);
  }
  GError *error = NULL;
  g_file_set_contents (path, (const char *) b->data, b->len, &error);
  g_assert_no_error (error);
  g_byte_array_unref (b);
}

static char *
expected_text (void)
{
  GError *error = NULL;
  QomniTokenizer *tok = qomni_tokenizer_load_for_model (model_dir, &error);
  g_assert_no_error (error);
  char *text = qomni_tokenizer_decode (tok, answer_ids, N_ANSWER, TRUE);
  qomni_tokenizer_free (tok);
  return text;
}

static void
test_pipeline (void)
{
  g_autofree char *out_path = g_build_filename (tmpdir, "answer.txt", NULL);
  g_autofree char *desc = g_strdup_printf (
    "filesrc location=%s ! decodebin ! audioconvert ! audioresample ! "
    "qomniencode chunk-duration=0 ! qomnithinker model=%s task=custom "
    "prompt=\"What is this?\" temperature=0 max-tokens=%d ! filesink location=%s",
    wav_path, model_dir, N_ANSWER, out_path);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
                                                GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    g_autofree char *dbg = NULL;
    gst_message_parse_error (msg, &e, &dbg);
    g_error ("pipeline error: %s (%s)", e->message, dbg);
  }
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);

  g_autofree char *got = NULL;
  gsize len = 0;
  g_file_get_contents (out_path, &got, &len, &error);
  g_assert_no_error (error);
  g_autofree char *want = expected_text ();
  g_assert_cmpstr (got, ==, want);
}

static void
test_cli (gconstpointer device)
{
  const char *exe = g_getenv ("QOMNI_EXE");
  if (!exe) {
    g_test_skip ("QOMNI_EXE is not set");
    return;
  }
  if (g_strcmp0 (device, "vulkan") == 0) {
#ifdef QOMNI_HAVE_VULKAN
    GError *e = NULL;
    QomniVk *vk = qomni_vk_new (-1, &e);
    if (!vk) {
      g_test_skip (e->message);
      g_error_free (e);
      return;
    }
    qomni_vk_free (vk);
#else
    g_test_skip ("built without the Vulkan backend");
    return;
#endif
  }
  const char *argv[] = { exe, "generate", "--model", model_dir, "--audio", wav_path,
                         "--prompt", "What is this?", "--greedy", "--max-tokens", "8",
                         "--print-ids", "--device", device, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  GError *error = NULL;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("qomni generate failed: %s", err);
  GString *want = g_string_new ("ids:");
  for (int i = 0; i < N_ANSWER; i++)
    g_string_append_printf (want, " %d", answer_ids[i]);
  g_string_append_c (want, '\n');
  g_assert_nonnull (strstr (out, want->str));
  g_string_free (want, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);
  QomniWeights *refs = refs_open ("tiny-omni/refs.safetensors");
  const float *wave = refs_f32 (refs, "audio.wave_16k", N_WAVE);
  int n_seq;
  g_autofree int *seq = refs_ints (refs, "generate.sequences", &n_seq);
  g_assert_cmpint (n_seq, ==, N_PROMPT + N_ANSWER);
  memcpy (answer_ids, seq + N_PROMPT, sizeof answer_ids);
  model_dir = refs_path ("tiny-omni");
  GError *error = NULL;
  tmpdir = g_dir_make_tmp ("qomni-gst-XXXXXX", &error);
  g_assert_no_error (error);
  wav_path = g_build_filename (tmpdir, "wave16k.wav", NULL);
  write_wav (wav_path, wave, N_WAVE, 16000);
  qomni_weights_free (refs);

  g_test_add_func ("/gst/pipeline/audio-answer", test_pipeline);
  g_test_add_data_func ("/gst/cli/generate-audio", "cpu", test_cli);
  g_test_add_data_func ("/gst/cli/generate-audio-vulkan", "vulkan", test_cli);
  int ret = g_test_run ();

  g_autofree char *answer = g_build_filename (tmpdir, "answer.txt", NULL);
  g_unlink (answer);
  g_unlink (wav_path);
  g_rmdir (tmpdir);
  g_free (wav_path);
  g_free (tmpdir);
  g_free (model_dir);
  return ret;
}
