/* qomni — reading an audio file of any format GStreamer decodes as 16 kHz mono float. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* (transfer full) The samples of the file at path, decoded, mixed down to mono and
 * resampled to 16 kHz (filesrc ! decodebin ! audioconvert ! audioresample ! appsink);
 * *n_samples receives their count. NULL with an error naming the file on failure. */
float *qomni_audio_file_read (const char *path, int *n_samples, GError **error);

G_END_DECLS
