/* qomni — release checkpoint layout. */
#include "checkpoint.h"

#include <stdarg.h>

static void
spec_free (gpointer p)
{
  QomniTensorSpec *s = p;
  g_free (s->name);
  g_free (s);
}

/* add (list, ndim, d0, d1, ..., fmt, ...) */
static void
add (GPtrArray *list, int ndim, ...)
{
  QomniTensorSpec *s = g_new0 (QomniTensorSpec, 1);
  va_list ap;
  va_start (ap, ndim);
  s->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    s->shape[i] = va_arg (ap, int);
  const char *fmt = va_arg (ap, const char *);
  s->name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_ptr_array_add (list, s);
}

/* A pre-norm decoder stack as core/decoder.c reads it. */
static void
add_decoder (GPtrArray *l, const QomniTextConfig *c, const char *p, gboolean qk_norm,
             gboolean layer_scale)
{
  const int H = c->hidden_size, hd = c->head_dim;
  const int qd = c->num_attention_heads * hd, kvd = c->num_key_value_heads * hd;
  for (int n = 0; n < c->num_hidden_layers; n++) {
    add (l, 1, H, "%s.layers.%d.input_layernorm.weight", p, n);
    add (l, 1, H, "%s.layers.%d.post_attention_layernorm.weight", p, n);
    add (l, 2, qd, H, "%s.layers.%d.self_attn.q_proj.weight", p, n);
    add (l, 2, kvd, H, "%s.layers.%d.self_attn.k_proj.weight", p, n);
    add (l, 2, kvd, H, "%s.layers.%d.self_attn.v_proj.weight", p, n);
    add (l, 2, H, qd, "%s.layers.%d.self_attn.o_proj.weight", p, n);
    if (qk_norm) {
      add (l, 1, hd, "%s.layers.%d.self_attn.q_norm.weight", p, n);
      add (l, 1, hd, "%s.layers.%d.self_attn.k_norm.weight", p, n);
    }
    if (layer_scale) {
      add (l, 1, H, "%s.layers.%d.self_attn_layer_scale.scale", p, n);
      add (l, 1, H, "%s.layers.%d.mlp_layer_scale.scale", p, n);
    }
    gboolean moe = c->num_experts > 0;
    for (int i = 0; moe && i < c->n_mlp_only_layers; i++)
      moe = c->mlp_only_layers[i] != n;
    if (moe && (n + 1) % MAX (c->decoder_sparse_step, 1) == 0) {
      const int I = c->moe_intermediate_size;
      add (l, 2, c->num_experts, H, "%s.layers.%d.mlp.gate.weight", p, n);
      for (int e = 0; e < c->num_experts; e++) {
        add (l, 2, I, H, "%s.layers.%d.mlp.experts.%d.gate_proj.weight", p, n, e);
        add (l, 2, I, H, "%s.layers.%d.mlp.experts.%d.up_proj.weight", p, n, e);
        add (l, 2, H, I, "%s.layers.%d.mlp.experts.%d.down_proj.weight", p, n, e);
      }
      const int Is = c->shared_expert_intermediate_size;
      if (Is > 0) {
        add (l, 2, Is, H, "%s.layers.%d.mlp.shared_expert.gate_proj.weight", p, n);
        add (l, 2, Is, H, "%s.layers.%d.mlp.shared_expert.up_proj.weight", p, n);
        add (l, 2, H, Is, "%s.layers.%d.mlp.shared_expert.down_proj.weight", p, n);
        add (l, 2, 1, H, "%s.layers.%d.mlp.shared_expert_gate.weight", p, n);
      }
    } else {
      const int I = c->intermediate_size;
      add (l, 2, I, H, "%s.layers.%d.mlp.gate_proj.weight", p, n);
      add (l, 2, I, H, "%s.layers.%d.mlp.up_proj.weight", p, n);
      add (l, 2, H, I, "%s.layers.%d.mlp.down_proj.weight", p, n);
    }
  }
  add (l, 1, H, "%s.norm.weight", p);
}

static void
add_audio (GPtrArray *l, const QomniAudioConfig *a)
{
  const char *p = "thinker.audio_tower";
  const int C = a->downsample_hidden_size, D = a->d_model, F = a->encoder_ffn_dim;
  /* three stride-2 convs take the mel axis from num_mel_bins to ceil(/8) */
  const int freq = (((a->num_mel_bins + 1) / 2 + 1) / 2 + 1) / 2;
  add (l, 4, C, 1, 3, 3, "%s.conv2d1.weight", p);
  add (l, 1, C, "%s.conv2d1.bias", p);
  for (int k = 2; k <= 3; k++) {
    add (l, 4, C, C, 3, 3, "%s.conv2d%d.weight", p, k);
    add (l, 1, C, "%s.conv2d%d.bias", p, k);
  }
  add (l, 2, D, C * freq, "%s.conv_out.weight", p);
  for (int n = 0; n < a->encoder_layers; n++) {
    static const char *const proj[] = { "q_proj", "k_proj", "v_proj", "out_proj" };
    for (int j = 0; j < 4; j++) {
      add (l, 2, D, D, "%s.layers.%d.self_attn.%s.weight", p, n, proj[j]);
      add (l, 1, D, "%s.layers.%d.self_attn.%s.bias", p, n, proj[j]);
    }
    add (l, 1, D, "%s.layers.%d.self_attn_layer_norm.weight", p, n);
    add (l, 1, D, "%s.layers.%d.self_attn_layer_norm.bias", p, n);
    add (l, 2, F, D, "%s.layers.%d.fc1.weight", p, n);
    add (l, 1, F, "%s.layers.%d.fc1.bias", p, n);
    add (l, 2, D, F, "%s.layers.%d.fc2.weight", p, n);
    add (l, 1, D, "%s.layers.%d.fc2.bias", p, n);
    add (l, 1, D, "%s.layers.%d.final_layer_norm.weight", p, n);
    add (l, 1, D, "%s.layers.%d.final_layer_norm.bias", p, n);
  }
  add (l, 1, D, "%s.ln_post.weight", p);
  add (l, 1, D, "%s.ln_post.bias", p);
  add (l, 2, D, D, "%s.proj1.weight", p);
  add (l, 1, D, "%s.proj1.bias", p);
  add (l, 2, a->output_dim, D, "%s.proj2.weight", p);
  add (l, 1, a->output_dim, "%s.proj2.bias", p);
}

static void
add_merger (GPtrArray *l, const QomniVisionConfig *v, const char *p, int ln_dim)
{
  const int M = v->hidden_size * v->spatial_merge_size * v->spatial_merge_size;
  add (l, 1, ln_dim, "%s.ln_q.weight", p);
  add (l, 1, ln_dim, "%s.ln_q.bias", p);
  add (l, 2, M, M, "%s.mlp.0.weight", p);
  add (l, 1, M, "%s.mlp.0.bias", p);
  add (l, 2, v->out_hidden_size, M, "%s.mlp.2.weight", p);
  add (l, 1, v->out_hidden_size, "%s.mlp.2.bias", p);
}

static void
add_vision (GPtrArray *l, const QomniVisionConfig *v)
{
  const char *p = "thinker.visual";
  const int D = v->hidden_size, I = v->intermediate_size;
  add (l, 5, D, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size,
       "%s.patch_embed.proj.weight", p);
  add (l, 1, D, "%s.patch_embed.proj.bias", p);
  add (l, 2, v->num_position_embeddings, D, "%s.pos_embed.weight", p);
  for (int n = 0; n < v->depth; n++) {
    add (l, 1, D, "%s.blocks.%d.norm1.weight", p, n);
    add (l, 1, D, "%s.blocks.%d.norm1.bias", p, n);
    add (l, 1, D, "%s.blocks.%d.norm2.weight", p, n);
    add (l, 1, D, "%s.blocks.%d.norm2.bias", p, n);
    add (l, 2, 3 * D, D, "%s.blocks.%d.attn.qkv.weight", p, n);
    add (l, 1, 3 * D, "%s.blocks.%d.attn.qkv.bias", p, n);
    add (l, 2, D, D, "%s.blocks.%d.attn.proj.weight", p, n);
    add (l, 1, D, "%s.blocks.%d.attn.proj.bias", p, n);
    add (l, 2, I, D, "%s.blocks.%d.mlp.linear_fc1.weight", p, n);
    add (l, 1, I, "%s.blocks.%d.mlp.linear_fc1.bias", p, n);
    add (l, 2, D, I, "%s.blocks.%d.mlp.linear_fc2.weight", p, n);
    add (l, 1, D, "%s.blocks.%d.mlp.linear_fc2.bias", p, n);
  }
  add_merger (l, v, "thinker.visual.merger", D);
  const int M = D * v->spatial_merge_size * v->spatial_merge_size;
  for (int k = 0; k < v->n_deepstack; k++) {
    g_autofree char *name = g_strdup_printf ("thinker.visual.merger_list.%d", k);
    add_merger (l, v, name, M);
  }
}

static void
add_projection (GPtrArray *l, const char *p, int in, int mid, int out)
{
  add (l, 2, mid, in, "%s.linear_fc1.weight", p);
  add (l, 1, mid, "%s.linear_fc1.bias", p);
  add (l, 2, out, mid, "%s.linear_fc2.weight", p);
  add (l, 1, out, "%s.linear_fc2.bias", p);
}

static void
add_talker (GPtrArray *l, const QomniTalkerConfig *t)
{
  const QomniTextConfig *tc = &t->text, *cp = &t->code_predictor;
  const int H = tc->hidden_size;
  add (l, 2, tc->vocab_size, H, "talker.model.codec_embedding.weight");
  add_decoder (l, tc, "talker.model", TRUE, FALSE);
  add (l, 2, tc->vocab_size, H, "talker.codec_head.weight");
  add_projection (l, "talker.text_projection", t->thinker_hidden_size, tc->intermediate_size, H);
  add_projection (l, "talker.hidden_projection", t->thinker_hidden_size, tc->intermediate_size,
                  H);
  for (int q = 0; q < t->num_code_groups - 1; q++)
    add (l, 2, cp->vocab_size, cp->hidden_size,
         "talker.code_predictor.model.codec_embedding.%d.weight", q);
  add_decoder (l, cp, "talker.code_predictor.model", TRUE, FALSE);
  for (int q = 0; q < t->num_code_groups - 1; q++)
    add (l, 2, cp->vocab_size, cp->hidden_size, "talker.code_predictor.lm_head.%d.weight", q);
}

static void
add_code2wav (GPtrArray *l, const QomniCode2WavConfig *c)
{
  const int H = c->transformer.hidden_size, D = c->decoder_dim;
  add (l, 2, c->codebook_size * c->num_quantizers, H, "code2wav.code_embedding.weight");
  add_decoder (l, &c->transformer, "code2wav.pre_transformer", FALSE, TRUE);
  for (int i = 0; i < c->n_upsampling_ratios; i++) {
    const int r = c->upsampling_ratios[i];
    add (l, 3, H, H, r, "code2wav.upsample.%d.0.conv.weight", i);
    add (l, 1, H, "code2wav.upsample.%d.0.conv.bias", i);
    add (l, 3, H, 1, 7, "code2wav.upsample.%d.1.dwconv.conv.weight", i);
    add (l, 1, H, "code2wav.upsample.%d.1.dwconv.conv.bias", i);
    add (l, 1, H, "code2wav.upsample.%d.1.norm.weight", i);
    add (l, 1, H, "code2wav.upsample.%d.1.norm.bias", i);
    add (l, 1, H, "code2wav.upsample.%d.1.gamma", i);
    add (l, 2, 4 * H, H, "code2wav.upsample.%d.1.pwconv1.weight", i);
    add (l, 1, 4 * H, "code2wav.upsample.%d.1.pwconv1.bias", i);
    add (l, 2, H, 4 * H, "code2wav.upsample.%d.1.pwconv2.weight", i);
    add (l, 1, H, "code2wav.upsample.%d.1.pwconv2.bias", i);
  }
  add (l, 3, D, H, 7, "code2wav.decoder.0.conv.weight");
  add (l, 1, D, "code2wav.decoder.0.conv.bias");
  int cin = D;
  for (int b = 0; b < c->n_upsample_rates; b++) {
    const int B = b + 1, r = c->upsample_rates[b], cout = cin / 2;
    add (l, 1, cin, "code2wav.decoder.%d.block.0.alpha", B);
    add (l, 1, cin, "code2wav.decoder.%d.block.0.beta", B);
    add (l, 3, cin, cout, 2 * r, "code2wav.decoder.%d.block.1.conv.weight", B);
    add (l, 1, cout, "code2wav.decoder.%d.block.1.conv.bias", B);
    for (int u = 2; u <= 4; u++) {
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.act1.alpha", B, u);
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.act1.beta", B, u);
      add (l, 3, cout, cout, 7, "code2wav.decoder.%d.block.%d.conv1.conv.weight", B, u);
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.conv1.conv.bias", B, u);
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.act2.alpha", B, u);
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.act2.beta", B, u);
      add (l, 3, cout, cout, 1, "code2wav.decoder.%d.block.%d.conv2.conv.weight", B, u);
      add (l, 1, cout, "code2wav.decoder.%d.block.%d.conv2.conv.bias", B, u);
    }
    cin = cout;
  }
  const int last = c->n_upsample_rates + 1;
  add (l, 1, cin, "code2wav.decoder.%d.alpha", last);
  add (l, 1, cin, "code2wav.decoder.%d.beta", last);
  add (l, 3, 1, cin, 7, "code2wav.decoder.%d.conv.weight", last + 1);
  add (l, 1, 1, "code2wav.decoder.%d.conv.bias", last + 1);
}

GPtrArray *
qomni_checkpoint_layout (const QomniConfig *c, QomniParts parts)
{
  GPtrArray *l = g_ptr_array_new_with_free_func (spec_free);
  const QomniThinkerConfig *t = &c->thinker;
  if (parts & QOMNI_PART_THINKER_TEXT) {
    add (l, 2, t->text.vocab_size, t->text.hidden_size, "thinker.model.embed_tokens.weight");
    add_decoder (l, &t->text, "thinker.model", TRUE, FALSE);
    if (!t->text.tie_word_embeddings)
      add (l, 2, t->text.vocab_size, t->text.hidden_size, "thinker.lm_head.weight");
  }
  if ((parts & QOMNI_PART_AUDIO) && t->audio.d_model)
    add_audio (l, &t->audio);
  if ((parts & QOMNI_PART_VISION) && t->vision.depth)
    add_vision (l, &t->vision);
  if ((parts & QOMNI_PART_TALKER) && c->talker.present)
    add_talker (l, &c->talker);
  if ((parts & QOMNI_PART_CODE2WAV) && c->code2wav.present)
    add_code2wav (l, &c->code2wav);
  return l;
}
