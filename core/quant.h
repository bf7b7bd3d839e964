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

/* ---- CPU dot products (quant-cpu.c) ----
 *
 * A matrix-vector product is one dot per weight row. Two ways to feed the activation x:
 *   - as f32 (qomni_vec_dot_*_f32): exact products, but every int8 weight is widened to f32;
 *   - quantized once to Q8_0 (qomni_quantize_row_q8_0, O(n) per product) and dotted int8 by
 *     int8 (qomni_vec_dot_*_q8_0): the faster path, adding x's own Q8_0 rounding
 *     (|Δx| <= d_x / 2 per element) to the result.
 * The public functions pick the best kernel this CPU runs (AVX512-VNNI, else AVX2+FMA+F16C,
 * else portable C that the compiler vectorizes for baseline x86-64). n is a multiple of 32.
 * The int8 paths assume weights in [-127, 127], which every Q8_0 quantizer writes; a
 * foreign -128 can saturate an AVX2 pair sum. */
float qomni_vec_dot_q8_0_f32 (const void *row, const float *x, int64_t n);
float qomni_vec_dot_q4_0_f32 (const void *row, const float *x, int64_t n);
void qomni_quantize_row_q8_0 (const float *x, void *y, int64_t n);
float qomni_vec_dot_q8_0_q8_0 (const void *row, const void *xq, int64_t n);
float qomni_vec_dot_q4_0_q8_0 (const void *row, const void *xq, int64_t n);

/* Every implementation, for tests and benchmarks. REF dequantizes a block to f32 and dots in
 * plain scalar C: the oracle. */
typedef enum {
  QOMNI_CPU_REF,
  QOMNI_CPU_GENERIC,
  QOMNI_CPU_AVX2,
  QOMNI_CPU_AVX512_VNNI,   /* the AVX2 kernels with the int8 products as one vpdpbusd */
  QOMNI_CPU_N_LEVELS
} QomniCpuLevel;

typedef struct {
  const char *name;
  float (*dot_q8_0_f32) (const void *row, const float *x, int64_t n);
  float (*dot_q4_0_f32) (const void *row, const float *x, int64_t n);
  float (*dot_q8_0_q8_0) (const void *row, const void *xq, int64_t n);
  float (*dot_q4_0_q8_0) (const void *row, const void *xq, int64_t n);
} QomniQuantKernels;

/* NULL when this build or CPU cannot run that level. */
const QomniQuantKernels *qomni_quant_kernels (QomniCpuLevel level);
/* The level the public functions use. */
QomniCpuLevel qomni_quant_best_level (void);
