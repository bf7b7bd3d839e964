#version 450
// qomni — split-K attention for decode, pass 2 of 2: per (query head h, row r) merges the
// chunks attn_split.comp wrote: M = max of the chunk maxima, w_c = exp(m_c − M),
// out = Σ w_c·acc_c / Σ w_c·l_c. A row with no visible key gets zeros, as attention.comp.
// n_chunks ≤ 1024.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, nh, hd, n_chunks, part_off, o_off, o_stride;
} p;

layout (std430, binding = 0) readonly buffer PBuf { float part[]; };
layout (std430, binding = 1) writeonly buffer OBuf { float o[]; };

shared float ws[1024];

void
main ()
{
  const uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint rh = r * p.nh + h, nc = p.n_chunks;
  const uint mb = p.part_off + p.n * p.nh * nc * p.hd + rh * nc * 2u;
  float mx = -1.0 / 0.0;
  for (uint c = tid; c < nc; c += WG)
    mx = max (mx, part[mb + 2u * c]);
  const float M = wg_max (mx);
  float ls = 0.0;
  for (uint c = tid; c < nc; c += WG) {
    const float l = part[mb + 2u * c + 1u];
    const float w = l > 0.0 ? exp (part[mb + 2u * c] - M) : 0.0;
    ws[c] = w;
    ls += w * l;
  }
  const float L = wg_sum (ls);   // its barriers publish ws
  const float inv = L > 0.0 ? 1.0 / L : 0.0;
  const uint ab = p.part_off + rh * nc * p.hd;
  const uint oo = p.o_off + r * p.o_stride + h * p.hd;
  for (uint d = tid; d < p.hd; d += WG) {
    float s = 0.0;
    for (uint c = 0; c < nc; c++)
      if (ws[c] != 0.0)   // empty chunks (a replayed grid's unused tail) add nothing
        s += ws[c] * part[ab + c * p.hd + d];
    o[oo + d] = s * inv;
  }
}
