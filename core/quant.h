/* qomni — block quantization formats, laid out as ggml lays them out so GGUF files
 * from llama.cpp's tools read directly. The scalar _ref functions are the oracle
 * every faster kernel (CPU SIMD, GLSL) is tested against. */
#pragma once

#include <stdint.h>

#define QOMNI_QK8_0 32
#define QOMNI_QK4_0 32

/* 32 weights = d · qs[i]; 34 bytes. */
typedef struct {
  uint16_t d;               /* f16 scale */
  int8_t qs[QOMNI_QK8_0];
} QomniBlockQ8_0;
_Static_assert (sizeof (QomniBlockQ8_0) == 34, "Q8_0 block is 34 bytes");

/* 32 weights = d · (q − 8); low nibbles hold elements 0..15, high nibbles 16..31; 18 bytes. */
typedef struct {
  uint16_t d;               /* f16 scale */
  uint8_t qs[QOMNI_QK4_0 / 2];
} QomniBlockQ4_0;
_Static_assert (sizeof (QomniBlockQ4_0) == 18, "Q4_0 block is 18 bytes");

/* n is a multiple of 32. */
void qomni_quantize_row_q8_0_ref (const float *x, QomniBlockQ8_0 *y, int64_t n);
void qomni_quantize_row_q4_0_ref (const float *x, QomniBlockQ4_0 *y, int64_t n);
void qomni_dequantize_row_q8_0 (const void *x, float *y, int64_t n);
void qomni_dequantize_row_q4_0 (const void *x, float *y, int64_t n);
