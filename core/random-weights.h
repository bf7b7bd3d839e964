/* qomni — deterministic random weights for test and benchmark checkpoints.
 *
 * Each tensor's values depend only on (seed, tensor name, element index), so a checkpoint
 * can be written tensor by tensor in any order, or generated in parallel, identically.
 * Scales keep activations of a random model finite and varied: norm gains near 1,
 * matrices uniform with variance 1/fan_in, small biases, log-scale Snake parameters near 0.
 */
#pragma once

#include "checkpoint.h"
#include "weights.h"

G_BEGIN_DECLS

/* Fills dst[nbytes] with the tensor's values in dtype (f32, f16 or bf16). */
void qomni_random_fill (const QomniTensorSpec *spec, QomniDType dtype, guint64 seed, void *dst,
                        gsize nbytes);

G_END_DECLS

G_BEGIN_DECLS
typedef enum {
  QOMNI_RANDOM_WEIGHTS_DEFAULT = 0,
  /* advise the kernel to back the store with transparent huge pages (2 MiB): fewer TLB
   * misses when a decode step streams gigabytes of weights */
  QOMNI_RANDOM_WEIGHTS_HUGE_PAGES = 1 << 0,
} QomniRandomWeightsFlags;

/* (transfer full) A weight store holding the given tensors with random values, made in
 * memory as one allocation: 2-D matrices in `matrix_dtype` (bf16, f16, f32, q8_0, q4_0),
 * everything else in f32. For benchmarks of shapes too large to write to disk. NULL with
 * an error when memory runs out. */
QomniWeights *qomni_random_weights (GPtrArray *specs, QomniDType matrix_dtype, guint64 seed,
                                    QomniRandomWeightsFlags flags, GError **error);
G_END_DECLS
