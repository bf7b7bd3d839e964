/* qomni — the tiled product's plan and recording (see vk-ops.h). */
#include "vk-ops.h"

#define MATMUL_BK 16u
#define MIN_SPLIT_K 64u   /* a split does at least 4 steps of 16 k */
#define MAX_SPLITS 32u
/* Partials past this (16 MB) cost more traffic than the extra workgroups win back: the
 * products that large have hundreds of tiles already. It also bounds every scratch. */
#define MAX_PART_FLOATS (4u << 20)

static uint32_t
ceil_div (uint32_t a, uint32_t b)
{
  return (a + b - 1) / b;
}

void
qomni_vk_matmul_plan (uint32_t rows, uint32_t n, uint32_t cols, uint64_t scratch_floats,
                      QomniVkMatmulPlan *plan)
{
  const uint32_t G = QOMNI_VK_MATMUL_GROUPS;
  if (n <= 16) {
    /* 64 × 64 tiles would spend 3/4 of their FMAs on empty token columns */
    *plan = (QomniVkMatmulPlan) { QOMNI_VK_PIPE_MATMUL_NARROW_F32, 64, 16, 1, 0 };
  } else {
    /* The 128 × 128 tile (8 × 8 outputs per thread, QOMNI_VK_PIPE_MATMUL_WIDE_*) is not
     * chosen: on the H200 it took 4.2 ms per call where 64 × 64 took 0.26 (784 rows of the
     * vision MLP, 2026-11-30; likely register spills). It stays built and tested for
     * tuning. */
    *plan = (QomniVkMatmulPlan) { QOMNI_VK_PIPE_MATMUL_F32, 64, 64, 1, 0 };
  }
  const uint64_t tiles = (uint64_t) ceil_div (rows, plan->tile_m) * ceil_div (n, plan->tile_n);
  uint64_t splits = 1;
  if (tiles < G) {
    /* too few tiles for the GPU: split K, partials summed by a second pass */
    splits = MIN ((G + tiles - 1) / tiles, (uint64_t) MAX (cols / MIN_SPLIT_K, 1));
    splits = MIN (splits, MAX_SPLITS);
    const uint64_t per = (uint64_t) n * rows;
    splits = MIN (splits, per ? MIN (scratch_floats, MAX_PART_FLOATS) / per : 1);
  }
  if (splits > 1) {
    plan->k_chunk = ceil_div (ceil_div (cols, (uint32_t) splits), MATMUL_BK) * MATMUL_BK;
    plan->splits = ceil_div (cols, plan->k_chunk);   /* ≤ splits: no split is empty */
  }
  if (plan->splits <= 1) {
    plan->splits = 1;
    plan->k_chunk = MAX (ceil_div (cols, MATMUL_BK) * MATMUL_BK, MATMUL_BK);
  }
}

uint64_t
qomni_vk_matmul_scratch_floats (uint32_t rows, uint32_t cols, uint32_t max_n)
{
  uint64_t most = 0;
  for (uint32_t n = 1; n <= max_n; n++) {
    QomniVkMatmulPlan plan;
    qomni_vk_matmul_plan (rows, n, cols, G_MAXUINT64, &plan);
    if (plan.splits > 1)
      most = MAX (most, (uint64_t) plan.splits * n * rows);
  }
  return most;
}

void
qomni_vk_rec_matmul_plan (QomniVkCmd *c, const QomniVkMatmulArgs *a,
                          const QomniVkMatmulPlan *plan)
{
  if (a->n == 0 || a->rows == 0)
    return;
  const QomniVkBuffer *bias = a->bias ? a->bias : a->x;
  const uint32_t flags = (a->acc ? QOMNI_VK_ACCUMULATE : 0) | (a->bias ? QOMNI_VK_BIAS : 0);
  const int pipe = qomni_vk_pipe_for_dtype (plan->family, a->dtype);
  g_return_if_fail (pipe >= 0);
  const uint32_t gx = ceil_div (a->rows, plan->tile_m), gy = ceil_div (a->n, plan->tile_n);
  QomniVkMatmulPush p = { .rows = a->rows, .cols = a->cols, .n = a->n, .x_off = a->x_off,
                          .x_stride = a->x_stride, .k_chunk = plan->k_chunk };
  if (plan->splits <= 1) {
    p.y_off = a->y_off;
    p.y_stride = a->y_stride;
    p.flags = flags;
    p.b_off = a->b_off;
    p.act = a->act;
    QomniVkBind b[] = { a->w, { a->x }, { a->y }, { bias } };
    qomni_vk_dispatch (c, (QomniVkPipe) pipe, b, 4, &p, sizeof p, gx, gy, 1);
    return;
  }
  g_return_if_fail (a->scratch && (uint64_t) plan->splits * a->n * a->rows * 4
                                      <= a->scratch->size);
  p.y_stride = a->rows;
  p.part_stride = a->n * a->rows;
  QomniVkBind b[] = { a->w, { a->x }, { a->scratch }, { bias } };
  qomni_vk_dispatch (c, (QomniVkPipe) pipe, b, 4, &p, sizeof p, gx, gy, plan->splits);
  QomniVkMatmulReducePush r = { .rows = a->rows, .n = a->n, .splits = plan->splits,
                                .part_stride = a->n * a->rows, .y_off = a->y_off,
                                .y_stride = a->y_stride, .flags = flags, .b_off = a->b_off,
                                .act = a->act };
  QomniVkBind rb[] = { { a->scratch }, { a->y }, { bias } };
  const uint64_t total = (uint64_t) a->n * a->rows;
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_MATMUL_REDUCE, rb, 3, &r, sizeof r,
                     (uint32_t) MIN ((total + 255) / 256, 8192), 1, 1);
}

void
qomni_vk_rec_matmul (QomniVkCmd *c, const QomniVkMatmulArgs *a)
{
  QomniVkMatmulPlan plan;
  qomni_vk_matmul_plan (a->rows, a->n, a->cols, a->scratch ? a->scratch->size / 4 : 0, &plan);
  qomni_vk_rec_matmul_plan (c, a, &plan);
}
