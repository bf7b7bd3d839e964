/* qomni — the MoE block of a prefill on the Vulkan device, as grouped expert products. */
#include "moe-vk.h"
#include "vk-ops.h"

uint64_t
qomni_vk_moe_route_words (int n, int E, int K)
{
  return 2 * (uint64_t) E + (uint64_t) n * K;
}

void
qomni_vk_moe_prefill (QomniVkCmd *c, const QomniVkMoe *m)
{
  const uint32_t S = (uint32_t) m->n * m->K;
  QomniVkGroupPush gp = { .S = S, .E = m->E };
  QomniVkBind bg[] = { { m->ids }, { m->route } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_GROUP, bg, 2, &gp, sizeof gp, m->E, 1, 1);

  const QomniVkPipe swiglu = m->coopmat ? QOMNI_VK_PIPE_MOE_SWIGLU_CM_F32
                                        : QOMNI_VK_PIPE_MOE_SWIGLU_F32;
  const QomniVkPipe matmul = m->coopmat ? QOMNI_VK_PIPE_MOE_MATMUL_CM_F32
                                        : QOMNI_VK_PIPE_MOE_MATMUL_F32;
  /* an expert appears at most once among a token's K choices: at most n rows each */
  const uint32_t row_tiles = ((uint32_t) m->n + 63) / 64;
  /* g[j] = silu(gate_e · xn[t]) · (up_e · xn[t]) for the pair s = pairs[j] = (t, ·) */
  QomniVkMoeMatmulPush up = { .rows = m->I, .cols = m->H, .expert_stride = 2 * m->I * m->H,
                              .x_stride = m->H, .y_stride = m->I, .E = m->E, .x_div = m->K,
                              .flags = QOMNI_VK_X_BY_PAIR };
  QomniVkBind bu[] = { { m->gate_up }, { m->xn }, { m->g }, { m->route } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (swiglu, m->gate_up_dtype), bu, 4, &up,
                     sizeof up, (m->I + 63) / 64, row_tiles, m->E);
  /* y[s] = down_e · g[j], back in pair order for the combine */
  QomniVkMoeMatmulPush dn = { .rows = m->H, .cols = m->I, .expert_stride = m->H * m->I,
                              .x_stride = m->I, .y_stride = m->H, .E = m->E, .x_div = 1,
                              .flags = QOMNI_VK_Y_BY_PAIR };
  QomniVkBind bd[] = { { m->down }, { m->g }, { m->y }, { m->route } };
  qomni_vk_dispatch (c, qomni_vk_pipe_for_dtype (matmul, m->down_dtype), bd, 4, &dn, sizeof dn,
                     (m->H + 63) / 64, row_tiles, m->E);
  /* x[t] += Σ_k tw[t, k] · y[t·K + k], k in order */
  QomniVkCombinePush cp = { .n = m->n, .H = m->H, .K = m->K };
  QomniVkBind bc[] = { { m->x }, { m->y }, { m->tw } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MOE_COMBINE, bc, 3, &cp, sizeof cp, (m->H + 255) / 256,
                     m->n, 1);
}
