#version 450
// qomni — groups a prefill's (token, slot) pairs by expert, on the GPU and without
// atomics, for the grouped expert products (moe_matmul). Workgroup e reads all S = n·K
// expert ids written by moe_topk twice: first it counts the pairs routed to experts below
// e (its start in the grouped order) and to e itself, then it writes the indices s of e's
// pairs, in increasing s, at pairs[start ..]. Rereading S words (a few KB, from cache) in
// every workgroup replaces a separate count pass and prefix sum: one dispatch, and the
// same order on every run.
//
// route (binding 1) at route_off: counts[E] | starts[E] | pairs[S].
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push { uint S, E, ids_off, route_off; } p;
layout (std430, binding = 0) readonly buffer IdsBuf { uint ids[]; };
layout (std430, binding = 1) buffer RouteBuf { uint route[]; };

shared uint below_sh[32], mine_sh[32], chunk_sh[32];

void
main ()
{
  const uint e = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  uint below = 0u, mine = 0u;
  for (uint i = tid; i < p.S; i += WG) {
    const uint v = ids[p.ids_off + i];
    below += v < e ? 1u : 0u;
    mine += v == e ? 1u : 0u;
  }
  below = subgroupAdd (below);
  mine = subgroupAdd (mine);
  if (gl_SubgroupInvocationID == 0) {
    below_sh[gl_SubgroupID] = below;
    mine_sh[gl_SubgroupID] = mine;
  }
  barrier ();
  uint start = 0u, count = 0u;
  for (uint sg = 0; sg < gl_NumSubgroups; sg++) {
    start += below_sh[sg];
    count += mine_sh[sg];
  }
  if (tid == 0) {
    route[p.route_off + e] = count;
    route[p.route_off + p.E + e] = start;
  }
  // stable scatter: chunks of WG pairs in order, each pair's rank among e's pairs in the
  // chunk from a subgroup prefix sum plus the counts of the subgroups before it
  const uint out0 = p.route_off + 2u * p.E + start;
  uint done = 0u;
  for (uint c0 = 0; c0 < p.S && done < count; c0 += WG) {
    const uint i = c0 + tid;
    const uint f = (i < p.S && ids[p.ids_off + i] == e) ? 1u : 0u;
    const uint pre = subgroupExclusiveAdd (f);
    const uint tot = subgroupAdd (f);
    barrier ();   // the previous chunk's readers are done with chunk_sh
    if (gl_SubgroupInvocationID == 0)
      chunk_sh[gl_SubgroupID] = tot;
    barrier ();
    uint before = 0u, all = 0u;
    for (uint sg = 0; sg < gl_NumSubgroups; sg++) {
      before += sg < gl_SubgroupID ? chunk_sh[sg] : 0u;
      all += chunk_sh[sg];
    }
    if (f != 0u)
      route[out0 + done + before + pre] = i;
    done += all;
  }
}
