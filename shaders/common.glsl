// qomni shaders — shared declarations: workgroup width and workgroup reductions.
//
// Every shader's workgroup width is specialization constant 0 (the pipeline table in
// core/vk-device.c sets it). Reductions go through subgroup arithmetic first and a
// 32-entry shared array across subgroups (a workgroup holds at most 32 subgroups on the
// devices we target: 128 threads with subgroups of 4 or more).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout (local_size_x_id = 0) in;
layout (constant_id = 0) const uint WG = 128;

shared float red_sh[32];

// Every thread gets the same sum, added in the same order.
float
wg_sum (float v)
{
  v = subgroupAdd (v);
  barrier ();  // the previous reduction's readers are done with red_sh
  if (gl_SubgroupInvocationID == 0)
    red_sh[gl_SubgroupID] = v;
  barrier ();
  float s = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; i++)
    s += red_sh[i];
  return s;
}

float
wg_max (float v)
{
  v = subgroupMax (v);
  barrier ();
  if (gl_SubgroupInvocationID == 0)
    red_sh[gl_SubgroupID] = v;
  barrier ();
  float s = red_sh[0];
  for (uint i = 1; i < gl_NumSubgroups; i++)
    s = max (s, red_sh[i]);
  return s;
}
