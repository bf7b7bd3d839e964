/* qomni — scalar reference quantizers and dequantizers for Q8_0 and Q4_0. */
#include "quant.h"
#include "tensor.h"

#include <math.h>

void
qomni_quantize_row_q8_0_ref (const float *x, QomniBlockQ8_0 *y, int64_t n)
{
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    const float *xb = x + b * QOMNI_QK8_0;
    float amax = 0.0f;
    for (int i = 0; i < QOMNI_QK8_0; i++)
      amax = fmaxf (amax, fabsf (xb[i]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = qomni_f32_to_f16 (d);
    for (int i = 0; i < QOMNI_QK8_0; i++)
      y[b].qs[i] = (int8_t) roundf (xb[i] * id);
  }
}

void
qomni_quantize_row_q4_0_ref (const float *x, QomniBlockQ4_0 *y, int64_t n)
{
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    const float *xb = x + b * QOMNI_QK4_0;
    /* The value of largest magnitude maps to -8, so its sign is kept exactly. */
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < QOMNI_QK4_0; i++) {
      if (fabsf (xb[i]) > amax) {
        amax = fabsf (xb[i]);
        max = xb[i];
      }
    }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = qomni_f32_to_f16 (d);
    for (int i = 0; i < QOMNI_QK4_0 / 2; i++) {
      int q0 = (int) (xb[i] * id + 8.5f);
      int q1 = (int) (xb[i + QOMNI_QK4_0 / 2] * id + 8.5f);
      q0 = q0 > 15 ? 15 : q0;
      q1 = q1 > 15 ? 15 : q1;
      y[b].qs[i] = (uint8_t) (q0 | (q1 << 4));
    }
  }
}

void
qomni_dequantize_row_q8_0 (const void *x, float *y, int64_t n)
{
  const QomniBlockQ8_0 *blocks = x;
  for (int64_t b = 0; b < n / QOMNI_QK8_0; b++) {
    float d = qomni_f16_to_f32 (blocks[b].d);
    for (int i = 0; i < QOMNI_QK8_0; i++)
      y[b * QOMNI_QK8_0 + i] = d * (float) blocks[b].qs[i];
  }
}

void
qomni_dequantize_row_q4_0 (const void *x, float *y, int64_t n)
{
  const QomniBlockQ4_0 *blocks = x;
  for (int64_t b = 0; b < n / QOMNI_QK4_0; b++) {
    float d = qomni_f16_to_f32 (blocks[b].d);
    for (int i = 0; i < QOMNI_QK4_0 / 2; i++) {
      y[b * QOMNI_QK4_0 + i] = d * (float) ((blocks[b].qs[i] & 0x0f) - 8);
      y[b * QOMNI_QK4_0 + i + QOMNI_QK4_0 / 2] = d * (float) ((blocks[b].qs[i] >> 4) - 8);
    }
  }
}
