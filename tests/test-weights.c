/* Weight files and configs: the layout a config implies equals the fixture checkpoint's
 * tensors exactly; presets describe the release; every malformed input gives a GError that
 * names the file and the tensor or field (run under valgrind in CI). */
#include "refs.h"
#include "checkpoint.h"
#include "config.h"
#include "error.h"
#include "safetensors-write.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmpdir;

static QomniConfig *
load_fixture_config (void)
{
  g_autofree char *p = refs_path ("tiny-omni/config.json");
  GError *error = NULL;
  QomniConfig *c = qomni_config_load (p, &error);
  g_assert_no_error (error);
  return c;
}

static void
assert_layout_matches (GPtrArray *specs, QomniWeights *w)
{
  g_assert_cmpuint (specs->len, ==, qomni_weights_count (w));
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    const QomniTensor *t = qomni_weights_find (w, s->name);
    if (!t)
      g_error ("layout names %s, which the fixture lacks", s->name);
    g_assert_cmpint (t->ndim, ==, s->ndim);
    for (int d = 0; d < s->ndim; d++)
      g_assert_cmpint (t->shape[d], ==, s->shape[d]);
  }
}

static void
test_config_fields (void)
{
  g_autoptr (QomniConfig) c = load_fixture_config ();
  g_assert_cmpint (c->thinker.text.hidden_size, ==, 32);
  g_assert_cmpint (c->thinker.text.num_experts, ==, 8);
  g_assert_cmpint (c->thinker.text.mrope_section[0], ==, 4);
  g_assert_true (c->thinker.text.mrope_interleaved);
  g_assert_cmpint (c->talker.text.num_experts, ==, 8);       /* num_local_experts */
  g_assert_cmpint (c->talker.text.shared_expert_intermediate_size, ==, 24);
  g_assert_cmpint (c->talker.codec_eos_id, ==, 2150);
  g_assert_cmpint (qomni_config_speaker_id (c, "Ethan"), ==, 2302);
  g_assert_cmpint (c->code2wav.upsample_rates[3], ==, 3);
  g_assert_cmpint (c->thinker.audio.n_window_infer, ==, 200);
  g_assert_cmpint (c->thinker.vision.n_deepstack, ==, 2);
  g_assert_cmpfloat (c->code2wav.transformer.rope_theta, ==, 10000.0);
}

static void
test_layout_matches_fixture (void)
{
  g_autoptr (QomniConfig) c = load_fixture_config ();
  QomniWeights *w = refs_open ("tiny-omni");
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (c, QOMNI_PART_ALL);
  g_assert_cmpuint (specs->len, ==, 494);
  assert_layout_matches (specs, w);
  qomni_weights_free (w);
}

/* The tiny preset written as JSON and read back describes the fixture's layout; the full
 * preset has the release's 28,010 tensors and 35,259,818,545 parameters. */
static void
test_presets (void)
{
  GError *error = NULL;
  g_autoptr (QomniConfig) tiny = qomni_config_preset ("tiny", &error);
  g_assert_no_error (error);
  g_autofree char *json = qomni_config_to_json (tiny);
  g_autoptr (QomniConfig) back = qomni_config_load_from_data (json, -1, "tiny preset", &error);
  g_assert_no_error (error);
  QomniWeights *w = refs_open ("tiny-omni");
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (back, QOMNI_PART_ALL);
  assert_layout_matches (specs, w);
  qomni_weights_free (w);

  g_autoptr (QomniConfig) full = qomni_config_preset ("full", &error);
  g_assert_no_error (error);
  g_autoptr (GPtrArray) fs = qomni_checkpoint_layout (full, QOMNI_PART_ALL);
  g_assert_cmpuint (fs->len, ==, 28010);
  guint64 params = 0;
  for (guint i = 0; i < fs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (fs, i);
    guint64 n = 1;
    for (int d = 0; d < s->ndim; d++)
      n *= (guint64) s->shape[d];
    params += n;
  }
  g_assert_cmpuint (params, ==, G_GUINT64_CONSTANT (35259818545));

  g_assert_null (qomni_config_preset ("huge", &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
}

/* Writes raw bytes: 8-byte header length, header text, then data_len zero bytes. */
static char *
write_raw_safetensors (const char *name, const char *header, gsize data_len)
{
  char *path = g_build_filename (tmpdir, name, NULL);
  GString *s = g_string_new (NULL);
  guint64 hlen = strlen (header);
  for (int i = 0; i < 8; i++)
    g_string_append_c (s, (char) ((hlen >> (8 * i)) & 0xff));
  g_string_append (s, header);
  for (gsize i = 0; i < data_len; i++)
    g_string_append_c (s, 0);
  g_assert_true (g_file_set_contents (path, s->str, (gssize) s->len, NULL));
  g_string_free (s, TRUE);
  return path;
}

static void
expect_error (const char *path, int code, const char *must_mention)
{
  GError *error = NULL;
  QomniWeights *w = qomni_weights_open (path, &error);
  g_assert_null (w);
  g_assert_error (error, QOMNI_ERROR, code);
  if (g_test_verbose ())
    g_printerr ("# %s\n", error->message);
  if (!strstr (error->message, must_mention))
    g_error ("error '%s' does not mention '%s'", error->message, must_mention);
  g_error_free (error);
}

static void
test_bad_safetensors (void)
{
  g_autofree char *p1 = write_raw_safetensors (
      "past-end.safetensors",
      "{\"w.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
      "\"w.weight\":{\"dtype\":\"F32\",\"shape\":[256],\"data_offsets\":[16,1040]}}", 16);
  expect_error (p1, QOMNI_ERROR_FORMAT, "w.weight");
  expect_error (p1, QOMNI_ERROR_FORMAT, "past-end.safetensors");

  g_autofree char *p2 = write_raw_safetensors (
      "size.safetensors", "{\"a.b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8);
  expect_error (p2, QOMNI_ERROR_MISMATCH, "a.b");

  g_autofree char *p3 = write_raw_safetensors (
      "dtype.safetensors", "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
  expect_error (p3, QOMNI_ERROR_UNSUPPORTED, "F8_E4M3");

  g_autofree char *p4 = write_raw_safetensors ("json.safetensors", "{\"x\": [1, 2", 0);
  expect_error (p4, QOMNI_ERROR_FORMAT, "json.safetensors");

  g_autofree char *p5 = write_raw_safetensors (
      "neg.safetensors", "{\"y\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
  expect_error (p5, QOMNI_ERROR_FORMAT, "y");

  /* header length larger than the file */
  g_autofree char *p6 = g_build_filename (tmpdir, "short.safetensors", NULL);
  g_assert_true (g_file_set_contents (p6, "\xff\xff\x00\x00\x00\x00\x00\x00{}", 10, NULL));
  expect_error (p6, QOMNI_ERROR_FORMAT, "short.safetensors");

  g_autofree char *p7 = g_build_filename (tmpdir, "tiny.safetensors", NULL);
  g_assert_true (g_file_set_contents (p7, "abc", 3, NULL));
  expect_error (p7, QOMNI_ERROR_FORMAT, "tiny.safetensors");

  expect_error ("/nonexistent/qomni-model", QOMNI_ERROR_IO, "/nonexistent/qomni-model");
}

/* A copy of the fixture folder whose files can be broken one at a time. */
static char *
copy_fixture (const char *name)
{
  char *dst = g_build_filename (tmpdir, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  const char *files[] = { "config.json", "model.safetensors.index.json",
                          "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                          "model-00003-of-00003.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *rel = g_build_filename ("tiny-omni", files[i], NULL);
    g_autofree char *src = refs_path (rel);
    g_autofree char *out = g_build_filename (dst, files[i], NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (src, &data, &len, NULL));
    g_assert_true (g_file_set_contents (out, data, (gssize) len, NULL));
  }
  return dst;
}

static void
test_bad_checkpoints (void)
{
  /* a missing shard */
  g_autofree char *d1 = copy_fixture ("missing-shard");
  g_autofree char *s1 = g_build_filename (d1, "model-00002-of-00003.safetensors", NULL);
  g_assert_cmpint (g_unlink (s1), ==, 0);
  expect_error (d1, QOMNI_ERROR_IO, "model-00002-of-00003.safetensors");

  /* a truncated shard: the last tensor's bytes are gone */
  g_autofree char *d2 = copy_fixture ("truncated");
  g_autofree char *s2 = g_build_filename (d2, "model-00003-of-00003.safetensors", NULL);
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (s2, &data, &len, NULL));
  g_assert_true (g_file_set_contents (s2, data, (gssize) (len - 1000), NULL));
  expect_error (d2, QOMNI_ERROR_FORMAT, "model-00003-of-00003.safetensors");

  /* the index names a tensor its shard does not hold */
  g_autofree char *d3 = copy_fixture ("missing-tensor");
  g_autofree char *idx = g_build_filename (d3, "model.safetensors.index.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (idx, &text, NULL, NULL));
  g_autofree char *changed = NULL;
  {
    GString *s = g_string_new (text);
    g_string_replace (s, "\"weight_map\": {", "\"weight_map\": {\"thinker.ghost.weight\": "
                      "\"model-00001-of-00003.safetensors\", ", 1);
    changed = g_string_free (s, FALSE);
  }
  g_assert_true (g_file_set_contents (idx, changed, -1, NULL));
  expect_error (d3, QOMNI_ERROR_MISSING, "thinker.ghost.weight");

  /* a missing tensor or a shape the config disagrees with, when a component asks */
  QomniWeights *w = refs_open ("tiny-omni");
  GError *error = NULL;
  g_assert_null (qomni_weights_get (w, &error, 1, (int64_t[]) { 32 }, "thinker.model.nothing"));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "thinker.model.nothing"));
  g_clear_error (&error);
  g_assert_null (qomni_weights_get (w, &error, 2, (int64_t[]) { 32, 33 },
                                    "thinker.model.layers.0.self_attn.k_proj.weight"));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH);
  g_assert_nonnull (strstr (error->message, "k_proj"));
  g_assert_nonnull (strstr (error->message, "model-0000"));
  g_clear_error (&error);
  qomni_weights_free (w);
}

static void
test_bad_config (void)
{
  g_autofree char *p = refs_path ("tiny-omni/config.json");
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
  GError *error = NULL;

  /* drop the thinker text model's hidden_size (the first "hidden_size" after text_config) */
  GString *s = g_string_new (text);
  char *tc = strstr (s->str, "\"vocab_size\": 152064");
  g_assert_nonnull (tc);
  char *hs = g_strrstr_len (s->str, tc - s->str, "\"hidden_size\": 32,");
  g_assert_nonnull (hs);
  memcpy (hs, "\"hidden_sizX\"", 13);
  g_assert_null (qomni_config_load_from_data (s->str, -1, "broken.json", &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "thinker_config.text_config.hidden_size"));
  g_assert_nonnull (strstr (error->message, "broken.json"));
  g_clear_error (&error);
  g_string_free (s, TRUE);

  /* a field of the wrong type */
  s = g_string_new (text);
  g_string_replace (s, "\"num_experts\": 8", "\"num_experts\": \"eight\"", 1);
  g_assert_null (qomni_config_load_from_data (s->str, -1, "typed.json", &error));
  g_assert_nonnull (strstr (error->message, "num_experts"));
  g_clear_error (&error);
  g_string_free (s, TRUE);

  g_assert_null (qomni_config_load_from_data ("[1, 2]", -1, "array.json", &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_FORMAT);
  g_clear_error (&error);
  g_assert_null (qomni_config_load ("/nonexistent/config.json", &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_IO);
  g_clear_error (&error);
}

/* Round trip through the writer: random bf16 values read back bit-exact. */
static gboolean
fill_pattern (const QomniTensorSpec *spec, QomniDType dtype, void *dst, gsize nbytes,
              gpointer user, GError **error)
{
  guint16 *v = dst;
  for (gsize i = 0; i < nbytes / 2; i++)
    v[i] = (guint16) (i * 2654435761u + strlen (spec->name));
  return TRUE;
}

static void
test_writer_roundtrip (void)
{
  g_autoptr (QomniConfig) c = load_fixture_config ();
  g_autoptr (GPtrArray) specs = qomni_checkpoint_layout (c, QOMNI_PART_TALKER);
  g_autofree char *dir = g_build_filename (tmpdir, "written", NULL);
  GError *error = NULL;
  g_assert_true (qomni_safetensors_write_checkpoint (dir, specs, QOMNI_DTYPE_BF16, 100000,
                                                     fill_pattern, NULL, &error));
  g_assert_no_error (error);
  QomniWeights *w = qomni_weights_open (dir, &error);
  g_assert_no_error (error);
  assert_layout_matches (specs, w);
  for (guint i = 0; i < specs->len; i++) {
    const QomniTensorSpec *s = g_ptr_array_index (specs, i);
    const QomniTensor *t = qomni_weights_find (w, s->name);
    const guint16 *v = t->data;
    for (gsize k = 0; k < t->nbytes / 2; k++)
      g_assert_cmpuint (v[k], ==, (guint16) (k * 2654435761u + strlen (s->name)));
  }
  qomni_weights_free (w);
}

static void
rm_rf (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      rm_rf (child);
    }
    g_dir_close (d);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("qomni-weights-XXXXXX", NULL);
  g_test_add_func ("/config/fields", test_config_fields);
  g_test_add_func ("/config/bad", test_bad_config);
  g_test_add_func ("/weights/layout-matches-fixture", test_layout_matches_fixture);
  g_test_add_func ("/weights/presets", test_presets);
  g_test_add_func ("/weights/bad-safetensors", test_bad_safetensors);
  g_test_add_func ("/weights/bad-checkpoints", test_bad_checkpoints);
  g_test_add_func ("/weights/writer-roundtrip", test_writer_roundtrip);
  int rc = g_test_run ();
  rm_rf (tmpdir);
  g_free (tmpdir);
  return rc;
}
