#version 450
// qomni — a prefill's MoE experts as one grouped, tiled product. Workgroup (·, ·, e) takes
// the rows j of expert e in the grouped order of moe_group (j in starts[e] + [0, counts[e])):
//   y[row_y(j), r] = W_e[r, :] · x[row_x(j), :]          r < rows
//   SWIGLU: W_e holds [gate; up] (2·rows rows) and y = silu(gate · x) · (up · x)
// Tiles are matmul.comp's: 64 weight rows × 64 pairs, each of 256 threads a 4 × 4 block,
// K in steps of 16 through shared memory, weights dequantized on the way in. So an
// expert's weights are read once per 64 tokens routed to it, not once per token. The grid
// covers the worst case (every token on one expert); tiles past their expert's count
// return at once.
// row_x(j) = pairs[j] / x_div with X_BY_PAIR (flags bit 4: gate/up read the token's normed
// state), else j; row_y(j) = pairs[j] with Y_BY_PAIR (bit 5: the down product writes one row
// per (token, slot) for moe_combine), else j. ACCUMULATE (bit 0): y += result.
// DENSE (bit 6): no table, one weight: rows j < n, row_x = row_y = j (a prompt's dense
// projection, in the shape moe_matmul_cm's tensor-core variant also serves).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push {
  uint rows, cols, w_off, expert_stride, x_off, x_stride, y_off, y_stride, route_off, E,
      x_div, flags, n;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };
layout (std430, binding = 3) readonly buffer RouteBuf { uint route[]; };

#define BM 64
#define BN 64
#define BK 16
#ifdef SWIGLU
#define NW 2
#else
#define NW 1
#endif

// vec4 rows, so a thread reads its 4 rows (4 pairs) in one load; one vec4 of padding per
// row spreads the transposing writes over the banks
shared vec4 ws[NW][BK][BM / 4 + 1];
shared vec4 xs[BK][BN / 4 + 1];
shared uint xrow[BN];

void
main ()
{
  const uint tid = gl_LocalInvocationID.x;
  const bool dense = (p.flags & 64u) != 0u;
  const uint e = gl_WorkGroupID.z;
  const uint count = dense ? p.n : route[p.route_off + e];
  const uint j0 = gl_WorkGroupID.y * BN;
  if (j0 >= count)
    return;   // the whole workgroup: count and j0 are uniform
  const uint start = (dense ? 0u : route[p.route_off + p.E + e]) + j0;
  const uint pairs = p.route_off + 2u * p.E;
  const uint nj = min (BN, count - j0);
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint tr = (tid % 16u) * 4u;   // this thread's weight rows within the tile
  const uint tc = (tid / 16u) * 4u;   // and pairs
  if (tid < BN && tid < nj) {
    const uint j = start + tid;
    const uint row = (p.flags & 16u) != 0u ? route[pairs + j] / p.x_div : j;
    xrow[tid] = p.x_off + row * p.x_stride;
  }
  barrier ();

  const uint wbase = p.w_off + e * p.expert_stride;
  const bool units = p.cols % 8u == 0u && wbase % 8u == 0u;
  float acc[NW][4][4];
  for (uint w = 0; w < NW; w++)
    for (uint i = 0; i < 4; i++)
      for (uint j = 0; j < 4; j++)
        acc[w][i][j] = 0.0;

  for (uint k0 = 0; k0 < p.cols; k0 += BK) {
    if (units) {
      // 8 weights per load (one 16-byte word for f16/bf16): row, half of the K step
      for (uint l = tid; l < NW * BM * (BK / 8); l += WG) {
        const uint h = l % (BK / 8), row = (l / (BK / 8)) % BM, wi = l / (BM * (BK / 8));
        const uint gr = r0 + row, gk = k0 + 8u * h;
        vec4 lo = vec4 (0.0), hi = vec4 (0.0);
        if (gr < p.rows && gk < p.cols)
          w_unit8 (wbase + (wi * p.rows + gr) * p.cols + gk, lo, hi);
        for (uint i = 0; i < 4; i++) {
          ws[wi][8u * h + i][row >> 2][row & 3u] = lo[i];
          ws[wi][8u * h + 4u + i][row >> 2][row & 3u] = hi[i];
        }
      }
    } else {
      for (uint l = tid; l < NW * BM * BK; l += WG) {
        const uint k = l % BK, row = (l / BK) % BM, wi = l / (BM * BK);
        const uint gr = r0 + row, gk = k0 + k;
        ws[wi][k][row >> 2][row & 3u] =
            (gr < p.rows && gk < p.cols) ? w_elem (wbase + (wi * p.rows + gr) * p.cols + gk)
                                         : 0.0;
      }
    }
    for (uint l = tid; l < BN * BK; l += WG) {
      const uint k = l % BK, jj = l / BK;
      xs[k][jj >> 2][jj & 3u] = (jj < nj && k0 + k < p.cols) ? x[xrow[jj] + k0 + k] : 0.0;
    }
    barrier ();
    // an expert's last tile is often part empty: threads whose pairs are all past the
    // count skip the products (whole warps of them, as tc grows with tid)
    for (uint k = 0; k < BK && tc < nj; k++) {
      const vec4 b = xs[k][tc >> 2];
      for (uint w = 0; w < NW; w++) {
        const vec4 a = ws[w][k][tr >> 2];
        for (uint j = 0; j < 4; j++)
          for (uint i = 0; i < 4; i++)
            acc[w][j][i] += a[i] * b[j];
      }
    }
    barrier ();
  }

  for (uint j = 0; j < 4; j++) {
    if (tc + j >= nj)
      break;
    const uint jg = start + tc + j;
    const uint row = (p.flags & 32u) != 0u ? route[pairs + jg] : jg;
    for (uint i = 0; i < 4; i++) {
      const uint r = r0 + tr + i;
      if (r >= p.rows)
        break;
      float v = acc[0][j][i];
#ifdef SWIGLU
      v = v / (1.0 + exp (-v)) * acc[1][j][i];
#endif
      const uint o = p.y_off + row * p.y_stride + r;
      y[o] = (p.flags & 1u) != 0u ? y[o] + v : v;
    }
  }
}
