/* qomni bench — where each component is made. One function per component, one line
 * each: when a GPU constructor (`qomni_*_new_on (…, QomniVk *vk, …)`) lands, it replaces
 * the CPU one here and the matching *_where says so; every section follows. */
#include "bench.h"

QomniThinker *
bench_thinker_new (Bench *b, int max_ctx, GError **error)
{
  return qomni_thinker_new_on (b->model->weights, b->model->config, max_ctx, b->vk, error);
}

const char *
bench_thinker_where (const Bench *b)
{
  return b->vk ? "vulkan" : "cpu";
}

QomniAudioEncoder *
bench_encoder_new (Bench *b, GError **error)
{
  return qomni_audio_encoder_new_on (b->model->weights, b->model->config, b->vk, error);
}

const char *
bench_encoder_where (const Bench *b)
{
  return b->vk ? "vulkan" : "cpu";
}

QomniTalker *
bench_talker_new (Bench *b, int max_ctx, GError **error)
{
  return qomni_talker_new_on (b->model->weights, b->model->config, max_ctx, b->vk, error);
}

const char *
bench_talker_where (const Bench *b)
{
  return b->vk ? "vulkan" : "cpu";
}

QomniCode2Wav *
bench_code2wav_new (Bench *b, GError **error)
{
  return qomni_code2wav_new_on (b->model->weights, b->model->config, b->vk, error);
}

const char *
bench_code2wav_where (const Bench *b)
{
  return b->vk ? "vulkan" : "cpu";
}
