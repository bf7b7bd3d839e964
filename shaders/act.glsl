// qomni shaders — the activations after a biased linear layer (bias_act, matmul's epilogue,
// matmul_reduce): act 0 none, 1 GELU (erf), 2 GELU (tanh).

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as eltwise.comp; GLSL has none.
float
erf_as (float v)
{
  const float t = 1.0 / (1.0 + 0.3275911 * abs (v));
  const float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                     + t * (-1.453152027 + t * 1.061405429))));
  return sign (v) * (1.0 - poly * exp (-v * v));
}

float
apply_act (float v, uint act)
{
  if (act == 1u) {
    v = 0.5 * v * (1.0 + erf_as (v * 0.70710678118654752));
  } else if (act == 2u) {
    const float u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    const float e = exp (-2.0 * abs (u));   // tanh through exp, without overflow
    v = 0.5 * v * (1.0 + sign (u) * (1.0 - e) / (1.0 + e));
  }
  return v;
}
