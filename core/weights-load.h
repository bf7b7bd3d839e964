/* qomni — private: loading a component's weights by release name. Each macro stores the
 * tensor (or its float copy) in dst, or jumps to the caller's `fail:` label with `error`
 * set; the caller has `const QomniWeights *w` and `GError **error` in scope. */
#pragma once

#include "weights.h"

/* dst = the 2-D weight [rows, cols] named printf-style (borrowed, any weight dtype) */
#define QOMNI_LOAD_MAT(dst, rows, cols, ...)                                                \
  G_STMT_START {                                                                           \
    dst = qomni_weights_get (w, error, 2, (int64_t[]) { rows, cols }, __VA_ARGS__);        \
    if (!dst)                                                                              \
      goto fail;                                                                           \
  } G_STMT_END

/* dst = a float copy of the 1-D tensor [len] named printf-style (owned) */
#define QOMNI_LOAD_VEC(dst, len, ...)                                                       \
  G_STMT_START {                                                                           \
    dst = qomni_weights_get_f32 (w, error, len, __VA_ARGS__);                              \
    if (!dst)                                                                              \
      goto fail;                                                                           \
  } G_STMT_END
