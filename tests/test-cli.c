/* The qomni program end to end: mkmodel writes the same random model as safetensors
 * (bf16) and as GGUF (Q8_0) — every tensor present in both, values agreeing within the
 * formats' rounding (NMSE < 1e-4 for Q8_0 matrices against bf16, exact-to-bf16 for f32
 * tensors) — and generate runs on both and on the fixture, printing the ids it made. */
#include "refs.h"
#include "quant.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <zlib.h>
#include <string.h>

static const char *qomni_bin;
static char *tmpdir;

/* Runs qomni with args; returns stdout (transfer full) and asserts exit status 0. */
static char *
run_qomni (const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) qomni_bin);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  char *out = NULL, *err = NULL;
  int status = 0;
  GError *error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("qomni %s failed: %s", args[0], err);
  g_free (err);
  g_ptr_array_free (argv, TRUE);
  return out;
}

/* The ids of the "ids: ..." line. */
static GArray *
parse_ids (const char *out)
{
  const char *line = strstr (out, "\nids:");
  g_assert_nonnull (line);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int));
  const char *eol = strchr (line + 1, '\n');
  g_autofree char *text = eol ? g_strndup (line + 5, (gsize) (eol - line - 5)) : g_strdup (line + 5);
  g_auto (GStrv) parts = g_strsplit (text, " ", -1);
  for (int i = 0; parts[i]; i++)
    if (*g_strstrip (parts[i])) {
      int v = atoi (parts[i]);
      g_array_append_val (ids, v);
    }
  return ids;
}

typedef struct {
  QomniWeights *other;
  guint compared, quantized;
} Compare;

static void
compare_tensor (const QomniTensor *a, gpointer user)
{
  Compare *c = user;
  const QomniTensor *b = qomni_weights_find (c->other, a->name);
  if (!b)
    g_error ("%s is in the safetensors model but not in the GGUF", a->name);
  g_assert_cmpint (a->ndim, ==, b->ndim);
  int64_t n = qomni_tensor_nelements (a);
  g_assert_cmpint (n, ==, qomni_tensor_nelements (b));
  float *fa = g_new (float, n), *fb = g_new (float, n);
  qomni_to_f32 (a->dtype, a->data, fa, n);
  qomni_to_f32 (b->dtype, b->data, fb, n);
  if (b->dtype == QOMNI_DTYPE_Q8_0) {
    g_assert_cmpfloat (nmse (fb, fa, n), <, 1e-4);
    c->quantized++;
  } else {
    /* f32 in the GGUF, bf16 in safetensors: the same value before bf16 rounding */
    for (int64_t i = 0; i < n; i++)
      g_assert_cmpuint (qomni_f32_to_bf16 (fb[i]), ==, qomni_f32_to_bf16 (fa[i]));
  }
  c->compared++;
  g_free (fa);
  g_free (fb);
}

static void
test_mkmodel_formats (void)
{
  g_autofree char *dir = g_build_filename (tmpdir, "tiny-st", NULL);
  g_autofree char *gguf = g_build_filename (tmpdir, "tiny.gguf", NULL);
  g_free (run_qomni ((const char *[]) { "mkmodel", "--preset", "tiny", "--seed", "7", dir, NULL }));
  g_free (run_qomni ((const char *[]) { "mkmodel", "--preset", "tiny", "--seed", "7", "--quant",
                                        "q8_0", gguf, NULL }));
  GError *error = NULL;
  QomniWeights *a = qomni_weights_open (dir, &error);
  g_assert_no_error (error);
  QomniWeights *b = qomni_weights_open (gguf, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qomni_weights_count (a), ==, 494);
  g_assert_cmpuint (qomni_weights_count (b), ==, qomni_weights_count (a));
  Compare c = { b, 0, 0 };
  qomni_weights_foreach (a, compare_tensor, &c);
  g_assert_cmpuint (c.compared, ==, 494);
  g_assert_cmpuint (c.quantized, >, 0);
  qomni_weights_free (a);
  qomni_weights_free (b);

  /* generate runs on both and makes the asked number of ids (random weights: no stop) */
  for (int k = 0; k < 2; k++) {
    g_autofree char *out = run_qomni ((const char *[]) { "generate", "--model", k ? gguf : dir,
                                                         "--prompt", "Hello", "--greedy",
                                                         "--max-tokens", "6", "--print-ids",
                                                         NULL });
    g_autoptr (GArray) ids = parse_ids (out);
    g_assert_cmpuint (ids->len, <=, 6);
    g_assert_cmpuint (ids->len, >=, 1);
  }
}

/* Same seed, same ids; the fixture's greedy answer with --speak writes a WAV of the frames
 * asked for: 1920 samples per frame minus the 555 a decode call loses at its end. */
static void
test_generate_fixture (void)
{
  g_autofree char *model = refs_path ("tiny-omni");
  g_autofree char *wav = g_build_filename (tmpdir, "answer.wav", NULL);
  const char *args[] = { "generate", "--model", model, "--prompt", "What is this?",
                         "--temperature", "0.8", "--seed", "11", "--max-tokens", "10",
                         "--print-ids", NULL };
  g_autofree char *o1 = run_qomni (args);
  g_autofree char *o2 = run_qomni (args);
  g_autoptr (GArray) i1 = parse_ids (o1);
  g_autoptr (GArray) i2 = parse_ids (o2);
  g_assert_cmpuint (i1->len, ==, i2->len);
  g_assert_cmpmem (i1->data, i1->len * sizeof (int), i2->data, i2->len * sizeof (int));

  g_autofree char *o3 = run_qomni ((const char *[]) { "generate", "--model", model, "--prompt",
                                                      "What is this?", "--greedy",
                                                      "--max-tokens", "6", "--speak", wav,
                                                      "--max-frames", "12", "--print-codes",
                                                      NULL });
  int frames = 0;
  for (const char *p = o3; (p = strstr (p, "codes:")); p++)
    frames++;
  g_assert_cmpint (frames, ==, 12);
  GStatBuf st;
  g_assert_cmpint (g_stat (wav, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 44 + 4 * (12 * 1920 - 555));
}

/* --device vulkan --speak: the thinker and Code2Wav on the GPU (the talker on the CPU). The
 * greedy answer gives the same codec frames as on the CPU, and the WAV's samples are
 * within NMSE 1e-6 of the CPU's (test-vk-code2wav's bound for the GPU decoder). Skipped
 * without a Vulkan device. */
static void
test_generate_vulkan_speak (void)
{
#ifndef QOMNI_HAVE_VULKAN
  g_test_skip ("built without the Vulkan backend");
#else
  GError *error = NULL;
  QomniVk *probe = qomni_vk_new (-1, &error);
  if (!probe) {
    g_test_skip (error->message);
    g_error_free (error);
    return;
  }
  qomni_vk_free (probe);
  g_autofree char *model = refs_path ("tiny-omni");
  g_autofree char *wav[2] = { g_build_filename (tmpdir, "cpu.wav", NULL),
                              g_build_filename (tmpdir, "gpu.wav", NULL) };
  g_autofree char *out[2] = { NULL, NULL };
  for (int d = 0; d < 2; d++)
    out[d] = run_qomni ((const char *[]) { "generate", "--model", model, "--prompt",
                                           "What is this?", "--greedy", "--max-tokens", "6",
                                           "--device", d ? "vulkan" : "cpu", "--speak", wav[d],
                                           "--max-frames", "12", "--chunk-frames", "5",
                                           "--print-codes", NULL });
  const char *c0 = strstr (out[0], "codes:"), *c1 = strstr (out[1], "codes:");
  g_assert_nonnull (c0);
  g_assert_nonnull (c1);
  g_assert_cmpstr (c0, ==, c1);   /* the same answer and the same frames */
  gchar *bytes[2];
  gsize len[2];
  for (int d = 0; d < 2; d++)
    g_assert_true (g_file_get_contents (wav[d], &bytes[d], &len[d], NULL));
  /* 12 frames in chunks of 5: 3 calls */
  g_assert_cmpuint (len[0], ==, 44 + 4 * (12 * 1920 - 3 * 555));
  g_assert_cmpuint (len[1], ==, len[0]);
  const float *a = (const float *) (bytes[1] + 44), *b = (const float *) (bytes[0] + 44);
  const double e = nmse (a, b, (int64_t) (len[0] - 44) / 4);
  g_test_message ("--device vulkan --speak vs cpu: NMSE %.3g", e);
  g_assert_cmpfloat (e, <=, 1e-6);
  g_free (bytes[0]);
  g_free (bytes[1]);
#endif
}

/* The figures of one section of a `qomni bench --json` report: present, each with a
 * positive value (and a positive floor where it has one); returns how many. */
static guint
check_section (JsonObject *sections, const char *name)
{
  if (!json_object_has_member (sections, name))
    g_error ("qomni bench: no section %s in the JSON", name);
  JsonObject *sec = json_object_get_object_member (sections, name);
  JsonArray *skipped = json_object_get_array_member (sec, "skipped");
  for (guint i = 0; i < json_array_get_length (skipped); i++) {
    JsonObject *k = json_array_get_object_element (skipped, i);
    g_error ("qomni bench: %s skipped %s: %s", name, json_object_get_string_member (k, "what"),
             json_object_get_string_member (k, "reason"));
  }
  JsonArray *figures = json_object_get_array_member (sec, "figures");
  const guint n = json_array_get_length (figures);
  for (guint i = 0; i < n; i++) {
    JsonObject *f = json_array_get_object_element (figures, i);
    const double v = json_object_get_double_member (f, "value");
    g_test_message ("%s %s: %g %s", name, json_object_get_string_member (f, "figure"), v,
                    json_object_get_string_member (f, "unit"));
    g_assert_true (isfinite (v));
    g_assert_cmpfloat (v, >, 0);
    if (json_object_has_member (f, "floor"))
      g_assert_cmpfloat (json_object_get_double_member (f, "floor"), >, 0);
  }
  return n;
}

static JsonObject *
parse_report (JsonParser *parser, const char *text)
{
  GError *error = NULL;
  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_assert_nonnull (root);
  return json_object_get_object_member (root, "sections");
}

/* qomni bench on the tiny shape, every section at small sizes: a smoke test of the
 * benchmark (no speed is asserted). The JSON must parse and hold every section, none
 * skipped, each figure positive; the table is printed too. */
static void
test_bench_smoke (void)
{
  g_autofree char *json_path = g_build_filename (tmpdir, "bench.json", NULL);
  g_autofree char *out = run_qomni ((const char *[]) {
    "bench", "--random", "tiny", "--quant", "q8_0", "--prefill", "8,32", "--context", "16,64",
    "--decode", "4", "--audio", "1,2", "--chunks", "4,8", "--left-context", "4",
    "--max-tokens", "4", "--max-frames", "8", "--streams", "1,2", "--question", "1",
    "--json", json_path, NULL });
  g_assert_nonnull (strstr (out, "decode (context 64)"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (json_path, &text, NULL, NULL));
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *sections = parse_report (parser, text);
  /* prefill ×2 + decode ×2; mel + encode per length; talker 4; first chunk + RTF per size;
   * the pipeline's cold first audio, then first text, first audio, answer audio, RTF; the
   * same + slowest per N */
  const struct { const char *name; guint figures; } expect[] = {
    { "thinker", 4 }, { "encoder", 4 }, { "talker", 4 }, { "vocoder", 4 },
#ifdef QOMNI_BENCH_HAS_GST
    { "pipeline", 5 }, { "streams", 10 },
#endif
  };
  for (guint i = 0; i < G_N_ELEMENTS (expect); i++)
    g_assert_cmpuint (check_section (sections, expect[i].name), ==, expect[i].figures);
  g_unlink (json_path);

  /* the old options still work; --json - puts the JSON alone on stdout */
  g_autofree char *js = run_qomni ((const char *[]) {
    "bench", "--preset", "tiny", "--dtype", "bf16", "--prompt", "8", "--context", "16",
    "--decode", "2", "--only", "thinker", "--json", "-", NULL });
  g_autoptr (JsonParser) p2 = json_parser_new ();
  sections = parse_report (p2, js);
  g_assert_cmpuint (check_section (sections, "thinker"), ==, 2);
  g_assert_false (json_object_has_member (sections, "encoder"));
}

/* Writes rgb [h, w, 3] as a PNG (8-bit RGB, filter 0 on every row). */
static void
write_png (const char *path, const guint8 *rgb, int w, int h)
{
  GByteArray *raw = g_byte_array_new ();
  for (int y = 0; y < h; y++) {
    guint8 filter = 0;
    g_byte_array_append (raw, &filter, 1);
    g_byte_array_append (raw, rgb + (gsize) y * w * 3, (guint) w * 3);
  }
  uLongf zlen = compressBound (raw->len);
  guint8 *z = g_malloc (zlen);
  g_assert_cmpint (compress (z, &zlen, raw->data, raw->len), ==, Z_OK);
  GByteArray *png = g_byte_array_new ();
  g_byte_array_append (png, (const guint8 *) "\x89PNG\r\n\x1a\n", 8);
  const struct { const char *type; const guint8 *data; guint32 len; } chunks[3] = {
    { "IHDR", NULL, 13 }, { "IDAT", z, (guint32) zlen }, { "IEND", NULL, 0 },
  };
  guint8 ihdr[13] = { 0 };
  for (int i = 0; i < 4; i++) {
    ihdr[i] = (guint8) (w >> (24 - 8 * i));
    ihdr[4 + i] = (guint8) (h >> (24 - 8 * i));
  }
  ihdr[8] = 8;   /* bit depth */
  ihdr[9] = 2;   /* RGB */
  for (int c = 0; c < 3; c++) {
    const guint8 *data = c == 0 ? ihdr : chunks[c].data;
    guint8 len[4] = { chunks[c].len >> 24, chunks[c].len >> 16, chunks[c].len >> 8, chunks[c].len };
    g_byte_array_append (png, len, 4);
    g_byte_array_append (png, (const guint8 *) chunks[c].type, 4);
    if (chunks[c].len)
      g_byte_array_append (png, data, chunks[c].len);
    uLong crc = crc32 (crc32 (0, NULL, 0), (const guint8 *) chunks[c].type, 4);
    if (chunks[c].len)
      crc = crc32 (crc, data, chunks[c].len);
    guint8 crc8[4] = { crc >> 24, crc >> 16, crc >> 8, crc };
    g_byte_array_append (png, crc8, 4);
  }
  g_assert_true (g_file_set_contents (path, (const char *) png->data, png->len, NULL));
  g_byte_array_unref (png);
  g_byte_array_unref (raw);
  g_free (z);
}

/* --image with the fixture's picture and prompt (no system turn): the first greedy token is
 * the argmax of the reference's vision.prefill_logits_last; with --device vulkan the vision
 * encoder and the thinker (DeepStack included) run on the GPU (skipped without one). */
static void
test_generate_image (gconstpointer device)
{
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
  RefsTiny fx;
  refs_tiny_load (&fx);
  const QomniTensor *img = qomni_weights_find (fx.refs, "vision.image_u8");
  g_assert_nonnull (img);
  g_assert_cmpint (img->shape[0], ==, 64);
  g_assert_cmpint (img->shape[1], ==, 96);
  g_autofree char *png = g_build_filename (tmpdir, "fixture.png", NULL);
  write_png (png, img->data, (int) img->shape[1], (int) img->shape[0]);
  const int V = 152064;
  const float *ref = refs_f32 (fx.refs, "vision.prefill_logits_last", V);
  int best = 0;
  for (int i = 1; i < V; i++)
    best = ref[i] > ref[best] ? i : best;
  g_autofree char *model = refs_path ("tiny-omni");
  g_autofree char *out = run_qomni ((const char *[]) { "generate", "--model", model, "--system",
                                                       "", "--image", png, "--prompt",
                                                       "What is this?", "--greedy",
                                                       "--max-tokens", "1", "--print-ids",
                                                       "--device", device, NULL });
  g_autoptr (GArray) ids = parse_ids (out);
  g_assert_cmpuint (ids->len, ==, 1);
  g_assert_cmpint (g_array_index (ids, int, 0), ==, best);

  /* A spoken answer about the picture: the talker builds its 3-D positions from the
   * image's grid (without it the prompt's image tokens have no grid and the talker
   * refuses). No reference exists for this; the check is that 4 frames come out. */
  g_autofree char *wav = g_build_filename (tmpdir, "image-answer.wav", NULL);
  g_autofree char *out2 = run_qomni ((const char *[]) { "generate", "--model", model,
                                                        "--image", png, "--prompt",
                                                        "What is this?", "--greedy",
                                                        "--max-tokens", "4", "--speak", wav,
                                                        "--max-frames", "4", "--print-codes",
                                                        "--device", device, NULL });
  int frames = 0;
  for (const char *p = out2; (p = strstr (p, "codes:")); p++)
    frames++;
  g_assert_cmpint (frames, ==, 4);
  GStatBuf st;
  g_assert_cmpint (g_stat (wav, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 44);
  g_unlink (wav);
  refs_tiny_clear (&fx);
}

/* Runs gst-launch-1.0 with a pipeline description; FALSE (test skipped) without it. */
static gboolean
gst_launch (const char *description)
{
  g_autofree char *launch = g_find_program_in_path ("gst-launch-1.0");
  if (!launch) {
    g_test_skip ("gst-launch-1.0 (gstreamer1.0-tools) is not installed");
    return FALSE;
  }
  g_auto (GStrv) argv = NULL;
  g_autofree char *cmd = g_strdup_printf ("%s -q %s", launch, description);
  GError *error = NULL;
  g_assert_true (g_shell_parse_argv (cmd, NULL, &argv, &error));
  int status = 0;
  g_autofree char *err = NULL;
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("gst-launch-1.0 %s failed: %s", description, err);
  return TRUE;
}

/* The ids of the "prompt ids: ..." line. */
static GArray *
parse_prompt_ids (const char *out)
{
  const char *line = strstr (out, "prompt ids:");
  g_assert_nonnull (line);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int));
  const char *eol = strchr (line, '\n');
  g_assert_nonnull (eol);
  g_autofree char *text = g_strndup (line + 11, (gsize) (eol - line - 11));
  g_auto (GStrv) parts = g_strsplit (text, " ", -1);
  for (int i = 0; parts[i]; i++)
    if (*g_strstrip (parts[i])) {
      int v = atoi (parts[i]);
      g_array_append_val (ids, v);
    }
  return ids;
}

/* --video with a lossless two-frame still of the fixture picture, sampled at 2 fps within a
 * pixel budget that keeps its 96×64 size. An image is a video of its picture repeated to 2
 * frames (architecture notes §5.5), so the pixel values, the single temporal patch, the
 * encoder output and the 3-D positions (grid_t 1: the temporal step never applies) are the
 * image's: the prompt must be the reference's image prompt with <|image_pad|> 151655
 * written as <|video_pad|> 151656, and the first greedy token the argmax of
 * vision.prefill_logits_last. */
static void
test_generate_video (void)
{
  RefsTiny fx;
  refs_tiny_load (&fx);
  const QomniTensor *img = qomni_weights_find (fx.refs, "vision.image_u8");
  g_assert_nonnull (img);
  const int W = (int) img->shape[1], H = (int) img->shape[0];
  g_autofree char *png = g_build_filename (tmpdir, "still.png", NULL);
  g_autofree char *mkv = g_build_filename (tmpdir, "still.mkv", NULL);
  write_png (png, img->data, W, H);
  g_autofree char *desc = g_strdup_printf (
    "filesrc location=%s ! pngdec ! imagefreeze num-buffers=2 ! video/x-raw,framerate=2/1 ! "
    "videoconvert ! video/x-raw,format=RGB ! matroskamux ! filesink location=%s", png, mkv);
  if (!gst_launch (desc)) {
    refs_tiny_clear (&fx);
    return;
  }
  const int V = 152064;
  const float *ref = refs_f32 (fx.refs, "vision.prefill_logits_last", V);
  int best = 0;
  for (int i = 1; i < V; i++)
    best = ref[i] > ref[best] ? i : best;
  int n_ref = 0;
  g_autofree int *ref_ids = refs_ints (fx.refs, "vision.prompt_ids", &n_ref);
  g_autofree char *model = refs_path ("tiny-omni");
  g_autofree char *budget = g_strdup_printf ("%d", W * H);
  g_autofree char *out = run_qomni ((const char *[]) { "generate", "--model", model, "--system",
                                                       "", "--video", mkv, "--fps", "2",
                                                       "--video-max-pixels", budget, "--prompt",
                                                       "What is this?", "--greedy",
                                                       "--max-tokens", "1", "--print-ids",
                                                       "--print-prompt-ids", NULL });
  g_autoptr (GArray) prompt = parse_prompt_ids (out);
  g_assert_cmpuint (prompt->len, ==, n_ref);
  for (int i = 0; i < n_ref; i++)
    g_assert_cmpint (g_array_index (prompt, int, i), ==,
                     ref_ids[i] == 151655 ? 151656 : ref_ids[i]);
  g_autoptr (GArray) ids = parse_ids (out);
  g_assert_cmpuint (ids->len, ==, 1);
  g_assert_cmpint (g_array_index (ids, int, 0), ==, best);
  refs_tiny_clear (&fx);
}

/* Audio tokens for T mel frames (architecture notes §4.3: 13 per full 100-frame chunk, the
 * rest through the three stride-2 convolutions). */
static int
audio_tokens (int T)
{
  const int leave = T % 100, feat = (leave - 1) / 2 + 1;
  return ((feat - 1) / 2 + 1 - 1) / 2 + 1 + (T / 100) * 13;
}

/* --use-audio-in-video on a 1.5 s video (10 fps, 15 frames) with a 16 kHz soundtrack: the
 * counts and the order of the placeholder run follow the notes (§7.1, §7.3.5): the video's
 * t·h·w/4 video pads and the soundtrack's audio pads merged by time (video token of temporal
 * patch k at 13·k·2/fps, audio token a at a, video first on a tie) between
 * <|vision_start|><|audio_start|> and <|audio_end|><|vision_end|>; and the answer is
 * generated. */
static void
test_generate_video_audio (void)
{
  g_autofree char *mkv = g_build_filename (tmpdir, "sound.mkv", NULL);
  g_autofree char *desc = g_strdup_printf (
    "videotestsrc num-buffers=15 pattern=ball ! video/x-raw,width=64,height=64,framerate=10/1 "
    "! jpegenc ! mux. audiotestsrc num-buffers=15 samplesperbuffer=1600 ! "
    "audio/x-raw,rate=16000,channels=1,format=S16LE ! mux. matroskamux name=mux ! "
    "filesink location=%s", mkv);
  if (!gst_launch (desc))
    return;
  g_autofree char *model = refs_path ("tiny-omni");
  g_autofree char *out = run_qomni ((const char *[]) { "generate", "--model", model, "--system",
                                                       "", "--video", mkv,
                                                       "--use-audio-in-video",
                                                       "--video-max-pixels", "4096", "--prompt",
                                                       "Describe.", "--greedy", "--max-tokens",
                                                       "2", "--print-ids", "--print-prompt-ids",
                                                       NULL });
  g_autoptr (GArray) prompt = parse_prompt_ids (out);
  const int *p = (const int *) prompt->data;
  const int n = (int) prompt->len;
  int open = -1;
  for (int i = 0; i + 1 < n && open < 0; i++)
    if (p[i] == 151652 && p[i + 1] == 151669)
      open = i + 2;
  g_assert_cmpint (open, >=, 0);
  /* 15 frames at 10 fps taken at 2 fps: those at 0, 0.5 and 1.0 s, rounded down to an even
   * 2 -> one temporal patch of 64×64 -> 2×2 merged tokens; 24000 samples -> 150 mel
   * frames. */
  const int n_audio = audio_tokens (24000 / 160);
  int n_video = 0, a = 0, v = 0, i = open;
  for (; i < n && (p[i] == 151656 || p[i] == 151675); i++)
    n_video += p[i] == 151656;
  g_assert_cmpint (n_video, ==, 4);
  g_assert_cmpint (i - open - n_video, ==, n_audio);
  g_assert_cmpint (p[i], ==, 151670);
  g_assert_cmpint (p[i + 1], ==, 151653);
  for (int j = open; j < i; j++) {
    const int tv = (v / 4) * 13;   /* fps 2: one temporal patch per second */
    const gboolean video_next = v < n_video && (a >= n_audio || tv <= a);
    g_assert_cmpint (p[j], ==, video_next ? 151656 : 151675);
    if (video_next)
      v++;
    else
      a++;
  }
  g_autoptr (GArray) ids = parse_ids (out);
  g_assert_cmpuint (ids->len, >=, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  qomni_bin = g_getenv ("QOMNI_BIN");
  g_assert_nonnull (qomni_bin);
  tmpdir = g_dir_make_tmp ("qomni-cli-XXXXXX", NULL);
  g_test_add_func ("/cli/mkmodel-formats", test_mkmodel_formats);
  g_test_add_func ("/cli/generate-fixture", test_generate_fixture);
  g_test_add_func ("/cli/generate-vulkan-speak", test_generate_vulkan_speak);
  g_test_add_func ("/cli/bench-smoke", test_bench_smoke);
  g_test_add_data_func ("/cli/generate-image", "cpu", test_generate_image);
  g_test_add_data_func ("/cli/generate-image-vulkan", "vulkan", test_generate_image);
  g_test_add_func ("/cli/generate-video", test_generate_video);
  g_test_add_func ("/cli/generate-video-audio", test_generate_video_audio);
  int rc = g_test_run ();
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmpdir);
  if (system (rm) != 0)
    g_printerr ("could not remove %s\n", tmpdir);
  g_free (tmpdir);
  return rc;
}
