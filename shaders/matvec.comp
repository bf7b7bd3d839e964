#version 450
// qomni — matrix × vector for decode: y[z, r] (+)= W_e[r, :] · x[z / x_div, :].
//
// A workgroup owns NR output rows (spec constant 1); its threads stride over the row in
// units of 8 weights (one 16-byte load for bf16/f16), then the partial sums meet through
// subgroupAdd and a shared array. gl_WorkGroupID.y is the slot z: a row of a batch, or
// one (token, chosen expert) pair, whose expert id the shader reads from the ids buffer
// written by moe_topk, so the expert choice never comes back to the CPU.
// SWIGLU: W_e holds [gate; up] (2·rows rows) and y = silu(gate·x) · (up·x).
// NORM (flags bit 2): x is first RMS-normalized with gain g (binding 4, at g_off): every
// workgroup sums x² over the row it already reads and scales its dot products of W with
// x ⊙ g by 1/sqrt(mean + eps), so the norm needs no dispatch of its own.
// KSUM (flags bit 3, not with NORM): workgroup row z sums nslot slots s = z·nslot + j, each
// with its own expert ids[ids_off + s], input row s / x_div and weight g[g_off + s]:
// y[z] (+)= Σ_j g_s · W_e(s) · x[s], the MoE down projection and the weighted combine at once.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "weights.glsl"

layout (constant_id = 1) const uint NR = 2;

layout (push_constant) uniform Push {
  uint rows, cols, w_off, x_off, x_stride, y_off, y_stride, expert_stride, ids_off, x_div,
      flags, g_off;
  float eps;
  uint nslot;
} p;

layout (std430, binding = 1) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer XBuf4 { vec4 x4[]; };
layout (std430, binding = 2) buffer YBuf { float y[]; };
layout (std430, binding = 3) readonly buffer IdsBuf { uint ids[]; };
layout (std430, binding = 4) readonly buffer GBuf { float g[]; };
layout (std430, binding = 4) readonly buffer GBuf4 { vec4 g4[]; };

#ifdef SWIGLU
#define NW 2
#else
#define NW 1
#endif

shared float part[NR * NW + 1][32];

void
main ()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * NR;
  const uint z = gl_WorkGroupID.y;
  const uint nrows = min (NR, p.rows - r0);
  const bool ksum = (p.flags & 8u) != 0u;
  const uint nslot = ksum ? p.nslot : 1u;

  float acc[NR * NW];
  for (uint i = 0; i < NR * NW; i++)
    acc[i] = 0.0;
  const bool norm = !ksum && (p.flags & 4u) != 0u;
  float ss = 0.0;

  for (uint j = 0; j < nslot; j++) {
  const uint zs = z * nslot + j;
  const uint e = (p.flags & 2u) != 0u ? ids[p.ids_off + zs] : 0u;
  const uint wbase = p.w_off + e * p.expert_stride;
  const uint xb = p.x_off + (zs / p.x_div) * p.x_stride;
  const float sw = ksum ? g[p.g_off + zs] : 1.0;

  if (p.cols % 8u == 0u && wbase % 8u == 0u && xb % 4u == 0u && (!norm || p.g_off % 4u == 0u)) {
    const uint nu = p.cols / 8u;
    for (uint u = tid; u < nu; u += WG) {
      vec4 xa = x4[(xb >> 2) + 2u * u];
      vec4 xc = x4[(xb >> 2) + 2u * u + 1u];
      if (norm) {
        ss += dot (xa, xa) + dot (xc, xc);
        xa *= g4[(p.g_off >> 2) + 2u * u];
        xc *= g4[(p.g_off >> 2) + 2u * u + 1u];
      }
      if (ksum) {
        xa *= sw;
        xc *= sw;
      }
      for (uint i = 0; i < NR; i++) {
        if (i >= nrows)
          break;
        vec4 lo, hi;
        w_unit8 (wbase + (r0 + i) * p.cols + 8u * u, lo, hi);
        acc[i] += dot (lo, xa) + dot (hi, xc);
#ifdef SWIGLU
        w_unit8 (wbase + (r0 + i + p.rows) * p.cols + 8u * u, lo, hi);
        acc[NR + i] += dot (lo, xa) + dot (hi, xc);
#endif
      }
    }
  } else {
    // odd widths and offsets: one element at a time
    for (uint k = tid; k < p.cols; k += WG) {
      float xv = x[xb + k];
      if (norm) {
        ss += xv * xv;
        xv *= g[p.g_off + k];
      }
      if (ksum)
        xv *= sw;
      for (uint i = 0; i < NR; i++) {
        if (i >= nrows)
          break;
        acc[i] += w_elem (wbase + (r0 + i) * p.cols + k) * xv;
#ifdef SWIGLU
        acc[NR + i] += w_elem (wbase + (r0 + i + p.rows) * p.cols + k) * xv;
#endif
      }
    }
  }

  }   // slots

  for (uint i = 0; i < NR * NW; i++) {
    const float s = subgroupAdd (acc[i]);
    if (gl_SubgroupInvocationID == 0)
      part[i][gl_SubgroupID] = s;
  }
  if (norm) {
    const float s = subgroupAdd (ss);
    if (gl_SubgroupInvocationID == 0)
      part[NR * NW][gl_SubgroupID] = s;
  }
  barrier ();
  if (tid < nrows) {
    float inv = 1.0;
    if (norm) {
      float q = 0.0;
      for (uint sg = 0; sg < gl_NumSubgroups; sg++)
        q += part[NR * NW][sg];
      inv = 1.0 / sqrt (q / float (p.cols) + p.eps);
    }
    float s = 0.0;
    for (uint sg = 0; sg < gl_NumSubgroups; sg++)
      s += part[tid][sg];
    s *= inv;
#ifdef SWIGLU
    float u = 0.0;
    for (uint sg = 0; sg < gl_NumSubgroups; sg++)
      u += part[NR + tid][sg];
    u *= inv;
    s = s / (1.0 + exp (-s)) * u;
#endif
    const uint o = p.y_off + z * p.y_stride + r0 + tid;
    y[o] = (p.flags & 1u) != 0u ? y[o] + s : s;
  }
}
