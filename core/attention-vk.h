/* qomni — the prompt attention every Vulkan model component records: one call that picks
 * the kernel and its grid.
 *
 *   QomniVkAttnPush ap = { .n = n, .m = m, .nh = nh, .nkv = nkv, .hd = hd, … };
 *   qomni_vk_rec_attention (cmd, &ap, qbuf, kbuf, vbuf, out);
 *
 * The tiled kernel (attn_tiled.comp, flash attention over tiles of 32 (row, head) pairs
 * that share one KV head) takes every shape it can: hd a multiple of 4 up to 128, K and V
 * offsets and stride multiples of 4. Anything else goes to the per-row kernel
 * (attention.comp, hd up to 256). Internal to libqomni.
 */
#pragma once

#include "vk-device.h"
#include "vk-ops.h"

G_BEGIN_DECLS

/* The kernel qomni_vk_rec_attention records for ap: QOMNI_VK_PIPE_ATTN_TILED or
 * QOMNI_VK_PIPE_ATTENTION. */
QomniVkPipe qomni_vk_attn_pipe (const QomniVkAttnPush *ap);

/* Records attention of ap->n query rows of q against ap->m keys of k, v into o (bindings
 * 0 … 3 of either kernel; see QomniVkAttnPush). Nothing when ap->n is 0. */
void qomni_vk_rec_attention (QomniVkCmd *c, const QomniVkAttnPush *ap, const QomniVkBuffer *q,
                             const QomniVkBuffer *k, const QomniVkBuffer *v,
                             const QomniVkBuffer *o);

G_END_DECLS
