#version 450
// qomni — moe_matmul.comp on NVIDIA's tensor cores (GL_NV_cooperative_matrix): the same
// push constants, table, flags (X_BY_PAIR, Y_BY_PAIR, DENSE, ACCUMULATE) and SWIGLU; see
// there for what it computes. Weights are dequantized and activations rounded to fp16 on
// their way into shared memory, and the products summed in fp32: an NMSE of about 1e-7
// against float32 instead of the SIMT kernel's 1e-13, for several times the multiply rate.
//
// A workgroup of 4 subgroups of 32 computes 64 weight rows × 64 pairs; subgroup s the
// quarter (rows 32·(s & 1), pairs 32·(s >> 1)) as 2 × 4 tiles of 16 × 8 (the 16×8×16 fp16
// → fp32 shape that vk-device.c checks the device lists). K advances by 32 per pass
// through shared memory, two 16-deep products per pass.
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "weights.glsl"

layout (push_constant) uniform Push {
  uint rows, cols, w_off, expert_stride, x_off, x_stride, y_off, y_stride, route_off, E,
      x_div, flags, n;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };
layout (std430, binding = 3) readonly buffer RouteBuf { uint route[]; };

#define BM 64
#define BN 64
#define BK 32
#define LD (BK + 8)   // row pitch in halves: 80 bytes, 16-byte aligned rows for coopMatLoad
#define TM 16
#define TN 8
#define TK 16
#ifdef SWIGLU
#define NW 2
#else
#define NW 1
#endif

shared float16_t ws[NW * BM * LD];       // weight rows, K contiguous (A, row-major)
shared float16_t xs[BN * LD];            // pairs, K contiguous (B, column-major)
shared float cs[4 * NW * TM * TN];       // per subgroup, one output tile on its way out
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
  if (tid < BN && tid < nj) {
    const uint j = start + tid;
    const uint row = (p.flags & 16u) != 0u ? route[pairs + j] / p.x_div : j;
    xrow[tid] = p.x_off + row * p.x_stride;
  }
  barrier ();

  const uint wbase = p.w_off + e * p.expert_stride;
  const bool units = p.cols % 8u == 0u && wbase % 8u == 0u;
  const bool xvec = p.cols % 4u == 0u && p.x_off % 4u == 0u && p.x_stride % 4u == 0u;
  const uint sg = gl_SubgroupID;
  const uint sm = (sg & 1u) * 32u, sn = (sg >> 1) * 32u;
  fcoopmatNV<32, gl_ScopeSubgroup, TM, TN> acc[NW][2][4];
  [[unroll]] for (uint w = 0; w < NW; w++)
    [[unroll]] for (uint m = 0; m < 2; m++)
      [[unroll]] for (uint t = 0; t < 4; t++)
        acc[w][m][t] = fcoopmatNV<32, gl_ScopeSubgroup, TM, TN> (0.0);

  for (uint k0 = 0; k0 < p.cols; k0 += BK) {
    // weights: NW·BM rows × BK, 8 per thread and step
    for (uint l = tid; l < NW * BM * (BK / 8); l += WG) {
      const uint h = l % (BK / 8), row = l / (BK / 8);
      const uint gr = r0 + row % BM, gk = k0 + 8u * h;
      const uint we = wbase + ((row / BM) * p.rows + gr) * p.cols + gk;
      vec4 lo = vec4 (0.0), hi = vec4 (0.0);
      if (gr < p.rows && units && gk < p.cols)
        w_unit8 (we, lo, hi);
      else if (gr < p.rows)
        for (uint i = 0; i < 8; i++)
          if (gk + i < p.cols) {
            if (i < 4)
              lo[i] = w_elem (we + i);
            else
              hi[i - 4u] = w_elem (we + i);
          }
      const uint o = row * LD + 8u * h;
      [[unroll]] for (uint i = 0; i < 4; i++) {
        ws[o + i] = float16_t (lo[i]);
        ws[o + 4u + i] = float16_t (hi[i]);
      }
    }
    // activations: BN pairs × BK, 4 per thread and step
    for (uint l = tid; l < BN * (BK / 4); l += WG) {
      const uint q = l % (BK / 4), jj = l / (BK / 4);
      const uint gk = k0 + 4u * q;
      vec4 v = vec4 (0.0);
      if (jj < nj) {
        if (xvec && gk < p.cols)
          v = x4[(xrow[jj] + gk) >> 2];
        else
          for (uint i = 0; i < 4; i++)
            if (gk + i < p.cols)
              v[i] = x[xrow[jj] + gk + i];
      }
      [[unroll]] for (uint i = 0; i < 4; i++)
        xs[jj * LD + 4u * q + i] = float16_t (v[i]);
    }
    barrier ();
    [[unroll]] for (uint kk = 0; kk < BK; kk += TK) {
      fcoopmatNV<16, gl_ScopeSubgroup, TK, TN> b[4];
      [[unroll]] for (uint t = 0; t < 4; t++)
        coopMatLoadNV (b[t], xs, (sn + t * TN) * LD + kk, LD, true);
      [[unroll]] for (uint w = 0; w < NW; w++)
        [[unroll]] for (uint m = 0; m < 2; m++) {
          fcoopmatNV<16, gl_ScopeSubgroup, TM, TK> a;
          coopMatLoadNV (a, ws, (w * BM + sm + m * TM) * LD + kk, LD, false);
          [[unroll]] for (uint t = 0; t < 4; t++)
            if (sn + t * TN < nj)   // skip tiles of pairs past the count (subgroup-uniform)
              acc[w][m][t] = coopMatMulAddNV (a, b[t], acc[w][m][t]);
        }
    }
    barrier ();
  }

  // out, tile by tile through this subgroup's corner of cs: element (r, t) at t·TM + r
  const uint cbase = sg * NW * TM * TN;
  [[unroll]] for (uint m = 0; m < 2; m++)
    [[unroll]] for (uint t = 0; t < 4; t++) {
      [[unroll]] for (uint w = 0; w < NW; w++)
        coopMatStoreNV (acc[w][m][t], cs, cbase + w * TM * TN, TM, true);
      subgroupMemoryBarrierShared ();
      subgroupBarrier ();
      for (uint i = gl_SubgroupInvocationID; i < TM * TN; i += gl_SubgroupSize) {
        const uint jj = sn + t * TN + i / TM, r = r0 + sm + m * TM + i % TM;
        if (jj >= nj || r >= p.rows)
          continue;
        float v = cs[cbase + i];
#ifdef SWIGLU
        v = v / (1.0 + exp (-v)) * cs[cbase + TM * TN + i];
#endif
        const uint jg = start + jj;
        const uint row = (p.flags & 32u) != 0u ? route[pairs + jg] : jg;
        const uint o = p.y_off + row * p.y_stride + r;
        y[o] = (p.flags & 1u) != 0u ? y[o] + v : v;
      }
      subgroupBarrier ();
    }
}
