#version 450
// qomni — the q/k/v step of a decoder layer in one dispatch. Workgroup (h, r) of the
// fused q/k/v row r: h < nh: q head h, optional per-head RMSNorm (q_norm) then rotate-half
// RoPE, in place; nh ≤ h < nh + nkv: k head h − nh, the same with k_norm, written into the
// K cache; after that: v head h − nh − nkv copied into the V cache. The math is rope.comp's.
// flags bit 1 (a decode step recorded once and replayed): the cache rows start at
// kv_off + pos·kv_stride, pos the uint at word pos_off of binding 3 (the step buffer).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, nh, nkv, hd, x_off, x_stride, kv_off, kv_stride, cs_off, sin_off, qnorm_off,
      knorm_off, flags;
  float eps;
  uint pos_off;
} p;

layout (std430, binding = 0) buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer KBuf { float kc[]; };
layout (std430, binding = 2) writeonly buffer VBuf { float vc[]; };
layout (std430, binding = 3) readonly buffer CsBuf { float cs[]; };
layout (std430, binding = 3) readonly buffer PosBuf { uint cs_u[]; };   // the same, as words
layout (std430, binding = 4) readonly buffer NBuf { float nw[]; };

shared float v[512];

void
main ()
{
  const uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint xo = p.x_off + r * p.x_stride + h * p.hd;
  const uint kv_off = (p.flags & 2u) != 0u
                          ? p.kv_off + cs_u[p.pos_off] * p.kv_stride
                          : p.kv_off;
  if (h >= p.nh + p.nkv) {
    const uint vo = kv_off + r * p.kv_stride + (h - p.nh - p.nkv) * p.hd;
    for (uint i = tid; i < p.hd; i += WG)
      vc[vo + i] = x[xo + i];
    return;
  }
  const bool is_q = h < p.nh;
  const uint norm_off = is_q ? p.qnorm_off : p.knorm_off;
  float s = 0.0;
  for (uint i = tid; i < p.hd; i += WG) {
    v[i] = x[xo + i];
    s += v[i] * v[i];
  }
  float inv = 1.0;
  if ((p.flags & 1u) != 0u)
    inv = 1.0 / sqrt (wg_sum (s) / float (p.hd) + p.eps);
  barrier ();
  const uint half_ = p.hd / 2u;
  const uint yo = is_q ? xo : kv_off + r * p.kv_stride + (h - p.nh) * p.hd;
  for (uint i = tid; i < half_; i += WG) {
    float a = v[i] * inv, b = v[i + half_] * inv;
    if ((p.flags & 1u) != 0u) {
      a *= nw[norm_off + i];
      b *= nw[norm_off + i + half_];
    }
    const float c = cs[p.cs_off + r * half_ + i], sn = cs[p.cs_off + p.sin_off + r * half_ + i];
    const float ya = a * c - b * sn, yb = b * c + a * sn;
    if (is_q) {
      x[yo + i] = ya;
      x[yo + i + half_] = yb;
    } else {
      kc[yo + i] = ya;
      kc[yo + i + half_] = yb;
    }
  }
}
