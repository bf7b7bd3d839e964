/* qomni — reading audio and image files of any format GStreamer decodes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* (transfer full) The samples of the file at path, decoded, mixed down to mono and
 * resampled to 16 kHz (filesrc ! decodebin ! audioconvert ! audioresample ! appsink);
 * *n_samples receives their count. NULL with an error naming the file on failure. */
float *qomni_audio_file_read (const char *path, int *n_samples, GError **error);

/* (transfer full) The first picture of the file at path as packed RGB, 3·width bytes a
 * row (filesrc ! decodebin ! videoconvert ! appsink). NULL with an error naming the file. */
guint8 *qomni_image_file_read (const char *path, int *width, int *height, GError **error);

G_END_DECLS
