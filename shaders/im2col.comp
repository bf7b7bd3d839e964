#version 450
// qomni — im2col of a 3×3, stride 2, padding 1 Conv2d, so that the convolution is the tiled
// matmul against its weight [Co, Ci·9] viewed as a matrix (column ci·9 + kh·3 + kw).
//
// The input is a batch of chunks of [Fi, Wi, Ci], element (c, f, w, ci) at
// x_off + c·x_chunk + f·x_f + w·x_w + ci·x_c (any layout: the audio encoder's first
// convolution reads the mel features [F, T] directly). Output rows are ordered
// (chunk, wo, fo), which makes a product's output [chunk, Wo, Fo, Co]: per time step the
// whole [F, C] map is one contiguous row, ready for the audio encoder's conv_out.
// Taps outside the input are the zero padding; so are columns w with c·Wi + w ≥ w_total,
// the zero-padded frames past the end of the audio in its last chunk.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout (push_constant) uniform Push {
  uint n_chunks, Fi, Wi, Ci, Fo, Wo, x_off, x_chunk, x_f, x_w, x_c, w_total, y_off;
} p;

layout (std430, binding = 0) readonly buffer XBuf { float x[]; };
layout (std430, binding = 1) writeonly buffer YBuf { float y[]; };

void
main ()
{
  const uint K = p.Ci * 9u;
  const uint total = p.n_chunks * p.Wo * p.Fo * K, stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
    const uint row = i / K, k = i - row * K;
    const uint ci = k / 9u, kk = k - ci * 9u;
    const uint fo = row % p.Fo, t = row / p.Fo;
    const uint wo = t % p.Wo, c = t / p.Wo;
    // 2·fo + kh − 1 without going below zero in unsigned arithmetic
    const uint fi1 = 2u * fo + kk / 3u, wi1 = 2u * wo + kk % 3u;
    float v = 0.0;
    if (fi1 >= 1u && fi1 <= p.Fi && wi1 >= 1u && wi1 <= p.Wi
        && c * p.Wi + wi1 - 1u < p.w_total)
      v = x[p.x_off + c * p.x_chunk + (fi1 - 1u) * p.x_f + (wi1 - 1u) * p.x_w + ci * p.x_c];
    y[p.y_off + i] = v;
  }
}
