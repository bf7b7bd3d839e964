/* qomni — the error domain. Anything a user can cause is a GError in this domain
 * whose message names the file and the tensor or field involved. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QOMNI_ERROR (qomni_error_quark ())
GQuark qomni_error_quark (void);

typedef enum {
  QOMNI_ERROR_IO,            /* a file is missing or cannot be read */
  QOMNI_ERROR_FORMAT,        /* a file is malformed: bad header, truncated, offsets past the end */
  QOMNI_ERROR_MISSING,       /* a tensor or config field the model needs is absent */
  QOMNI_ERROR_MISMATCH,      /* dtype, shape or size disagree with what the model expects */
  QOMNI_ERROR_INVALID_INPUT, /* bad user input: empty prompt, invalid UTF-8, too long */
  QOMNI_ERROR_UNSUPPORTED,   /* a feature this build or device cannot do */
  QOMNI_ERROR_DEVICE,        /* the GPU failed or ran out of memory */
} QomniErrorCode;

G_END_DECLS
