/* Image preprocessing, the vision encoder and the thinker with an image on the CPU against
 * transformers (tiny-omni fixture, float32 reference).
 * Tolerances: pixel values 1e-6 normwise relative error (they are exact in practice); vision
 * embeddings, DeepStack features and the last logits 1e-4; positions and grids exact.
 * The resampler is checked against digests of Pillow 9.4's BICUBIC output on the same
 * synthetic images (the fixture image is not resized by the processor settings). */
#include "refs.h"
#include "config.h"
#include "error.h"
#include "image.h"
#include "positions.h"
#include "thinker.h"
#include "tokenizer.h"
#include "vision-encoder.h"

#include <string.h>

#define TOL 1e-4
#define IMG_H 64
#define IMG_W 96

typedef struct {
  QomniWeights *w, *refs;
  QomniConfig *cfg;
  QomniImageParams params;   /* the fixture's processor settings */
} Fixture;

static Fixture fx;

static void
fixture_load (void)
{
  RefsTiny tiny;
  refs_tiny_load (&tiny);
  fx.w = tiny.w;
  fx.refs = tiny.refs;
  fx.cfg = tiny.cfg;
  /* refs.json "vision.processor": min_pixels 4096, max_pixels 65536 */
  fx.params = QOMNI_IMAGE_PARAMS_DEFAULT;
  fx.params.min_pixels = 4096;
  fx.params.max_pixels = 65536;
}

static const guint8 *
fixture_image (void)
{
  const QomniTensor *t = qomni_weights_find (fx.refs, "vision.image_u8");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, QOMNI_DTYPE_U8);
  g_assert_cmpint (qomni_tensor_nelements (t), ==, IMG_H * IMG_W * 3);
  return t->data;
}

static void
test_pixel_values (void)
{
  GError *error = NULL;
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (fixture_image (), IMG_W, IMG_H, IMG_W * 3, &fx.params,
                                         &pv, grid, &error));
  g_assert_no_error (error);
  int n_grid;
  g_autofree int *ref_grid = refs_ints (fx.refs, "vision.grid_thw", &n_grid);
  g_assert_cmpint (n_grid, ==, 3);
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (grid[i], ==, ref_grid[i]);
  const int n = grid[0] * grid[1] * grid[2] * 1536;
  assert_close ("pixel_values", pv, refs_f32 (fx.refs, "vision.pixel_values", n), n, 1e-6);
  g_free (pv);
}

/* FNV-1a over bytes, as the Pillow digests below were made. */
static guint32
fnv1a (const guint8 *b, gsize n)
{
  guint32 h = 2166136261u;
  for (gsize i = 0; i < n; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static guint8 *
pattern (int w, int h)
{
  guint8 *p = g_new (guint8, (gsize) w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        p[((gsize) y * w + x) * 3 + c] = (guint8) (((x * x * 7 + y * 13 + c * 101) ^ (x * y)) & 255);
  return p;
}

/* Image.fromarray (pattern, "RGB").resize ((ow, oh), BICUBIC, reducing_gap=None) in
 * Pillow 9.4: up, down, mixed, one axis only, a single pixel. */
static void
test_resize_matches_pillow (void)
{
  static const struct {
    int w, h, ow, oh;
    guint32 fnv;
    guint64 sum;
  } cases[] = {
    { 37, 23, 64, 32, 0x5871aa35u, 794382 },
    { 101, 67, 32, 64, 0x0564bc43u, 780256 },
    { 250, 170, 64, 32, 0x4f4ac7a9u, 783698 },
    { 64, 64, 64, 96, 0x9cf231e9u, 2338960 },
    { 90, 64, 32, 64, 0x8b8e07abu, 781146 },
    { 1, 1, 64, 64, 0x262e4dc5u, 1241088 },
    { 33, 47, 64, 96, 0x7f0ce071u, 2344932 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    GError *error = NULL;
    g_autofree guint8 *src = pattern (cases[i].w, cases[i].h);
    const gsize n = (gsize) cases[i].ow * cases[i].oh * 3;
    g_autofree guint8 *dst = g_new (guint8, n);
    g_assert_true (qomni_image_resize_rgb (src, cases[i].w, cases[i].h, cases[i].w * 3, dst,
                                           cases[i].ow, cases[i].oh, &error));
    g_assert_no_error (error);
    guint64 sum = 0;
    for (gsize j = 0; j < n; j++)
      sum += dst[j];
    if (g_test_verbose ())
      g_printerr ("# resize %dx%d -> %dx%d: sum %" G_GUINT64_FORMAT "\n", cases[i].w, cases[i].h,
                  cases[i].ow, cases[i].oh, sum);
    g_assert_cmpuint (sum, ==, cases[i].sum);
    g_assert_cmpuint (fnv1a (dst, n), ==, cases[i].fnv);
  }
}

static void
test_smart_resize (void)
{
  GError *error = NULL;
  const QomniImageParams *rel = &QOMNI_IMAGE_PARAMS_DEFAULT;
  int h, w;
  /* the architecture notes' example, and the fixture image (already a multiple of 32) */
  g_assert_true (qomni_image_smart_resize (448, 448, rel, &h, &w, &error));
  g_assert_cmpint (h, ==, 448);
  g_assert_cmpint (w, ==, 448);
  g_assert_true (qomni_image_smart_resize (IMG_H, IMG_W, &fx.params, &h, &w, &error));
  g_assert_cmpint (h, ==, 64);
  g_assert_cmpint (w, ==, 96);
  /* round() ties to even: 48/32 = 1.5 -> 2, 80/32 = 2.5 -> 2 */
  g_assert_true (qomni_image_smart_resize (48, 80, rel, &h, &w, &error));
  g_assert_cmpint (h, ==, 64);
  g_assert_cmpint (w, ==, 64);
  /* 4000×3000 rounds to 4000×3008, within max_pixels; 5000×4000 is above it and goes
   * to floor(h/β/32)·32 */
  g_assert_true (qomni_image_smart_resize (3000, 4000, rel, &h, &w, &error));
  g_assert_cmpint (h, ==, 3008);
  g_assert_cmpint (w, ==, 4000);
  g_assert_true (qomni_image_smart_resize (4000, 5000, rel, &h, &w, &error));
  g_assert_cmpint (h, ==, 3200);
  g_assert_cmpint (w, ==, 4000);
  g_assert_cmpint ((gint64) h * w, <=, rel->max_pixels);
  /* aspect ratio 201 is refused, 200 accepted */
  g_assert_false (qomni_image_smart_resize (1, 201, rel, &h, &w, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_true (qomni_image_smart_resize (10, 2000, rel, &h, &w, &error));
  g_assert_no_error (error);
  g_assert_cmpint (h, ==, 32);
  g_assert_cmpint (w, ==, 800);
}

static void
test_encoder (void)
{
  GError *error = NULL;
  QomniVisionEncoder *enc = qomni_vision_encoder_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
  const int grid[3] = { 1, 4, 6 };
  const int n_tok = qomni_vision_encoder_n_tokens (enc, grid), D = qomni_vision_encoder_output_dim (enc);
  const int K = qomni_vision_encoder_n_deepstack (enc);
  g_assert_cmpint (n_tok, ==, 6);
  g_assert_cmpint (K, ==, 2);
  const float *pv = refs_f32 (fx.refs, "vision.pixel_values", 24 * 1536);
  g_autofree float *emb = g_new (float, n_tok * D);
  g_autofree float *deep = g_new (float, K * n_tok * D);
  g_assert_true (qomni_vision_encoder_encode (enc, pv, grid, emb, deep, &error));
  g_assert_no_error (error);
  assert_close ("vision.embeds", emb, refs_f32 (fx.refs, "vision.embeds", n_tok * D), n_tok * D,
                TOL);
  for (int k = 0; k < K; k++) {
    g_autofree char *name = g_strdup_printf ("vision.deepstack.%d", k);
    assert_close (name, deep + (gsize) k * n_tok * D, refs_f32 (fx.refs, name, n_tok * D),
                  n_tok * D, TOL);
  }

  /* A bad grid is an error, not a crash. */
  const int bad[3] = { 1, 3, 6 };
  g_assert_false (qomni_vision_encoder_encode (enc, pv, bad, emb, deep, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  qomni_vision_encoder_free (enc);
}

static void
test_positions (void)
{
  GError *error = NULL;
  int n, n_ref;
  g_autofree int *ids = refs_ints (fx.refs, "vision.prompt_ids", &n);
  g_autofree int *ref = refs_ints (fx.refs, "vision.position_ids", &n_ref);
  g_assert_cmpint (n_ref, ==, 3 * n);
  const QomniMediaGrid grid = { 1, 4, 6, 0.0f };
  g_autofree int *pos = g_new (int, 3 * n);
  int next = 0;
  g_assert_true (qomni_positions_build (&fx.cfg->thinker, ids, n, &grid, 1, 0, pos, &next,
                                        &error));
  g_assert_no_error (error);
  for (int i = 0; i < 3 * n; i++)
    g_assert_cmpint (pos[i], ==, ref[i]);
}

/* Video positions against the architecture notes §7.3.4, derived here with explicit loops
 * (no video reference tensors exist: fixtures/README.md lists image ones only). The notes
 * state the rule precisely: <|vision_start|> takes s, s0 = s + 1, the token of temporal
 * patch k, merged row i, col j gets (s0 + k·second_per_grid·13, s0 + i, s0 + j), tokens in
 * (k, i, j) order, <|vision_end|> 1 + the largest so far, text continues from there.
 * second_per_grid 1.0 (fps 2) gives a whole step of 13. */
static void
test_positions_video (void)
{
  const QomniThinkerConfig *c = &fx.cfg->thinker;
  g_assert_cmpint (c->position_id_per_seconds, ==, 13);
  const int T = 3, GH = 4, GW = 6;            /* patches; merged 2 × 3 */
  const int mh = GH / 2, mw = GW / 2, nv = T * mh * mw;
  const int n = 2 + 1 + nv + 1 + 2;
  g_autofree int *ids = g_new (int, n);
  int k = 0;
  ids[k++] = 100; ids[k++] = 101;
  ids[k++] = c->vision_start_token_id;
  for (int v = 0; v < nv; v++)
    ids[k++] = c->video_token_id;
  ids[k++] = c->vision_end_token_id;
  ids[k++] = 102; ids[k++] = 103;
  g_assert_cmpint (k, ==, n);

  const int start = 5;
  g_autofree int *want = g_new (int, 3 * n);
  int s = start, p = 0, mx = 0;
  for (; p < 3; p++, s++)                      /* two text tokens and <|vision_start|> */
    want[p] = want[n + p] = want[2 * n + p] = s;
  const int s0 = s;
  for (int kt = 0; kt < T; kt++)
    for (int i = 0; i < mh; i++)
      for (int j = 0; j < mw; j++, p++) {
        want[p] = s0 + kt * 13;
        want[n + p] = s0 + i;
        want[2 * n + p] = s0 + j;
        mx = MAX (mx, MAX (want[p], MAX (want[n + p], want[2 * n + p])));
      }
  s = mx + 1;
  for (; p < n; p++, s++)                      /* <|vision_end|> and two text tokens */
    want[p] = want[n + p] = want[2 * n + p] = s;

  const QomniMediaGrid grid = { T, GH, GW, 1.0f };
  g_autofree int *pos = g_new (int, 3 * n);
  int next = 0;
  GError *error = NULL;
  g_assert_true (qomni_positions_build (c, ids, n, &grid, 1, start, pos, &next, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 3 * n; i++)
    g_assert_cmpint (pos[i], ==, want[i]);
  g_assert_cmpint (next, ==, s);
  /* the last temporal patch is what moves the text after the video: 5+3 + 2·13 + 1 */
  g_assert_cmpint (want[n - 3], ==, start + 3 + (T - 1) * 13 + 1);

  /* fps 1 (2 s per temporal patch): step 26 */
  const QomniMediaGrid slow = { T, GH, GW, 2.0f };
  g_assert_true (qomni_positions_build (c, ids, n, &slow, 1, 0, pos, &next, &error));
  g_assert_cmpint (pos[3 + 2 * mh * mw], ==, 3 + 2 * 26);
}

/* A video with its soundtrack (§7.3.5): video tokens as above, audio token a at s0 + a on
 * every axis, the two merged by that time value with the video token first on a tie. That
 * both openers <|vision_start|><|audio_start|> share position s and both closers share
 * 1 + the largest so far is what transformers' get_rope_index does (it appends one position
 * per opener from the same start); the notes only say they are two tokens each. */
static void
test_positions_audio_in_video (void)
{
  const QomniThinkerConfig *c = &fx.cfg->thinker;
  const int T = 2, GH = 2, GW = 4, per = (GH / 2) * (GW / 2), nv = T * per, na = 20;
  const float spg = 1.0f;                      /* fps 2: patch k at time 13·k */
  /* the interleaved order, merged here on its own */
  g_autofree int *body = g_new (int, nv + na);
  g_autofree int *t_of = g_new (int, nv + na);
  int v = 0, a = 0, b = 0;
  while (v < nv || a < na) {
    const int tv = (v / per) * 13;
    if (v < nv && (a >= na || tv <= a)) {
      body[b] = c->video_token_id;
      t_of[b++] = tv;
      v++;
    } else {
      body[b] = c->audio_token_id;
      t_of[b++] = a++;
    }
  }
  /* the chat template writes the same order */
  g_autoptr (QomniChat) chat = qomni_chat_new ();
  qomni_chat_video_with_audio (chat, T, per, spg, 13, na);
  GString *expect = g_string_new ("<|vision_start|><|audio_start|>");
  for (int i = 0; i < nv + na; i++)
    g_string_append (expect, body[i] == c->video_token_id ? "<|video_pad|>" : "<|audio_pad|>");
  g_string_append (expect, "<|audio_end|><|vision_end|>");
  g_assert_cmpstr (qomni_chat_text_so_far (chat), ==, expect->str);
  g_string_free (expect, TRUE);

  const int n = 1 + 2 + nv + na + 2 + 1;
  g_autofree int *ids = g_new (int, n);
  int k = 0;
  ids[k++] = 100;
  ids[k++] = c->vision_start_token_id;
  ids[k++] = c->audio_start_token_id;
  memcpy (ids + k, body, sizeof (int) * (nv + na));
  k += nv + na;
  ids[k++] = c->audio_end_token_id;
  ids[k++] = c->vision_end_token_id;
  ids[k++] = 101;

  g_autofree int *want = g_new (int, 3 * n);
  int mx = 0;
  want[0] = want[n] = want[2 * n] = 0;
  for (int p = 1; p <= 2; p++)
    want[p] = want[n + p] = want[2 * n + p] = 1;
  const int s0 = 2;
  for (int i = 0, vi = 0; i < nv + na; i++) {
    const int p = 3 + i;
    if (body[i] == c->video_token_id) {
      want[p] = s0 + t_of[i];
      want[n + p] = s0 + (vi / (GW / 2)) % (GH / 2);
      want[2 * n + p] = s0 + vi % (GW / 2);
      vi++;
    } else {
      want[p] = want[n + p] = want[2 * n + p] = s0 + t_of[i];
    }
    mx = MAX (mx, MAX (want[p], MAX (want[n + p], want[2 * n + p])));
  }
  for (int p = n - 3; p < n - 1; p++)
    want[p] = want[n + p] = want[2 * n + p] = mx + 1;
  want[n - 1] = want[2 * n - 1] = want[3 * n - 1] = mx + 2;

  const QomniMediaGrid grid = { T, GH, GW, spg };
  g_autofree int *pos = g_new (int, 3 * n);
  int next = 0;
  GError *error = NULL;
  g_assert_true (qomni_positions_build (c, ids, n, &grid, 1, 0, pos, &next, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 3 * n; i++)
    g_assert_cmpint (pos[i], ==, want[i]);
  g_assert_cmpint (next, ==, mx + 3);

  /* a video run that holds fewer video pads than its grid is refused */
  ids[3] = c->audio_token_id;
  g_assert_false (qomni_positions_build (c, ids, n, &grid, 1, 0, pos, &next, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
}

/* Preprocess the fixture image, encode it, and run the thinker on the image prompt. */
static void
test_prefill (void)
{
  GError *error = NULL;
  QomniVisionEncoder *enc = qomni_vision_encoder_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (fixture_image (), IMG_W, IMG_H, IMG_W * 3, &fx.params,
                                         &pv, grid, &error));
  const int n_tok = qomni_vision_encoder_n_tokens (enc, grid);
  const int D = qomni_vision_encoder_output_dim (enc), K = qomni_vision_encoder_n_deepstack (enc);
  g_autofree float *emb = g_new (float, n_tok * D);
  g_autofree float *deep = g_new (float, K * n_tok * D);
  g_assert_true (qomni_vision_encoder_encode (enc, pv, grid, emb, deep, &error));
  g_assert_no_error (error);
  g_free (pv);

  int n;
  g_autofree int *ids = refs_ints (fx.refs, "vision.prompt_ids", &n);
  QomniThinker *t = qomni_thinker_new (fx.w, fx.cfg, 64, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qomni_thinker_hidden_size (t), ==, D);
  const int V = qomni_thinker_vocab_size (t);
  const QomniMediaGrid mg = { grid[0], grid[1], grid[2], 0.0f };
  const QomniVisualRows image = { emb, deep, n_tok, K };
  const QomniThinkerMedia media = { .images = &image, .grids = &mg, .n_grids = 1 };
  g_autofree float *logits = g_new (float, V);
  g_assert_true (qomni_thinker_prefill_media (t, ids, n, &media, logits, &error));
  g_assert_no_error (error);
  const float *ref = refs_f32 (fx.refs, "vision.prefill_logits_last", V);
  assert_close ("prefill_logits_last", logits, ref, V, TOL);

  /* Without DeepStack the logits move well away: the injection is what matched. */
  qomni_thinker_reset (t);
  const QomniVisualRows flat = { emb, NULL, n_tok, 0 };
  const QomniThinkerMedia media2 = { .images = &flat, .grids = &mg, .n_grids = 1 };
  g_assert_true (qomni_thinker_prefill_media (t, ids, n, &media2, logits, &error));
  g_assert_cmpfloat (rel_error (logits, ref, V), >, 100 * TOL);

  /* The plain prefill refuses a prompt with image placeholders and no image rows. */
  qomni_thinker_reset (t);
  g_assert_false (qomni_thinker_prefill (t, ids, n, NULL, 0, &mg, 1, logits, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* Rows that do not match the placeholders are refused too. */
  const QomniVisualRows short_rows = { emb, deep, n_tok - 1, K };
  const QomniThinkerMedia media3 = { .images = &short_rows, .grids = &mg, .n_grids = 1 };
  g_assert_false (qomni_thinker_prefill_media (t, ids, n, &media3, logits, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  qomni_thinker_free (t);
  qomni_vision_encoder_free (enc);
}

static gboolean
in_unit_range (const float *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!(x[i] >= -1.0f && x[i] <= 1.0f))
      return FALSE;
  return TRUE;
}

/* A 1×1 image is scaled up to the pixel budget (as the current reference does), and gives
 * a constant image. */
static void
test_tiny_image (void)
{
  GError *error = NULL;
  const guint8 px[3] = { 200, 100, 0 };
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (px, 1, 1, 3, &fx.params, &pv, grid, &error));
  g_assert_no_error (error);
  g_assert_cmpint (grid[0], ==, 1);
  g_assert_cmpint (grid[1], ==, 4);
  g_assert_cmpint (grid[2], ==, 4);
  const float want[3] = { (200 - 127.5f) / 127.5f, (100 - 127.5f) / 127.5f, -1.0f };
  for (int r = 0; r < 16; r++)
    for (int j = 0; j < 1536; j++)
      g_assert_cmpfloat (pv[r * 1536 + j], ==, want[j / 512]);
  g_free (pv);
}

/* 20000×20000 is refused from its dimensions alone: the buffer passed is 3 bytes, which the
 * preprocessor must never read past. */
static void
test_huge_image (void)
{
  GError *error = NULL;
  const guint8 px[3] = { 1, 2, 3 };
  float *pv = NULL;
  int grid[3];
  g_assert_false (qomni_image_preprocess (px, 20000, 20000, 60000, &fx.params, &pv, grid,
                                          &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_assert_null (pv);
  if (g_test_verbose ())
    g_printerr ("# %s\n", error->message);
  g_clear_error (&error);
  /* other impossible inputs */
  g_assert_false (qomni_image_preprocess (px, 0, 5, 0, &fx.params, &pv, grid, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (qomni_image_preprocess (px, 4, 4, 11, &fx.params, &pv, grid, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (qomni_image_preprocess (px, 1, 300, 3, &fx.params, &pv, grid, &error));
  g_assert_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT);
  g_clear_error (&error);
}

/* A large image within the input limit is brought down to max_pixels: the output, not
 * the input, sets the size of everything allocated. */
static void
test_large_image_bounded (void)
{
  GError *error = NULL;
  const int w = 3000, h = 2000;
  g_autofree guint8 *img = pattern (w, h);
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (img, w, h, w * 3, &fx.params, &pv, grid, &error));
  g_assert_no_error (error);
  g_assert_cmpint ((gint64) grid[1] * 16 * grid[2] * 16, <=, fx.params.max_pixels);
  g_assert_cmpint (grid[1] % 2, ==, 0);
  g_assert_cmpint (grid[2] % 2, ==, 0);
  g_assert_true (in_unit_range (pv, (gsize) grid[0] * grid[1] * grid[2] * 1536));
  g_free (pv);
}

/* Odd sizes become multiples of 32 and still encode. */
static void
test_odd_size (void)
{
  GError *error = NULL;
  g_autofree guint8 *img = pattern (33, 47);
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (img, 33, 47, 33 * 3, &fx.params, &pv, grid, &error));
  g_assert_no_error (error);
  /* 47×33 is below 4096 pixels: β = sqrt(4096/1551), h = ceil(47β/32)·32 = 96, w = 64 */
  g_assert_cmpint (grid[1], ==, 6);
  g_assert_cmpint (grid[2], ==, 4);
  const gsize n = (gsize) grid[1] * grid[2] * 1536;
  g_assert_true (in_unit_range (pv, n));

  QomniVisionEncoder *enc = qomni_vision_encoder_new (fx.w, fx.cfg, &error);
  g_assert_no_error (error);
  const int n_tok = qomni_vision_encoder_n_tokens (enc, grid), D = qomni_vision_encoder_output_dim (enc);
  g_assert_cmpint (n_tok, ==, 6);
  g_autofree float *emb = g_new (float, n_tok * D);
  g_assert_true (qomni_vision_encoder_encode (enc, pv, grid, emb, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < n_tok * D; i++)
    g_assert_true (isfinite (emb[i]));
  qomni_vision_encoder_free (enc);
  g_free (pv);
}

/* A grey image (R = G = B) with padded rows: the three channel blocks of every patch are
 * equal, and the row padding is never read into the output. */
static void
test_grey (void)
{
  GError *error = NULL;
  const int w = 64, h = 64, stride = w * 3 + 5;
  g_autofree guint8 *img = g_new0 (guint8, (gsize) stride * h);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++)
      memset (img + (gsize) y * stride + x * 3, (x * 3 + y * 5) & 255, 3);
    memset (img + (gsize) y * stride + w * 3, 0xff, 5);
  }
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_image_preprocess (img, w, h, stride, &fx.params, &pv, grid, &error));
  g_assert_no_error (error);
  g_assert_cmpint (grid[1] * grid[2], ==, 16);
  for (int r = 0; r < 16; r++)
    for (int j = 0; j < 512; j++) {
      const float *row = pv + (gsize) r * 1536;
      g_assert_cmpfloat (row[j], ==, row[512 + j]);
      g_assert_cmpfloat (row[j], ==, row[1024 + j]);
    }
  /* patch 1 of the first merge block is the one right of patch 0: its pixel (0, 0) is
   * image pixel (x 16, y 0) */
  g_assert_cmpfloat (pv[1536], ==, ((48 & 255) - 127.5f) / 127.5f);
  /* patch 2 is below patch 0: pixel (x 0, y 16) */
  g_assert_cmpfloat (pv[2 * 1536], ==, ((80 & 255) - 127.5f) / 127.5f);
  g_free (pv);
}

/* Video: 3 frames are padded to 4 with the last one, grid_t = 2. */
static void
test_video_frames (void)
{
  GError *error = NULL;
  g_autofree guint8 *f0 = g_new (guint8, 64 * 64 * 3);
  g_autofree guint8 *f1 = g_new (guint8, 64 * 64 * 3);
  g_autofree guint8 *f2 = g_new (guint8, 64 * 64 * 3);
  memset (f0, 0, 64 * 64 * 3);
  memset (f1, 255, 64 * 64 * 3);
  memset (f2, 51, 64 * 64 * 3);
  const guint8 *frames[3] = { f0, f1, f2 };
  float *pv = NULL;
  int grid[3];
  g_assert_true (qomni_video_preprocess (frames, 3, 64, 64, 64 * 3, &fx.params, &pv, grid,
                                         &error));
  g_assert_no_error (error);
  g_assert_cmpint (grid[0], ==, 2);
  g_assert_cmpint (grid[1], ==, 4);
  g_assert_cmpint (grid[2], ==, 4);
  /* row layout [channel][frame][16][16]: first temporal patch = frames 0 and 1 */
  g_assert_cmpfloat (pv[0], ==, -1.0f);
  g_assert_cmpfloat (pv[256], ==, 1.0f);
  /* second temporal patch = frame 2 twice */
  const float v2 = (51 - 127.5f) / 127.5f;
  g_assert_cmpfloat (pv[16 * 1536], ==, v2);
  g_assert_cmpfloat (pv[16 * 1536 + 256], ==, v2);
  g_free (pv);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  fixture_load ();
  g_test_add_func ("/vision/pixel-values", test_pixel_values);
  g_test_add_func ("/vision/resize-matches-pillow", test_resize_matches_pillow);
  g_test_add_func ("/vision/smart-resize", test_smart_resize);
  g_test_add_func ("/vision/encoder", test_encoder);
  g_test_add_func ("/vision/positions", test_positions);
  g_test_add_func ("/vision/positions-video", test_positions_video);
  g_test_add_func ("/vision/positions-audio-in-video", test_positions_audio_in_video);
  g_test_add_func ("/vision/prefill", test_prefill);
  g_test_add_func ("/vision/bad/tiny", test_tiny_image);
  g_test_add_func ("/vision/bad/huge", test_huge_image);
  g_test_add_func ("/vision/bad/large-bounded", test_large_image_bounded);
  g_test_add_func ("/vision/bad/odd-size", test_odd_size);
  g_test_add_func ("/vision/bad/grey", test_grey);
  g_test_add_func ("/vision/video-frames", test_video_frames);
  int rc = g_test_run ();
  qomni_config_free (fx.cfg);
  qomni_weights_free (fx.w);
  qomni_weights_free (fx.refs);
  return rc;
}
