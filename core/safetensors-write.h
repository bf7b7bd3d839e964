/* qomni — writing checkpoints in the release layout: sharded safetensors plus
 * model.safetensors.index.json. Tensor data is produced one tensor at a time by a
 * callback and streamed to disk, so a 66 GB model never sits in memory. */
#pragma once

#include "checkpoint.h"

G_BEGIN_DECLS

/* Fills dst (the tensor's bytes in `dtype`) for one tensor. */
typedef gboolean (*QomniTensorFillFn) (const QomniTensorSpec *spec, QomniDType dtype, void *dst,
                                       gsize nbytes, gpointer user, GError **error);

/* Writes specs into dir as model-0000K-of-0000N.safetensors shards of at most
 * shard_bytes each (0: one shard) and the index. Progress goes to progress_fn when set. */
gboolean qomni_safetensors_write_checkpoint (const char *dir, GPtrArray *specs, QomniDType dtype,
                                             guint64 shard_bytes, QomniTensorFillFn fill,
                                             gpointer user, GError **error);

G_END_DECLS
