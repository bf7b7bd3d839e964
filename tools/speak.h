/* qomni generate --speak: the talker runs beside the thinker, one frame as soon as its
 * text row exists, and Code2Wav decodes the frames into a 24 kHz WAV file. */
#pragma once

#include "positions.h"

#include "model.h"
#include "thinker.h"

typedef struct _SpeechOut SpeechOut;

typedef struct {
  const char *wav_path;
  const char *speaker;     /* NULL: the reference default */
  int max_frames;          /* ≤ 0: until codec EOS */
  int chunk_frames, left_context;
  gboolean greedy;
  gboolean print_codes;    /* "codes: c0 … c15" per frame on stdout */
  QomniVk *vk;             /* borrowed: the talker, code predictor and Code2Wav run there;
                            * NULL: the CPU */
} SpeechOutOptions;

/* (transfer full) Captures the thinker's states from now on. */
SpeechOut *speech_out_new (QomniModel *model, QomniThinker *thinker,
                           const SpeechOutOptions *opt, GError **error);
/* The thinker prompt's ids and its images'/videos' grids in prompt order (the talker builds
 * its own prompt and 3-D positions from them); grids are copied. */
void speech_out_set_prompt (SpeechOut *s, const int *ids, int n, const QomniMediaGrid *grids,
                            int n_grids);
/* After each generated token: feeds the new thinker rows and makes every frame they allow. */
gboolean speech_out_step (SpeechOut *s, GError **error);
/* The thinker has finished: drains the talker and the vocoder and writes the file. */
gboolean speech_out_finish (SpeechOut *s, GError **error);
void speech_out_free (SpeechOut *s);
