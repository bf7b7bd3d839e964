/* qomni — the MoE block of a prefill on the Vulkan device, as grouped expert products.
 *
 * Run per (token, chosen expert) pair, the experts' matvecs read an expert's weights once
 * for every token routed to it (512 tokens × 8 experts ≈ 4096 weight reads of 9.4 MB in
 * bf16 per layer). Here the pairs are grouped by expert on the GPU (moe_group, after
 * moe_topk), and each expert's gate/up and down projections run as tiled products over its
 * own tokens (moe_matmul), reading its weights once per 64 of them; then moe_combine adds
 * the router-weighted outputs to the residual stream in a fixed order (no float atomics).
 * Every step stays on the GPU: nothing is read back to plan the grid.
 *
 *   QomniVkMoe m = { .gate_up = .., .down = .., .xn = xn, .x = x, .ids = ids, .tw = tw,
 *                    .route = route, .g = g, .y = y, .n = n, .H = H, .I = I, .E = E, .K = K };
 *   qomni_vk_moe_prefill (cmd, &m);   // x[t] += Σ_k tw[t,k] · down_e(silu(gate_e xn[t]) · up_e xn[t])
 */
#pragma once

#include "tensor.h"
#include "vk-device.h"

G_BEGIN_DECLS

typedef struct {
  const QomniVkBuffer *gate_up;   /* [E, 2I, H]: each expert's [gate; up] rows */
  QomniDType gate_up_dtype;
  const QomniVkBuffer *down;      /* [E, H, I] */
  QomniDType down_dtype;
  const QomniVkBuffer *xn;        /* f32 [n, H]: the normed input */
  const QomniVkBuffer *x;         /* f32 [n, H]: the residual stream, += the MoE output */
  const QomniVkBuffer *ids;       /* uint [n, K] expert ids (moe_topk) */
  const QomniVkBuffer *tw;        /* f32 [n, K] router weights (moe_topk) */
  const QomniVkBuffer *route;     /* uint, qomni_vk_moe_route_words (n, E, K) */
  const QomniVkBuffer *g;         /* f32 [n·K, I] scratch: activations, grouped order */
  const QomniVkBuffer *y;         /* f32 [n·K, H] scratch: expert outputs per pair */
  int n, H, I, E, K;
  gboolean coopmat;               /* the tensor-core products (qomni_vk_has_coopmat) */
} QomniVkMoe;

/* Words of the routing table for n tokens: counts[E] | starts[E] | pairs[n·K]. */
uint64_t qomni_vk_moe_route_words (int n, int E, int K);

/* Records the grouping, the two grouped products and the combine (4 dispatches). */
void qomni_vk_moe_prefill (QomniVkCmd *c, const QomniVkMoe *m);

G_END_DECLS
