/* qomni — reading audio, image and video files of any format GStreamer decodes. */
#pragma once

#include "image.h"

#include <glib.h>

G_BEGIN_DECLS

/* (transfer full) The samples of the file at path, decoded, mixed down to mono and
 * resampled to 16 kHz (filesrc ! decodebin ! audioconvert ! audioresample ! appsink);
 * *n_samples receives their count. NULL with an error naming the file on failure. */
float *qomni_audio_file_read (const char *path, int *n_samples, GError **error);

/* (transfer full) The first picture of the file at path as packed RGB, 3·width bytes a
 * row (filesrc ! decodebin ! videoconvert ! appsink). NULL with an error naming the file. */
guint8 *qomni_image_file_read (const char *path, int *width, int *height, GError **error);

/* Frames sampled from a video file, each already resized (Pillow-exact bicubic, as an image
 * is) to the size smart_resize gives for the file's frame size under the video pixel
 * budget, so that qomni_video_preprocess takes them as they are. */
typedef struct {
  guint8 **frames;       /* n_frames packed RGB frames, 3·width bytes a row */
  int n_frames;
  int width, height;     /* of every frame, multiples of 32 */
  int source_width, source_height;
  double fps;            /* frames per second of video the frames stand for */
  double duration_s;     /* the video's length as sampled (frames taken / fps) */
} QomniVideoFrames;

/* Decodes the file's pictures (filesrc ! decodebin ! videoconvert ! RGB ! appsink), takes
 * one each 1/fps s by timestamp (every one when they carry none, as qomniencode does),
 * resizes each to params' budget as it arrives, and keeps at most
 * max_frames of them spread evenly over the whole video (when more arrive, every other one
 * kept is dropped and later ones are taken at half the rate, so memory stays within
 * 2·max_frames frames; at the end max_frames are picked evenly, as the reference's
 * linspace over the frames does). The count is rounded down to even (one frame stays one
 * frame: the preprocessor repeats it). out->fps is the rate of the kept frames,
 * fps · kept / sampled; second_per_grid = 2 / out->fps. */
gboolean qomni_video_file_read (const char *path, double fps, int max_frames,
                                const QomniImageParams *params, QomniVideoFrames *out,
                                GError **error);
void qomni_video_frames_clear (QomniVideoFrames *v);

G_END_DECLS
