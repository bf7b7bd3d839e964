/* qomni — the push-constant blocks of the compute shaders, as C structs.
 *
 * Each struct is the exact layout of the `push_constant` block of its shader (all 32-bit
 * scalars, so std430 and C agree); the pipeline table in vk-device.c declares sizeof of
 * each, and qomni_vk_dispatch asserts that the caller passes that many bytes. Offsets and
 * strides are in elements of the buffer's type (floats, or weight elements), not bytes.
 */
#pragma once

#include "vk-device.h"

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

enum {
  QOMNI_VK_ACCUMULATE = 1u << 0,   /* y += result instead of y = result */
  QOMNI_VK_USE_IDS = 1u << 1,      /* matvec: expert per slot z from the ids buffer */
  QOMNI_VK_NORM = 1u << 2,         /* matvec: RMSNorm x (gain at g_off of binding 4) first */
  QOMNI_VK_KSUM = 1u << 3,         /* matvec: y[z] = Σ of nslot weighted slots (MoE down) */
  QOMNI_VK_X_BY_PAIR = 1u << 4,    /* moe_matmul: input row pairs[j] / x_div, not j */
  QOMNI_VK_Y_BY_PAIR = 1u << 5,    /* moe_matmul: output row pairs[j], not j */
  QOMNI_VK_DENSE = 1u << 6,        /* moe_matmul: no table; rows j < n of one weight */
  QOMNI_VK_BIAS = 1u << 7,         /* matmul, matmul_reduce: + b[b_off + r], then act */
};

/* y[z, r] (+)= W_e[r, :] · x[z / x_div, :], r < rows, z < gz.
 * e = ids[ids_off + z] when USE_IDS, else 0; W_e starts at w_off + e·expert_stride.
 * SWIGLU pipelines: W_e holds 2·rows rows [gate; up] and y = silu(g)·u.
 * NORM: x[z / x_div] is replaced by rmsnorm(x, gain g[g_off ..], eps) (binding 4; bind any
 * buffer there otherwise).
 * KSUM: row z of y sums the slots s = z·nslot + j (j < nslot), each with its expert
 * ids[ids_off + s], input x[s / x_div] and weight g[g_off + s] (binding 4): with ACCUMULATE,
 * the MoE down projection and the weighted combine into the residual in one dispatch. */
typedef struct {
  uint32_t rows, cols, w_off, x_off, x_stride, y_off, y_stride, expert_stride, ids_off,
      x_div, flags, g_off;
  float eps;
  uint32_t nslot;
} QomniVkMatvecPush;

/* y[t, r] (+)= W[r, :] · x[t, :] for t < n, r < rows: the tiled product of prompts and
 * encoders (MATMUL 64 × 64 tiles, MATMUL_WIDE 128 × 128, MATMUL_NARROW 64 × 16; grid
 * (⌈rows/tile_m⌉, ⌈n/tile_n⌉, splits)). Bindings: W, x, y, bias (any buffer without BIAS).
 * Workgroup z takes k in [z·k_chunk, (z+1)·k_chunk) (k_chunk a multiple of 16; ≥ cols for
 * one split). One split: y (+)= W·x (ACCUMULATE), then with BIAS y = act(y + b[b_off + r]).
 * Several: binding 2 is the partial buffer, split z writes the plain partial product at
 * y_off + z·part_stride + t·y_stride + r (flags, bias ignored) and MATMUL_REDUCE finishes.
 * qomni_vk_rec_matmul records both. */
typedef struct {
  uint32_t rows, cols, n, w_off, x_off, x_stride, y_off, y_stride, flags, k_chunk, part_stride,
      b_off, act;
} QomniVkMatmulPush;

/* y[t, r] (+)= Σ_{z < splits} part[part_off + z·part_stride + t·rows + r], then with BIAS
 * y = act(y + b[b_off + r]). Bindings: part, y, bias. Grid-stride over n·rows. */
typedef struct {
  uint32_t rows, n, splits, part_off, part_stride, y_off, y_stride, flags, b_off, act;
} QomniVkMatmulReducePush;

/* How qomni_vk_rec_matmul runs a product: the tile family (MATMUL_F32, MATMUL_WIDE_F32 or
 * MATMUL_NARROW_F32; qomni_vk_pipe_for_dtype picks the dtype), its tile, and the K splits,
 * each k_chunk long (k_chunk a multiple of 16, the last split shorter). */
typedef struct {
  QomniVkPipe family;
  uint32_t tile_m, tile_n, splits, k_chunk;
} QomniVkMatmulPlan;

/* The plan for y[n, rows] = x[n, cols] · Wᵀ when scratch_floats floats of partial buffer
 * are at hand: the narrow tile for n ≤ 16, 128 × 128 when those tiles alone fill the GPU,
 * else 64 × 64; then K splits until there are about QOMNI_VK_MATMUL_GROUPS workgroups
 * (splits of at least 64 k, at most 32, partials fitting the scratch and 16 MB). */
#define QOMNI_VK_MATMUL_GROUPS 528u   /* 4 workgroups on each of an H200's 132 SMs */
void qomni_vk_matmul_plan (uint32_t rows, uint32_t n, uint32_t cols, uint64_t scratch_floats,
                           QomniVkMatmulPlan *plan);
/* Floats of partial buffer that let every product [rows, cols] over n ≤ max_n rows take its
 * full plan: what a caller allocates at creation for the shapes it runs. */
uint64_t qomni_vk_matmul_scratch_floats (uint32_t rows, uint32_t cols, uint32_t max_n);

/* One product for qomni_vk_rec_matmul: y[t, r] (+)= W[r, :] · x[t, :] at the offsets and
 * strides of QomniVkMatmulPush (w: the weight's binding; its range may start mid-buffer),
 * then with bias non-NULL y = act(y + bias[b_off + r]); scratch (NULL: no splits) holds the
 * partials, its whole size usable. */
typedef struct {
  QomniVkBind w;
  int dtype;
  uint32_t rows, cols, n;
  const QomniVkBuffer *x;
  uint32_t x_off, x_stride;
  const QomniVkBuffer *y;
  uint32_t y_off, y_stride;
  gboolean acc;
  const QomniVkBuffer *bias;
  uint32_t b_off, act;
  const QomniVkBuffer *scratch;
} QomniVkMatmulArgs;

/* Records the product with the plan qomni_vk_matmul_plan gives (one dispatch, or the split
 * product and its reduce pass). */
void qomni_vk_rec_matmul (QomniVkCmd *c, const QomniVkMatmulArgs *a);
/* The same with a given plan (tests: every tile, split counts that do not divide K). */
void qomni_vk_rec_matmul_plan (QomniVkCmd *c, const QomniVkMatmulArgs *a,
                               const QomniVkMatmulPlan *plan);

/* y[t, :] = W[ids[ids_off + t], :] (cols elements) for t < n. */
typedef struct {
  uint32_t cols, n, ids_off, y_off;
} QomniVkEmbedPush;

/* RMSNorm / LayerNorm of n rows of dim, rows at x_off + r·x_stride → y_off + r·y_stride.
 * flags bit 0: gain w present; bit 1: bias b present (LayerNorm). */
typedef struct {
  uint32_t n, dim, x_off, x_stride, y_off, y_stride, w_off, b_off, flags;
  float eps;
} QomniVkNormPush;

/* Per (row r, head h): optional RMSNorm over hd with gain, then rotate-half RoPE with
 * cos/sin [n, hd/2] at cs_off and cs_off + sin_off. Reads x, writes y (may alias). */
typedef struct {
  uint32_t n, heads, hd, x_off, x_stride, y_off, y_stride, cs_off, sin_off, norm_off, flags;
  float eps;
} QomniVkRopePush;

/* The fused q/k/v step of a layer (rope_qkv): rows of [q nh·hd | k nkv·hd | v nkv·hd] at
 * x_off + r·x_stride; q heads normed (flags bit 0) and rotated in place, k heads normed and
 * rotated into the K cache at kv_off + r·kv_stride, v heads copied into the V cache there.
 * cos/sin as QomniVkRopePush; q_norm/k_norm gains at qnorm_off/knorm_off of binding 4.
 * flags bit 1 (QOMNI_VK_ROPE_POS_DYN, a replayed decode step): the cache rows start
 * pos·kv_stride further, pos the uint32 at word pos_off of the cos/sin buffer, read when the
 * command runs. Grid (nh + 2·nkv, n). */
enum { QOMNI_VK_ROPE_QK_NORM = 1, QOMNI_VK_ROPE_POS_DYN = 2 };
typedef struct {
  uint32_t n, nh, nkv, hd, x_off, x_stride, kv_off, kv_stride, cs_off, sin_off, qnorm_off,
      knorm_off, flags;
  float eps;
  uint32_t pos_off;
} QomniVkRopeQkvPush;

/* Attention of n query rows against m keys; see qomni_cpu_attention for the meaning.
 * block > 0 (ATTENTION, ATTN_SPLIT): each query sees only the keys of its own block
 * [⌊pos/block⌋·block, … + block), the bidirectional attention inside the encoders' windows
 * and images (segments of equal length, as cu_seqlens with one length).
 * ATTENTION: grid (nh, n), o is the output. ATTN_SPLIT (flash-decoding, pass 1): grid
 * (nh, n, n_chunks), chunk c takes the visible keys [lo + c·span, lo + (c+1)·span), and o is
 * the partial buffer (o_off: acc [n, nh, n_chunks, hd], then (max, sum) [n, nh, n_chunks, 2];
 * qomni_vk_attn_part_floats); ATTN_COMBINE (pass 2) merges it into the output.
 * ATTN_SPLIT with dyn ≠ 0 (a decode step recorded once and replayed): q_pos0 is the uint32
 * at word dyn_off of binding 4, read when the command runs; m = q_pos0 + n and span is
 * qomni_vk_attn_split's for that m; n_chunks is the grid (qomni_vk_attn_split of the
 * largest m) and the chunks past the live ones come out empty. Binding 4 is unread when
 * dyn is 0 (bind any buffer). */
typedef struct {
  uint32_t n, m, nh, nkv, hd, q_off, q_stride, k_off, v_off, kv_stride, o_off, o_stride,
      q_pos0, causal, window;
  float scale;
  uint32_t span, n_chunks;
  uint32_t block;
  uint32_t dyn, dyn_off;
} QomniVkAttnPush;

/* Pass 2 of split attention: grid (nh, n); o[r, h·hd + d] at o_off + r·o_stride. */
typedef struct {
  uint32_t n, nh, hd, n_chunks, part_off, o_off, o_stride;
} QomniVkAttnCombinePush;

/* Keys per tile of ATTN_SPLIT (its spec constant 1) and the most chunks a split takes. */
#define QOMNI_VK_ATTN_TILE 32u
#define QOMNI_VK_ATTN_MAX_CHUNKS 128u

/* Splits m keys into chunks: returns n_chunks and sets *span (a multiple of the tile). */
static inline uint32_t
qomni_vk_attn_split (uint32_t m, uint32_t *span)
{
  const uint32_t T = QOMNI_VK_ATTN_TILE, tiles = (m + T - 1) / T;
  const uint32_t per = (tiles + QOMNI_VK_ATTN_MAX_CHUNKS - 1) / QOMNI_VK_ATTN_MAX_CHUNKS;
  *span = (per ? per : 1) * T;
  return m ? (m + *span - 1) / *span : 1;
}

/* The most chunks qomni_vk_attn_split gives for any m ≤ max_m (the grid of a replayed
 * split): not its count at max_m, which drops when the span doubles past 4096 keys. */
static inline uint32_t
qomni_vk_attn_split_max (uint32_t max_m)
{
  const uint32_t tiles = (max_m + QOMNI_VK_ATTN_TILE - 1) / QOMNI_VK_ATTN_TILE;
  return tiles < QOMNI_VK_ATTN_MAX_CHUNKS ? (tiles ? tiles : 1) : QOMNI_VK_ATTN_MAX_CHUNKS;
}

/* Floats of the partial buffer of a split over n rows, nh heads, n_chunks. */
static inline uint64_t
qomni_vk_attn_part_floats (uint32_t n, uint32_t nh, uint32_t hd, uint32_t n_chunks)
{
  return (uint64_t) n * nh * n_chunks * (hd + 2);
}

/* Elementwise on n elements: SILU_MUL x = silu(x)·y; GELU(_TANH) x = gelu(x);
 * ADD y += x; SCALE x *= s. */
typedef struct {
  uint32_t n, x_off, y_off;
  float s;
} QomniVkEltPush;

/* x[r, c] = act(x[r, c] + b[b_off + c]) over n rows of dim at x_off + r·x_stride, in place;
 * act QOMNI_VK_ACT_*. The bias (and GELU) after a tiled matmul. */
enum { QOMNI_VK_ACT_NONE = 0, QOMNI_VK_ACT_GELU = 1, QOMNI_VK_ACT_GELU_TANH = 2 };
typedef struct {
  uint32_t n, dim, x_off, x_stride, b_off, act;
} QomniVkBiasActPush;

/* im2col of a 3×3, stride 2, padding 1 convolution over n_chunks inputs [Fi, Wi, Ci]:
 * element (c, f, w, ci) at x_off + c·x_chunk + f·x_f + w·x_w + ci·x_c; columns w with
 * c·Wi + w ≥ w_total read as zero. Writes rows (c, wo, fo) of Ci·9 columns (ci·9 + kh·3 + kw)
 * at y_off, so that the matmul with the weight [Co, Ci·9] gives [c, Wo, Fo, Co]. */
typedef struct {
  uint32_t n_chunks, Fi, Wi, Ci, Fo, Wo, x_off, x_chunk, x_f, x_w, x_c, w_total, y_off;
} QomniVkIm2colPush;

/* Softmax of n rows of dim, in place. */
typedef struct {
  uint32_t n, dim, off;
} QomniVkSoftmaxPush;

/* Router: per row, softmax over E logits, top-k (ties to the lower index), optional
 * renormalization; writes ids[n, K] (uint) and weights[n, K]. Rows of logits are l_stride
 * apart (0: E). shared_gate: logit E of each row is a shared expert's gate, and
 * weights[sg_off + r] = sigmoid(it). */
typedef struct {
  uint32_t n, E, K, l_off, ids_off, w_off, renorm, l_stride, shared_gate, sg_off;
} QomniVkTopkPush;

/* Groups S = n·K (token, slot) pairs by expert: ids[ids_off + s] < E for s < S in, the
 * routing table at route_off of binding 1 out: counts[E] | starts[E] | pairs[S], where
 * pairs[starts[e] ..] lists expert e's pairs s in increasing order. Grid (E). */
typedef struct {
  uint32_t S, E, ids_off, route_off;
} QomniVkGroupPush;

/* The grouped expert product over moe_group's table (at route_off of binding 3): for each
 * expert e and j in starts[e] + [0, counts[e]),
 *   y[row_y(j), r] (+)= W_e[r, :] · x[row_x(j), :],   W_e at w_off + e·expert_stride,
 * row_x(j) = pairs[j] / x_div with X_BY_PAIR else j, row_y(j) = pairs[j] with Y_BY_PAIR
 * else j. MOE_SWIGLU: W_e holds 2·rows rows [gate; up], y = silu(g)·u.
 * DENSE: no table (bind any buffer at 3), e = 0 and j < n, row_x = row_y = j: the plain
 * prefill product y[j] (+)= W x[j], as matmul.comp.
 * Grid (⌈rows/64⌉, ⌈most pairs of one expert (DENSE: n) / 64⌉, E (DENSE: 1)). */
typedef struct {
  uint32_t rows, cols, w_off, expert_stride, x_off, x_stride, y_off, y_stride, route_off, E,
      x_div, flags, n;
} QomniVkMoeMatmulPush;

/* x[r, :] += Σ_j w[r·K + j] · y[(r·K + j), :], rows of H. */
typedef struct {
  uint32_t n, H, K, x_off, y_off, w_off;
} QomniVkCombinePush;

/* out[out_off] = argmax x[off .. off + n) (ties to the lower index). */
typedef struct {
  uint32_t n, off, out_off;
} QomniVkArgmaxPush;

/* qomni_sampler_pick on the GPU, one row per workgroup (grid: rows): token r =
 * pick (x[off + r·n .. + n), u) with u the double at 32-bit words draw_off + 2r of binding
 * 1, out to o[out_off + r] (binding 2). k = the effective top-k (≤ n; n when off).
 * n ≤ QOMNI_VK_PICK_MAX_N, k ≤ QOMNI_VK_PICK_MAX_K; needs qomni_vk_has_float64. */
#define QOMNI_VK_PICK_MAX_N 2048
#define QOMNI_VK_PICK_MAX_K 256
typedef struct {
  uint32_t n, k, off, draw_off, out_off;
  float temperature, top_p;
} QomniVkPickPush;

/* Fills n_words 32-bit words from off_words with hashed uniform values in
 * [bias − scale, bias + scale]: mode 0 two bf16 per word, mode 1 one f32 per word. */
typedef struct {
  uint32_t n_words, off_words, seed, mode;
  float scale, bias;
} QomniVkFillPush;

/* Code2Wav's causal convolutions over time-major x [L, cin] (CONV1D, CONV1D_T; weights in
 * their PyTorch layouts at w_off of binding 0, bias [cout] f32 at b_off of binding 3):
 * CONV1D: weight [cout, cin, k], dilation dil, y [L, cout] (set M = L).
 * CONV1D_T: weight [cin, cout, k], k a multiple of stride, trimmed by k − stride on both
 * sides: y [M·stride, cout] with M = L − k/stride + 1.
 * flags: QOMNI_VK_ACCUMULATE (y += conv), QOMNI_VK_CONV_BIAS. Grid (⌈R/64⌉, ⌈M/64⌉) with
 * R = cout (CONV1D) or stride·cout (CONV1D_T); the narrow variants (_N, _TN) take
 * (⌈R/16⌉, ⌈M/256⌉) and suit R ≤ 32 (qomni_vk_conv_pipe in vk-device.h picks). */
enum { QOMNI_VK_CONV_BIAS = 1u << 1 };
typedef struct {
  uint32_t L, M, cin, cout, k, dil, stride, w_off, x_off, y_off, b_off, flags;
} QomniVkConvPush;

/* Depthwise causal conv over [L, C]: weight [C, k] at w_off and bias [C] at b_off of
 * binding 2 (f32). Grid-stride. */
typedef struct {
  uint32_t L, C, k, dil, x_off, y_off, w_off, b_off;
} QomniVkDwConvPush;

/* SnakeBeta over [n, C]: y = x + inv_beta·sin²(x·alpha), alpha [C] at a_off and inv_beta
 * [C] at b_off of binding 2. Grid-stride; y may alias x. */
typedef struct {
  uint32_t n, C, x_off, y_off, a_off, b_off;
} QomniVkSnakePush;

/* x[t, c] += g[g_off + c] · y[t, c] over [n, C]. Grid-stride. */
typedef struct {
  uint32_t n, C, x_off, y_off, g_off;
} QomniVkScaleAddPush;

/* y[f, :] = mean over q < Q of W[q·cb + codes[codes_off + q·codes_stride + f], :] (cols
 * elements) for f < n; grid (1, n). */
typedef struct {
  uint32_t cols, n, Q, cb, codes_off, codes_stride, y_off;
} QomniVkEmbedMeanPush;
/* Random Q8_0 (q4 = 0) or Q4_0 (q4 = 1) weights: n_blocks blocks from off_words (a word
 * offset; blocks are packed as ggml packs them), element i uniform in [−scale, scale] from
 * the hash fill_random uses, quantized as the CPU reference quantizers do. */
typedef struct {
  uint32_t n_blocks, off_words, seed, q4;
  float scale;
} QomniVkFillBlocksPush;

G_END_DECLS
