#version 450
// qomni — sampling on the GPU: qomni_sampler_pick (core/sampler.c) for one row of logits per
// workgroup, with the draw u made on the CPU, so a frame of the code predictor needs no
// read-back. Row r: logits x[off + r·n ..], u the double at words draw_off + 2r of binding 1,
// the token to o[out_off + r].
//
// The CPU's choices step by step: temperature (x / T rounded to float, as C divides), top-k
// as the k greatest (value, lower id first), softmax of the kept in float with exp done in
// double and rounded (libm's expf is within 0.502 ulp; the GPU's own exp is not nearly
// that), then top-p, the kept mass and the walk of u · kept down the probabilities in
// double, in the CPU's order, on one thread. What can still differ is a probability by an
// ulp where expf rounds the other way, which moves a cumulative boundary by ~1e-8 relative:
// only a draw that close to a boundary picks a neighbour.
//
// Needs shaderFloat64 (qomni_vk_has_float64). n ≤ MAX_N, k ≤ MAX_K.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define MAX_N 2048   // QOMNI_VK_PICK_MAX_N
#define MAX_K 256    // QOMNI_VK_PICK_MAX_K

layout (push_constant) uniform Push {
  uint n, k, off, draw_off, out_off;
  float temperature, top_p;
} p;
layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) readonly buffer DBuf { uint draws[]; };
layout (std430, binding = 2) writeonly buffer OBuf { uint o[]; };

shared uint keys[MAX_N];        // order-preserving uint of each scaled logit
shared uint cnt_sh[32];
shared uint kept_key[MAX_K];    // the kept, in no order
shared uint kept_id[MAX_K];
shared uint sorted_id[MAX_K];   // the kept by rank
shared float sorted_val[MAX_K];
shared float prob[MAX_K];

// Every thread gets the same count.
uint
wg_count (uint v)
{
  v = subgroupAdd (v);
  barrier ();
  if (gl_SubgroupInvocationID == 0)
    cnt_sh[gl_SubgroupID] = v;
  barrier ();
  uint s = 0;
  for (uint i = 0; i < gl_NumSubgroups; i++)
    s += cnt_sh[i];
  return s;
}

// Larger float ⇔ larger key; −0 is +0 (the CPU compares them equal).
uint
key_of (float v)
{
  uint b = floatBitsToUint (v);
  if ((b & 0x7fffffffu) == 0u)
    b = 0u;
  return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

float
val_of (uint key)
{
  return uintBitsToFloat ((key & 0x80000000u) != 0u ? key & 0x7fffffffu : ~key);
}

// e^x for x ≤ 0, within a few double ulps: x = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split so
// k·LN2_HI is exact), e^r by its Taylor series to r^13 (remainder < 1e-17).
double
exp_double (double x)
{
  if (x < -104.0lf)   // below half of expf's smallest subnormal
    return 0.0lf;
  const double LN2_HI = 6.93147180369123816490e-01lf, LN2_LO = 1.90821492927058770002e-10lf;
  const double k = floor (x * 1.44269504088896338700lf + 0.5lf);
  precise double r = (x - k * LN2_HI) - k * LN2_LO;
  precise double s = 1.0lf / 6227020800.0lf;   // 1/13!
  s = s * r + 1.0lf / 479001600.0lf;
  s = s * r + 1.0lf / 39916800.0lf;
  s = s * r + 1.0lf / 3628800.0lf;
  s = s * r + 1.0lf / 362880.0lf;
  s = s * r + 1.0lf / 40320.0lf;
  s = s * r + 1.0lf / 5040.0lf;
  s = s * r + 1.0lf / 720.0lf;
  s = s * r + 1.0lf / 120.0lf;
  s = s * r + 1.0lf / 24.0lf;
  s = s * r + 1.0lf / 6.0lf;
  s = s * r + 0.5lf;
  s = s * r + 1.0lf;
  s = s * r + 1.0lf;
  return ldexp (s, int (k));
}

void
main ()
{
  const uint tid = gl_LocalInvocationID.x, row = gl_WorkGroupID.x;
  const uint n = p.n, k = p.k, base = p.off + row * n;

  for (uint i = tid; i < n; i += WG) {
    precise float v = x[base + i];
    if (p.temperature != 1.0)
      v = float (double (v) / double (p.temperature));   // the correctly rounded v / T
    keys[i] = key_of (v);
  }
  barrier ();

  // The k-th largest key, a bit at a time: the largest t with #{key ≥ t} ≥ k.
  uint t = 0u;
  for (int bit = 31; bit >= 0; bit--) {
    const uint cand = t | (1u << bit);
    uint c = 0u;
    for (uint i = tid; i < n; i += WG)
      c += keys[i] >= cand ? 1u : 0u;
    if (wg_count (c) >= k)
      t = cand;
  }
  // All keys above t, and of those equal to t the lowest ids: the first ids below `bound`.
  uint above = 0u, equal = 0u;
  for (uint i = tid; i < n; i += WG) {
    above += keys[i] > t ? 1u : 0u;
    equal += keys[i] == t ? 1u : 0u;
  }
  above = wg_count (above);
  equal = wg_count (equal);
  const uint need = k - above;
  uint bound = n;
  if (equal > need) {
    // the smallest bound with #{key = t, id < bound} ≥ need
    uint lo = 1u, hi = n;
    while (lo < hi) {
      const uint mid = (lo + hi) / 2u;
      uint c = 0u;
      for (uint i = tid; i < mid; i += WG)
        c += keys[i] == t ? 1u : 0u;
      if (wg_count (c) >= need)
        hi = mid;
      else
        lo = mid + 1u;
    }
    bound = lo;
  }
  // Packed in thread order: each thread's slots start at the kept count of those before it.
  uint mine = 0u;
  for (uint i = tid; i < n; i += WG)
    mine += (keys[i] > t || (keys[i] == t && i < bound)) ? 1u : 0u;
  const uint in_subgroup = subgroupAdd (mine);
  barrier ();
  if (gl_SubgroupInvocationID == 0)
    cnt_sh[gl_SubgroupID] = in_subgroup;
  barrier ();
  uint at = subgroupExclusiveAdd (mine);
  for (uint s = 0; s < gl_SubgroupID; s++)
    at += cnt_sh[s];
  for (uint i = tid; i < n; i += WG) {
    const uint key = keys[i];
    if (key > t || (key == t && i < bound)) {
      kept_key[at] = key;
      kept_id[at] = i;
      at++;
    }
  }
  barrier ();

  // Sorted as the CPU's qsort: value descending, then id.
  for (uint j = tid; j < k; j += WG) {
    const uint kj = kept_key[j], ij = kept_id[j];
    uint rank = 0u;
    for (uint m = 0; m < k; m++)
      rank += (kept_key[m] > kj || (kept_key[m] == kj && kept_id[m] < ij)) ? 1u : 0u;
    sorted_id[rank] = ij;
    sorted_val[rank] = val_of (kj);
  }
  barrier ();
  for (uint j = tid; j < k; j += WG) {
    precise float d = sorted_val[j] - sorted_val[0];
    prob[j] = float (exp_double (double (d)));
  }
  barrier ();

  if (tid == 0) {
    precise double sum = 0.0lf;
    for (uint i = 0; i < k; i++)
      sum += double (prob[i]);
    uint keep_n = k;
    if (p.top_p < 1.0) {
      precise double cum = 0.0lf;
      for (uint i = 0; i < k; i++) {
        cum += double (prob[i]) / sum;
        if (cum >= double (p.top_p)) {
          keep_n = i + 1u;
          break;
        }
      }
    }
    precise double kept = 0.0lf;
    for (uint i = 0; i < keep_n; i++)
      kept += double (prob[i]);
    const double u = packDouble2x32 (uvec2 (draws[p.draw_off + 2u * row],
                                            draws[p.draw_off + 2u * row + 1u]));
    precise double r = u * kept;
    uint pick = sorted_id[keep_n - 1u];
    for (uint i = 0; i < keep_n; i++) {
      r -= double (prob[i]);
      if (r < 0.0lf) {
        pick = sorted_id[i];
        break;
      }
    }
    o[p.out_off + row] = pick;
  }
}
