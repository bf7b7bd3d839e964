/* qomni — the prompt attention's kernel choice (see attention-vk.h). */
#include "attention-vk.h"

/* (row, head) pairs per workgroup of attn_tiled.comp and its largest head */
#define TILED_PAIRS 32u
#define TILED_MAX_HD 128u

QomniVkPipe
qomni_vk_attn_pipe (const QomniVkAttnPush *ap)
{
  const gboolean tiled = ap->hd % 4 == 0 && ap->hd <= TILED_MAX_HD && ap->k_off % 4 == 0
                         && ap->v_off % 4 == 0 && ap->kv_stride % 4 == 0;
  return tiled ? QOMNI_VK_PIPE_ATTN_TILED : QOMNI_VK_PIPE_ATTENTION;
}

void
qomni_vk_rec_attention (QomniVkCmd *c, const QomniVkAttnPush *ap, const QomniVkBuffer *q,
                        const QomniVkBuffer *k, const QomniVkBuffer *v, const QomniVkBuffer *o)
{
  if (ap->n == 0)
    return;
  QomniVkBind b[] = { { q }, { k }, { v }, { o } };
  const QomniVkPipe pipe = qomni_vk_attn_pipe (ap);
  if (pipe == QOMNI_VK_PIPE_ATTN_TILED) {
    /* pairs of one KV head: n rows × the nh / nkv query heads that share it */
    const uint64_t pairs = (uint64_t) ap->n * (ap->nh / ap->nkv);
    qomni_vk_dispatch (c, pipe, b, 4, ap, sizeof *ap,
                       (uint32_t) ((pairs + TILED_PAIRS - 1) / TILED_PAIRS), ap->nkv, 1);
  } else {
    qomni_vk_dispatch (c, pipe, b, 4, ap, sizeof *ap, ap->nh, ap->n, 1);
  }
}
