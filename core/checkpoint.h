/* qomni — the release checkpoint's layout: every tensor name and shape that a config
 * implies (architecture notes §12). Used to make random-weight checkpoints of any width
 * and to check that a checkpoint has everything a component needs. */
#pragma once

#include "config.h"
#include "tensor.h"

G_BEGIN_DECLS

typedef struct {
  char *name;
  int ndim;
  int64_t shape[QOMNI_MAX_DIMS];
} QomniTensorSpec;

/* Which components to list. */
typedef enum {
  QOMNI_PART_THINKER_TEXT = 1 << 0,
  QOMNI_PART_AUDIO = 1 << 1,
  QOMNI_PART_VISION = 1 << 2,
  QOMNI_PART_TALKER = 1 << 3,
  QOMNI_PART_CODE2WAV = 1 << 4,
  QOMNI_PART_ALL = 0x1f,
} QomniParts;

/* (transfer full) An array of QomniTensorSpec* in a stable order (component, layer, name);
 * free with g_ptr_array_unref. Parts absent from the config are skipped. */
GPtrArray *qomni_checkpoint_layout (const QomniConfig *config, QomniParts parts);

G_END_DECLS
