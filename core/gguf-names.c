/* qomni — GGUF tensor names <-> the release's Hugging Face names.
 *
 * The thinker's text model uses llama.cpp's names (its qwen3moe / qwen3vlmoe architectures),
 * so a file made by llama.cpp's converter loads; the 128 experts of a layer are one 3-D
 * tensor there. Everything else (audio tower, vision, talker, code predictor, Code2Wav)
 * keeps its release name verbatim: llama.cpp has no names for those that live in the same
 * file. docs/gguf.md has the table.
 */
#include "gguf.h"

#include <string.h>

#define THINKER_LAYER "thinker.model.layers."

static const struct {
  const char *gguf;
  const char *release;
} global_names[] = {
  { "token_embd.weight",  "thinker.model.embed_tokens.weight" },
  { "output_norm.weight", "thinker.model.norm.weight" },
  { "output.weight",      "thinker.lm_head.weight" },
};

/* Per layer: blk.L.<gguf> <-> thinker.model.layers.L.<release>. Expert rows name one
 * expert's tensor as mlp.experts.E.<release>. */
static const struct {
  const char *gguf;
  const char *release;
  gboolean experts;
} layer_names[] = {
  { "attn_norm.weight",     "input_layernorm.weight",          FALSE },
  { "attn_q.weight",        "self_attn.q_proj.weight",         FALSE },
  { "attn_k.weight",        "self_attn.k_proj.weight",         FALSE },
  { "attn_v.weight",        "self_attn.v_proj.weight",         FALSE },
  { "attn_output.weight",   "self_attn.o_proj.weight",         FALSE },
  { "attn_q_norm.weight",   "self_attn.q_norm.weight",         FALSE },
  { "attn_k_norm.weight",   "self_attn.k_norm.weight",         FALSE },
  { "ffn_norm.weight",      "post_attention_layernorm.weight", FALSE },
  { "ffn_gate_inp.weight",  "mlp.gate.weight",                 FALSE },
  { "ffn_gate.weight",      "mlp.gate_proj.weight",            FALSE },
  { "ffn_up.weight",        "mlp.up_proj.weight",              FALSE },
  { "ffn_down.weight",      "mlp.down_proj.weight",            FALSE },
  { "ffn_gate_exps.weight", "gate_proj.weight",                TRUE },
  { "ffn_up_exps.weight",   "up_proj.weight",                  TRUE },
  { "ffn_down_exps.weight", "down_proj.weight",                TRUE },
};

/* ggml's C reader refuses tensor names of GGML_MAX_NAME (64) bytes or more; two release
 * names are that long (code2wav.pre_transformer.layers.N.post_attention_layernorm.weight,
 * talker.code_predictor.model.layers.N.post_attention_layernorm.weight). A verbatim name of
 * 64 bytes or more is shortened with these substitutions; loading undoes them, which is
 * unambiguous because no release name contains a short form. */
#define GGML_MAX_NAME 64

static const struct {
  const char *release;
  const char *gguf;
} abbreviations[] = {
  { "post_attention_layernorm", "post_attn_norm" },
};

static char *
substitute (const char *name, gboolean to_gguf)
{
  GString *s = g_string_new (name);
  gboolean changed = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (abbreviations); i++) {
    const char *from = to_gguf ? abbreviations[i].release : abbreviations[i].gguf;
    const char *to = to_gguf ? abbreviations[i].gguf : abbreviations[i].release;
    if (strstr (s->str, from)) {
      g_string_replace (s, from, to, 0);
      changed = TRUE;
    }
  }
  return g_string_free (s, !changed);
}

/* Parses a decimal index at *s (digits only, no sign, below 2^31) and the dot after it. */
static gboolean
parse_index (const char **s, int *out)
{
  const char *p = *s;
  long v = 0;
  if (!g_ascii_isdigit (*p))
    return FALSE;
  while (g_ascii_isdigit (*p)) {
    v = v * 10 + (*p - '0');
    if (v > G_MAXINT32)
      return FALSE;
    p++;
  }
  if (*p != '.')
    return FALSE;
  *out = (int) v;
  *s = p + 1;
  return TRUE;
}

/* The layer_names row of a GGUF name blk.L.<suffix>, or -1. */
static int
gguf_layer_row (const char *gguf_name, int *layer)
{
  const char *p = gguf_name;
  if (!g_str_has_prefix (p, "blk."))
    return -1;
  p += 4;
  if (!parse_index (&p, layer))
    return -1;
  for (guint i = 0; i < G_N_ELEMENTS (layer_names); i++)
    if (strcmp (p, layer_names[i].gguf) == 0)
      return (int) i;
  return -1;
}

gboolean
qomni_gguf_name_is_expert_stack (const char *gguf_name)
{
  int layer;
  int row = gguf_layer_row (gguf_name, &layer);
  return row >= 0 && layer_names[row].experts;
}

char *
qomni_gguf_name_to_release (const char *gguf_name, int expert)
{
  for (guint i = 0; i < G_N_ELEMENTS (global_names); i++)
    if (strcmp (gguf_name, global_names[i].gguf) == 0)
      return g_strdup (global_names[i].release);
  int layer;
  int row = gguf_layer_row (gguf_name, &layer);
  if (row < 0)
    return substitute (gguf_name, FALSE);
  if (layer_names[row].experts)
    return g_strdup_printf (THINKER_LAYER "%d.mlp.experts.%d.%s", layer, expert,
                            layer_names[row].release);
  return g_strdup_printf (THINKER_LAYER "%d.%s", layer, layer_names[row].release);
}

char *
qomni_gguf_name_from_release (const char *release_name, int *expert)
{
  *expert = -1;
  for (guint i = 0; i < G_N_ELEMENTS (global_names); i++)
    if (strcmp (release_name, global_names[i].release) == 0)
      return g_strdup (global_names[i].gguf);
  if (g_str_has_prefix (release_name, THINKER_LAYER)) {
    const char *p = release_name + strlen (THINKER_LAYER);
    int layer, e = -1;
    if (parse_index (&p, &layer) &&
        (!g_str_has_prefix (p, "mlp.experts.") ||
         (p += strlen ("mlp.experts."), parse_index (&p, &e)))) {
      for (guint i = 0; i < G_N_ELEMENTS (layer_names); i++) {
        if (layer_names[i].experts == (e >= 0) && strcmp (p, layer_names[i].release) == 0) {
          *expert = e;
          return g_strdup_printf ("blk.%d.%s", layer, layer_names[i].gguf);
        }
      }
    }
  }
  return strlen (release_name) >= GGML_MAX_NAME ? substitute (release_name, TRUE) : NULL;
}
