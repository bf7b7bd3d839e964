#version 450
// qomni — the MoE router after its projection, one workgroup per token: softmax over the
// E expert logits, top-k (ties to the lower index, as qomni_cpu_topk), renormalized
// weights. Writes ids[n, K] and weights[n, K]; the expert products read the ids from
// this buffer, so the choice stays on the GPU. With shared_gate (the talker), each row
// holds one more logit after the E experts' (rows l_stride apart): the shared expert's
// gate, written as sigmoid(logit) to weights[sg_off + r].
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n, E, K, l_off, ids_off, w_off, renorm, l_stride, shared_gate, sg_off;
} p;
layout (std430, binding = 0) readonly buffer LBuf { float lg[]; };
layout (std430, binding = 1) writeonly buffer IdsBuf { uint ids[]; };
layout (std430, binding = 2) writeonly buffer WBuf { float wout[]; };

shared float pr[1024];
shared uint taken[1024];
shared uint best_sh[32];
shared uint chosen[64];

void
main ()
{
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint lb = p.l_off + r * (p.l_stride != 0u ? p.l_stride : p.E);
  float m = -1.0 / 0.0;
  for (uint i = tid; i < p.E; i += WG) {
    pr[i] = lg[lb + i];
    taken[i] = 0u;
    m = max (m, pr[i]);
  }
  m = wg_max (m);
  float s = 0.0;
  for (uint i = tid; i < p.E; i += WG) {
    pr[i] = exp (pr[i] - m);
    s += pr[i];
  }
  const float inv = 1.0 / wg_sum (s);
  for (uint i = tid; i < p.E; i += WG)
    pr[i] *= inv;
  barrier ();
  for (uint j = 0; j < p.K; j++) {
    // each thread's best untaken candidate; strided order keeps the lowest index on ties
    float bv = -1.0 / 0.0;
    uint bi = 0xffffffffu;
    for (uint i = tid; i < p.E; i += WG)
      if (taken[i] == 0u && (bi == 0xffffffffu || pr[i] > bv)) {
        bv = pr[i];
        bi = i;
      }
    const float gm = wg_max (bi == 0xffffffffu ? -1.0 / 0.0 : bv);
    uint cand = (bi != 0xffffffffu && bv == gm) ? bi : 0xffffffffu;
    cand = subgroupMin (cand);
    if (gl_SubgroupInvocationID == 0)
      best_sh[gl_SubgroupID] = cand;
    barrier ();
    if (tid == 0) {
      uint b = 0xffffffffu;
      for (uint g = 0; g < gl_NumSubgroups; g++)
        b = min (b, best_sh[g]);
      chosen[j] = b;
      taken[b] = 1u;
    }
    barrier ();
  }
  if (tid == 0) {
    if (p.shared_gate != 0u)
      wout[p.sg_off + r] = 1.0 / (1.0 + exp (-lg[lb + p.E]));
    float sum = 0.0;
    for (uint j = 0; j < p.K; j++)
      sum += pr[chosen[j]];
    for (uint j = 0; j < p.K; j++) {
      ids[p.ids_off + r * p.K + j] = chosen[j];
      wout[p.w_off + r * p.K + j] = p.renorm != 0u ? pr[chosen[j]] / sum : pr[chosen[j]];
    }
  }
}
