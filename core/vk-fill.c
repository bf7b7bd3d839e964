/* qomni — random weights written on the Vulkan device. */
#include "vk-fill.h"
#include "error.h"
#include "vk-ops.h"

gboolean
qomni_vk_fill_random_blocks (QomniVk *vk, QomniVkBuffer *b, QomniDType dtype, uint64_t n_blocks,
                             float scale, uint32_t seed, GError **error)
{
  if (dtype != QOMNI_DTYPE_Q8_0 && dtype != QOMNI_DTYPE_Q4_0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "random blocks on the GPU: %s is not a block format",
                 qomni_dtype_info (dtype)->name);
    return FALSE;
  }
  if (n_blocks > G_MAXUINT32 / 17) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "random blocks on the GPU: %" G_GUINT64_FORMAT " blocks exceed one dispatch's "
                 "32-bit word offsets", n_blocks);
    return FALSE;
  }
  QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
  if (!c)
    return FALSE;
  /* one invocation per pair of blocks; the grid strides over the rest */
  QomniVkFillBlocksPush p = { .n_blocks = (uint32_t) n_blocks, .seed = seed,
                              .q4 = dtype == QOMNI_DTYPE_Q4_0, .scale = scale };
  const uint64_t groups = MIN ((n_blocks / 2 + 64) / 64, 16384);
  QomniVkBind bb[] = { { b } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM_BLOCKS, bb, 1, &p, sizeof p,
                     (uint32_t) MAX (groups, 1), 1, 1);
  return qomni_vk_cmd_submit (c, error);
}
