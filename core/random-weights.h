/* qomni — deterministic random weights for test and benchmark checkpoints.
 *
 * Each tensor's values depend only on (seed, tensor name, element index), so a checkpoint
 * can be written tensor by tensor in any order, or generated in parallel, identically.
 * Scales keep activations of a random model finite and varied: norm gains near 1,
 * matrices uniform with variance 1/fan_in, small biases, log-scale Snake parameters near 0.
 */
#pragma once

#include "checkpoint.h"

G_BEGIN_DECLS

/* Fills dst[nbytes] with the tensor's values in dtype (f32, f16 or bf16). */
void qomni_random_fill (const QomniTensorSpec *spec, QomniDType dtype, guint64 seed, void *dst,
                        gsize nbytes);

G_END_DECLS
