/* qomni — random weights written on the Vulkan device, for benchmarks of shapes that never
 * exist as a file. */
#pragma once

#include "tensor.h"
#include "vk-device.h"

G_BEGIN_DECLS

/* Fills the first n_blocks blocks of b with random Q8_0 or Q4_0 weights (dtype): element i
 * uniform in [−scale, scale] (fill_random's hash of seed and i), quantized as the CPU
 * reference quantizers quantize (core/quant.c). b holds at least the blocks' bytes rounded
 * up to 16. Submits and waits. */
gboolean qomni_vk_fill_random_blocks (QomniVk *vk, QomniVkBuffer *b, QomniDType dtype,
                                      uint64_t n_blocks, float scale, uint32_t seed,
                                      GError **error);

G_END_DECLS
