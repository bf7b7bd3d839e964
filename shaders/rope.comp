#version 450
// qomni — per (head, row): optional RMSNorm over the head (the q_norm/k_norm of Qwen3),
// then rotate-half RoPE: element i pairs with i + hd/2 at angle (cos, sin)[row, i].
// The tables come from the CPU (M-RoPE: each slot's axis picks its position), computed
// exactly as the CPU path does. Writing y ≠ x puts K straight into the KV cache.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, heads, hd, x_off, x_stride, y_off, y_stride, cs_off, sin_off, norm_off, flags;
  float eps;
} p;

layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer YBuf { float y[]; };
layout (std430, binding = 2) readonly buffer CsBuf { float cs[]; };
layout (std430, binding = 3) readonly buffer NBuf { float nw[]; };

shared float v[512];

void
main ()
{
  const uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint xo = p.x_off + r * p.x_stride + h * p.hd;
  const uint yo = p.y_off + r * p.y_stride + h * p.hd;
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
  for (uint i = tid; i < half_; i += WG) {
    float a = v[i] * inv, b = v[i + half_] * inv;
    if ((p.flags & 1u) != 0u) {
      a *= nw[p.norm_off + i];
      b *= nw[p.norm_off + i + half_];
    }
    const float c = cs[p.cs_off + r * half_ + i], sn = cs[p.cs_off + p.sin_off + r * half_ + i];
    y[yo + i] = a * c - b * sn;
    y[yo + i + half_] = b * c + a * sn;
  }
}
