/* qomni generate — a prompt through the thinker, the answer streamed to stdout. */
#include "audio-encoder.h"
#include "commands.h"
#include "error.h"
#include "generate.h"
#include "mel.h"
#include "model.h"
#include "ops-cpu.h"
#include "speak.h"
#include "image.h"
#include "vision-encoder.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif
#ifdef QOMNI_HAVE_GST_MEDIA_FILE
#include "media-file.h"
#endif

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_SYSTEM "You are a helpful assistant."

typedef struct {
  SpeechOut *speech;   /* NULL without --speak */
  GError *error;
} Run;

/* Streams the text; with --speak, lets the talker take every frame the new row allows. */
static gboolean
on_token (int id, const char *text, gpointer user)
{
  Run *run = user;
  fputs (text, stdout);
  fflush (stdout);
  if (run->speech && id >= 0 && !run->error)
    return speech_out_step (run->speech, &run->error);
  return TRUE;
}

/* (transfer full) The audio file's embeddings [*n_rows, output_dim]: decode, log-mel, AuT
 * encoder. */
static float *
encode_audio_file (const QomniModel *model, const char *path, int *n_rows, GError **error)
{
#ifdef QOMNI_HAVE_GST_MEDIA_FILE
  int n = 0;
  g_autofree float *pcm = qomni_audio_file_read (path, &n, error);
  if (!pcm)
    return NULL;
  QomniAudioEncoder *enc = qomni_audio_encoder_new (model->weights, model->config, error);
  if (!enc)
    return NULL;
  const int n_mels = model->config->thinker.audio.num_mel_bins;
  const int T = qomni_mel_n_frames (n);
  const int A = qomni_audio_encoder_n_tokens (enc, T);
  g_autofree float *features = g_new (float, (gsize) n_mels * MAX (T, 1));
  float *rows = g_new (float, (gsize) MAX (A, 1) * qomni_audio_encoder_output_dim (enc));
  QomniMel *mel = qomni_mel_new (n_mels);
  gboolean ok = qomni_mel_compute (mel, pcm, n, features, error) &&
                qomni_audio_encoder_encode (enc, features, T, rows, error);
  qomni_mel_free (mel);
  qomni_audio_encoder_free (enc);
  if (!ok) {
    g_free (rows);
    return NULL;
  }
  *n_rows = A;
  return rows;
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "--audio needs GStreamer, and this qomni was built without it");
  return NULL;
#endif
}

/* An image for the prompt: its rows and DeepStack features, its grid. */
typedef struct {
  float *embeds, *deepstack;
  QomniVisualRows rows;
  QomniMediaGrid grid;
} Image;

static void
image_clear (Image *im)
{
  g_free (im->embeds);
  g_free (im->deepstack);
}

/* The vision encoder on preprocessed pixels: im gets the rows and the grid. */
static gboolean
encode_pixels (const QomniModel *model, const float *pixels, const int grid[3],
               float second_per_grid, Image *im, GError **error)
{
  QomniVisionEncoder *enc = qomni_vision_encoder_new (model->weights, model->config, error);
  if (!enc)
    return FALSE;
  const int n = qomni_vision_encoder_n_tokens (enc, grid);
  const int D = qomni_vision_encoder_output_dim (enc), K = qomni_vision_encoder_n_deepstack (enc);
  im->embeds = g_new (float, (gsize) n * D);
  im->deepstack = g_new (float, (gsize) MAX (K, 1) * n * D);
  gboolean ok = qomni_vision_encoder_reserve (enc, (int64_t) grid[0] * grid[1] * grid[2], error) &&
                qomni_vision_encoder_encode (enc, pixels, grid, im->embeds, im->deepstack, error);
  qomni_vision_encoder_free (enc);
  im->rows = (QomniVisualRows) { im->embeds, K ? im->deepstack : NULL, n, K };
  im->grid = (QomniMediaGrid) { grid[0], grid[1], grid[2], second_per_grid };
  return ok;
}

/* Decode, preprocess (the processor's defaults, capped at max_pixels), vision encoder. */
static gboolean
encode_image_file (const QomniModel *model, const char *path, int max_pixels, Image *im,
                   GError **error)
{
#ifdef QOMNI_HAVE_GST_MEDIA_FILE
  int w = 0, h = 0;
  g_autofree guint8 *rgb = qomni_image_file_read (path, &w, &h, error);
  if (!rgb)
    return FALSE;
  QomniImageParams p = QOMNI_IMAGE_PARAMS_DEFAULT;
  if (max_pixels > 0)
    p.max_pixels = max_pixels;
  g_autofree float *pixels = NULL;
  int grid[3];
  return qomni_image_preprocess (rgb, w, h, 3 * w, &p, &pixels, grid, error) &&
         encode_pixels (model, pixels, grid, 0.0f, im, error);
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "--image needs GStreamer, and this qomni was built without it");
  return FALSE;
#endif
}

/* Decode frames at fps (at most max_frames, each within max_pixels), preprocess them as
 * one video, vision encoder. The grid's second_per_grid is temporal_patch_size over the
 * rate the kept frames stand for. */
static gboolean
encode_video_file (const QomniModel *model, const char *path, double fps, int max_frames,
                   int max_pixels, Image *im, GError **error)
{
#ifdef QOMNI_HAVE_GST_MEDIA_FILE
  QomniImageParams p = QOMNI_VIDEO_PARAMS_DEFAULT;
  p.temporal_patch_size = model->config->thinker.vision.temporal_patch_size;
  if (max_pixels > 0) {
    p.max_pixels = max_pixels;
    p.min_pixels = MIN (p.min_pixels, max_pixels);
  }
  QomniVideoFrames v;
  if (!qomni_video_file_read (path, fps, max_frames, &p, &v, error))
    return FALSE;
  g_autofree float *pixels = NULL;
  int grid[3];
  gboolean ok = qomni_video_preprocess ((const guint8 *const *) v.frames, v.n_frames, v.width,
                                        v.height, 3 * v.width, &p, &pixels, grid, error) &&
                encode_pixels (model, pixels, grid,
                               (float) (p.temporal_patch_size / v.fps), im, error);
  if (ok)
    fprintf (stderr, "video: %d frames of %dx%d (from %dx%d, %.2f s) at %.3g fps -> grid %d×%d×%d,"
             " %d tokens\n", v.n_frames, v.width, v.height, v.source_width, v.source_height,
             v.duration_s, v.fps, grid[0], grid[1], grid[2], im->rows.n_rows);
  qomni_video_frames_clear (&v);
  return ok;
#else
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "--video needs GStreamer, and this qomni was built without it");
  return FALSE;
#endif
}

int
qomni_cmd_generate (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *system = NULL, *prompt = NULL, *audio_path = NULL;
  g_autofree char *image_path = NULL, *device = NULL, *video_path = NULL;
  int max_pixels = 448 * 448;
  double video_fps = 2.0;
  int max_video_frames = 768, video_max_pixels = 768 * 32 * 32;
  gboolean video_audio = FALSE, print_prompt_ids = FALSE;
  int max_tokens = 256, top_k = 20, ctx_len = 4096;
  double temperature = 0.7, top_p = 0.8, rep = 1.0;
  gint64 seed = 0;
  gboolean greedy = FALSE, print_ids = FALSE, print_codes = FALSE;
  g_autofree char *speak = NULL, *speaker = NULL;
  int max_frames = 0, chunk_frames = 300, left_context = 25;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "checkpoint folder", "DIR" },
    { "system", 0, 0, G_OPTION_ARG_STRING, &system, "system prompt (default: \"" DEFAULT_SYSTEM "\"; \"\" for none)", "TEXT" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "the user's message", "TEXT" },
    { "audio", 'a', 0, G_OPTION_ARG_FILENAME, &audio_path, "an audio file sent before the prompt (any format GStreamer decodes)", "FILE" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "cpu (default) or vulkan[:N]: where the thinker (and with --speak the talker, code predictor and Code2Wav) run", "DEV" },
    { "image", 'i', 0, G_OPTION_ARG_FILENAME, &image_path, "an image sent before the prompt (any format GStreamer decodes)", "FILE" },
    { "max-pixels", 0, 0, G_OPTION_ARG_INT, &max_pixels, "resize larger images to at most this many pixels (448x448)", "N" },
    { "video", 0, 0, G_OPTION_ARG_FILENAME, &video_path, "a video sent before the prompt (any format GStreamer decodes)", "FILE" },
    { "fps", 0, 0, G_OPTION_ARG_DOUBLE, &video_fps, "video frames sampled per second (2)", "F" },
    { "max-video-frames", 0, 0, G_OPTION_ARG_INT, &max_video_frames, "most video frames, spread over the whole video (768)", "N" },
    { "video-max-pixels", 0, 0, G_OPTION_ARG_INT, &video_max_pixels, "resize video frames to at most this many pixels (768x32x32)", "N" },
    { "use-audio-in-video", 0, 0, G_OPTION_ARG_NONE, &video_audio, "also hear the video's soundtrack, interleaved with its frames", NULL },
    { "print-prompt-ids", 0, 0, G_OPTION_ARG_NONE, &print_prompt_ids, "print the prompt's token ids as a line 'prompt ids: ...' before generating", NULL },
    { "max-tokens", 'n', 0, G_OPTION_ARG_INT, &max_tokens, "most tokens to generate (256)", "N" },
    { "greedy", 0, 0, G_OPTION_ARG_NONE, &greedy, "always take the most likely token", NULL },
    { "temperature", 0, 0, G_OPTION_ARG_DOUBLE, &temperature, "sampling temperature (0.7; 0 = greedy)", "T" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "sample from the K most likely (20; 0 = all)", "K" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &top_p, "nucleus mass (0.8; 1 = off)", "P" },
    { "repetition-penalty", 0, 0, G_OPTION_ARG_DOUBLE, &rep, "HF repetition penalty (1 = off)", "R" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "random seed (0)", "S" },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len, "context length to allocate (4096)", "N" },
    { "print-ids", 0, 0, G_OPTION_ARG_NONE, &print_ids, "end with a line 'ids: ...' of the generated ids", NULL },
    { "speak", 0, 0, G_OPTION_ARG_FILENAME, &speak, "also speak the answer into a 24 kHz WAV file", "OUT.wav" },
    { "speaker", 0, 0, G_OPTION_ARG_STRING, &speaker, "voice: ethan, chelsie or aiden (default ethan)", "NAME" },
    { "max-frames", 0, 0, G_OPTION_ARG_INT, &max_frames, "most codec frames, 80 ms each (4096, as the reference)", "N" },
    { "print-codes", 0, 0, G_OPTION_ARG_NONE, &print_codes, "print each codec frame as 'codes: c0 ... c15'", NULL },
    { "chunk-frames", 0, 0, G_OPTION_ARG_INT, &chunk_frames, "frames per vocoder call (300)", "N" },
    { "left-context", 0, 0, G_OPTION_ARG_INT, &left_context, "frames of left context per vocoder call (25)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new (NULL);
  g_option_context_set_summary (octx, "Runs a prompt through Qwen3-Omni's thinker on the CPU "
                                "and streams the answer to stdout.");
  g_option_context_add_main_entries (octx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (octx, &argc, &argv, &error)) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  if (!model_path || (!prompt && !audio_path && !image_path && !video_path)) {
    fprintf (stderr, "qomni generate: --model and --prompt (or --audio, --image, --video) are "
             "required\n");
    return 2;
  }
  if (video_audio && (!video_path || audio_path)) {
    fprintf (stderr, "qomni generate: --use-audio-in-video needs --video and no --audio\n");
    return 2;
  }
  if (max_tokens < 1 || ctx_len < 16) {
    fprintf (stderr, "qomni generate: --max-tokens must be ≥ 1 and --ctx ≥ 16\n");
    return 2;
  }
  if (!prompt)
    prompt = g_strdup ("");
  if (!g_utf8_validate (prompt, -1, NULL) || (system && !g_utf8_validate (system, -1, NULL))) {
    fprintf (stderr, "qomni generate: the prompt is not valid UTF-8\n");
    return 2;
  }

  g_autoptr (QomniModel) model = qomni_model_load (model_path, &error);
  if (!model) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  int n_audio = 0;
  g_autofree float *audio = NULL;
  const char *sound = video_audio ? video_path : audio_path;
  if (sound && !(audio = encode_audio_file (model, sound, &n_audio, &error))) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  Image image = { 0 };
  if (image_path && !encode_image_file (model, image_path, max_pixels, &image, &error)) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    image_clear (&image);
    return 1;
  }
  Image video = { 0 };
  if (video_path && !encode_video_file (model, video_path, video_fps, max_video_frames,
                                        video_max_pixels, &video, &error)) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    image_clear (&image);
    image_clear (&video);
    return 1;
  }
  QomniChat *chat = qomni_chat_new ();
  if (!system || *system) {
    /* --system "" leaves the system turn out, as a conversation without one does */
    qomni_chat_begin (chat, "system");
    qomni_chat_text (chat, system ? system : DEFAULT_SYSTEM);
    qomni_chat_end (chat);
  }
  qomni_chat_begin (chat, "user");
  /* media before the text, as the reference's chat template puts them in the order given */
  if (image_path)
    qomni_chat_image (chat, image.rows.n_rows);
  if (video_path && video_audio) {
    const int per = video.rows.n_rows / MAX (video.grid.grid_t, 1);
    qomni_chat_video_with_audio (chat, video.grid.grid_t, per, video.grid.second_per_grid,
                                 model->config->thinker.position_id_per_seconds, n_audio);
  } else if (video_path) {
    qomni_chat_video (chat, video.rows.n_rows);
  }
  if (audio && !video_audio)
    qomni_chat_audio (chat, n_audio);
  qomni_chat_text (chat, prompt);
  qomni_chat_end (chat);
  qomni_chat_assistant_prompt (chat);
  int n_ids = 0;
  g_autofree int *ids = qomni_chat_tokenize (chat, model->tokenizer, &n_ids, &error);
  qomni_chat_free (chat);
  if (ids && print_prompt_ids) {
    printf ("prompt ids:");
    for (int i = 0; i < n_ids; i++)
      printf (" %d", ids[i]);
    printf ("\n");
    fflush (stdout);
  }
  QomniVk *vk = NULL;
  if (ids && device && g_str_has_prefix (device, "vulkan")) {
#ifdef QOMNI_HAVE_VULKAN
    const int index = device[6] == ':' ? atoi (device + 7) : -1;
    vk = qomni_vk_new (index, &error);
    if (!vk)
      g_clear_pointer (&ids, g_free);
#else
    g_set_error (&error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "this qomni was built without Vulkan");
    g_clear_pointer (&ids, g_free);
#endif
  } else if (device && g_strcmp0 (device, "cpu") != 0 && g_strcmp0 (device, "auto") != 0) {
    fprintf (stderr, "qomni generate: --device must be cpu or vulkan[:N]\n");
    return 2;
  }
  QomniThinker *thinker = ids ? qomni_thinker_new_on (model->weights, model->config,
                                                      MAX (ctx_len, n_ids + max_tokens), vk,
                                                      &error)
                              : NULL;
  if (!thinker) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  QomniGenerateParams params = {
    .sampling = { greedy ? 0.0f : (float) temperature, top_k, (float) top_p, (float) rep,
                  (guint64) seed },
    .max_tokens = max_tokens,
    .stop_ids = { -1, -1, -1, -1 },
  };
  Run run = { NULL, NULL };
  if (speak) {
    SpeechOutOptions so = { speak, speaker, max_frames, chunk_frames, left_context, greedy,
                            print_codes, vk };
    run.speech = speech_out_new (model, thinker, &so, &error);
    if (!run.speech) {
      fprintf (stderr, "qomni generate: %s\n", error->message);
      g_error_free (error);
      qomni_thinker_free (thinker);
      return 1;
    }
    speech_out_set_prompt (run.speech, ids, n_ids, image_path ? &image.grid : NULL,
                           image_path ? 1 : 0);
  }
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (int));
  QomniGenerateStats st;
  /* grids in prompt order: the image comes first */
  QomniMediaGrid grids[2];
  int n_grids = 0;
  if (image_path)
    grids[n_grids++] = image.grid;
  if (video_path)
    grids[n_grids++] = video.grid;
  const QomniThinkerMedia media = {
    .audio = audio, .n_audio = n_audio,
    .images = image_path ? &image.rows : NULL,
    .videos = video_path ? &video.rows : NULL,
    .grids = grids, .n_grids = n_grids,
  };
  gboolean ok = qomni_generate_media (thinker, model->tokenizer, ids, n_ids, &media, &params,
                                      on_token, &run, out, &st, &error);
  image_clear (&image);
  image_clear (&video);
  if (ok && run.error) {
    g_propagate_error (&error, run.error);
    ok = FALSE;
  }
  fputc ('\n', stdout);
  if (print_ids) {
    printf ("ids:");
    for (guint i = 0; i < out->len; i++)
      printf (" %d", g_array_index (out, int, i));
    printf ("\n");
  }
  fflush (stdout);
  if (ok && run.speech)
    ok = speech_out_finish (run.speech, &error);
  speech_out_free (run.speech);
  qomni_thinker_free (thinker);
#ifdef QOMNI_HAVE_VULKAN
  if (vk)
    qomni_vk_free (vk);
#endif
  if (!ok) {
    fprintf (stderr, "qomni generate: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  const int decoded = MAX (st.generated - 1, 0);
  fprintf (stderr, "prefill: %d tokens in %.1f ms (%.1f tokens/s); decode: %d tokens in %.1f ms "
           "(%.1f tokens/s); %d threads\n", st.prompt_tokens, st.prefill_seconds * 1e3,
           st.prompt_tokens / MAX (st.prefill_seconds, 1e-9), decoded, st.decode_seconds * 1e3,
           decoded / MAX (st.decode_seconds, 1e-9), qomni_cpu_threads ());
  return 0;
}
