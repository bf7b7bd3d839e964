/* qomni bench — what the sections of the benchmark share (tools/cmd-bench.c runs them):
 * the model and device under test, the measured hardware figures, the report that
 * collects every figure (printed as a table as it comes, written as JSON at the end) and
 * the constructors of the components.
 *
 * Sections: bench-thinker.c (prefill, decode), bench-encoder.c (audio encoder),
 * bench-speech.c (talker + code predictor, Code2Wav), bench-pipeline.c (the elements end to
 * end, one stream and several). Each figure may carry its hardware floor: the same figure
 * if the work ran at the hardware's limit (bytes ÷ bandwidth, FLOPs ÷ peak), so the gap
 * is visible. */
#pragma once

#include "audio-encoder.h"
#include "code2wav.h"
#include "model.h"
#include "talker.h"
#include "thinker.h"

#include <glib.h>
#include <math.h>

typedef struct _BenchReport BenchReport;

typedef enum {
  BENCH_THINKER = 1 << 0,
  BENCH_ENCODER = 1 << 1,
  BENCH_TALKER = 1 << 2,
  BENCH_VOCODER = 1 << 3,
  BENCH_PIPELINE = 1 << 4,
  BENCH_STREAMS = 1 << 5,
  BENCH_ALL = 0x3f,
} BenchSections;

typedef struct {
  /* what runs */
  QomniModel *model;           /* loaded, or random weights made in memory */
  const char *model_desc;      /* "random tiny q8_0" or the path */
  gboolean random;
  gboolean huge_pages;         /* random weights advised as transparent huge pages */
  QomniVk *vk;                 /* NULL: the CPU */
  const char *device;          /* as given: cpu, vulkan, vulkan:N */
  BenchReport *report;
  /* hardware figures the floors divide by; ≤ 0 when unknown (no floor printed) */
  double cpu_bandwidth_gbs, cpu_peak_gflops;   /* measured here */
  double gpu_bandwidth_gbs, gpu_peak_gflops;   /* --bandwidth, --peak-gflops */
  /* sizes, from the options */
  GArray *prefill_sizes, *decode_contexts, *audio_seconds, *chunk_sizes, *streams;  /* ints */
  int decode_tokens;           /* tokens timed at each decode context */
  double fill_budget_s;        /* longest a decode context may take to fill */
  int max_tokens, max_frames;  /* bounds of a spoken answer */
  int left_context;            /* Code2Wav frames of left context per chunk */
  int pipeline_chunk;          /* qomnivocoder chunk-frames in the pipeline sections */
  double question_s;           /* seconds of the pushed question */
} Bench;

/* ---- the report ---------------------------------------------------------------------- */

BenchReport *bench_report_new (void);
void bench_report_free (BenchReport *r);
/* One figure of a section, printed at once as a table row. param_name/param: what size
 * it was measured at (NULL for none), e.g. "tokens", 512. floor ≤ 0 or NAN: none. */
void bench_figure (Bench *b, const char *section, const char *figure, const char *param_name,
                   int param, double value, const char *unit, double floor,
                   const char *floor_basis);
/* Something a section did not measure, and why (printed, and kept in the JSON). */
void bench_skip (Bench *b, const char *section, const char *what, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);
/* Marks a section as run (so an empty one still appears in the JSON with its skips). */
void bench_section (Bench *b, const char *section);
/* The whole report as JSON text (transfer full). */
char *bench_report_json (const Bench *b);

/* ---- hardware figures (bench-hw.c) -------------------------------------------------- */

/* GB/s of a parallel read of a buffer larger than the caches (best of a few passes). */
double bench_measure_cpu_bandwidth (void);
/* GFLOP/s of independent f32 FMAs on every thread (AVX2+FMA where the CPU has it). */
double bench_measure_cpu_peak_gflops (void);
/* Bytes of weights that one token reads from the tensors whose names start with prefix
 * (NULL: all), counting k of n routed experts (names holding ".experts."), one row of
 * embedding tables (names holding "embed") and skipping names containing `except`. */
double bench_weight_bytes (const QomniWeights *w, const char *prefix, const char *except,
                           int experts_per_tok, int num_experts);
/* Multiply-accumulate count of one token through those tensors (elements, same rules). */
double bench_weight_macs (const QomniWeights *w, const char *prefix, const char *except,
                          int experts_per_tok, int num_experts);
/* Available memory (MemAvailable) in bytes, or 0 when unknown. */
guint64 bench_available_memory (void);

/* ---- where each component runs -------------------------------------------------------
 * Every section makes its component through these, so moving a component to the GPU is a
 * one-line change here when its `_new_on (…, QomniVk *vk, …)` constructor lands. The
 * *_where functions say in the report where it ran. (bench-components.c) */
QomniThinker *bench_thinker_new (Bench *b, int max_ctx, GError **error);
QomniAudioEncoder *bench_encoder_new (Bench *b, GError **error);
QomniTalker *bench_talker_new (Bench *b, int max_ctx, GError **error);
QomniCode2Wav *bench_code2wav_new (Bench *b, GError **error);
const char *bench_thinker_where (const Bench *b);
const char *bench_encoder_where (const Bench *b);
const char *bench_talker_where (const Bench *b);
const char *bench_code2wav_where (const Bench *b);

/* ---- sections ------------------------------------------------------------------------ */

void bench_run_thinker (Bench *b);
void bench_run_encoder (Bench *b);
void bench_run_talker (Bench *b);
void bench_run_vocoder (Bench *b);
/* Both need GStreamer and the qomni plugin; without them they record a skip. */
void bench_run_pipeline (Bench *b);
void bench_run_streams (Bench *b);

/* The bandwidth and peak of where a component runs ("cpu" or "vulkan"). */
static inline double
bench_bandwidth (const Bench *b, const char *where)
{
  return g_str_equal (where, "cpu") ? b->cpu_bandwidth_gbs : b->gpu_bandwidth_gbs;
}

static inline double
bench_peak (const Bench *b, const char *where)
{
  return g_str_equal (where, "cpu") ? b->cpu_peak_gflops : b->gpu_peak_gflops;
}

/* Seconds since an arbitrary origin (monotonic). */
static inline double
bench_now (void)
{
  return (double) g_get_monotonic_time () / 1e6;
}
