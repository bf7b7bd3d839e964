/* qomni — the code predictor on the Vulkan device. */
#include "code-predictor-vk.h"
#include "error.h"
#include "vk-ops.h"

#include <string.h>

struct _QomniVkCodePredictor {
  QomniVk *vk;
  QomniVkDecoder *dec;   /* 15 tables and 15 heads */
  int H, V, G, half;
  QomniVkBuffer *cs;     /* [2, G, half]: cos/sin of positions 0 … G−1, made once */
  QomniVkBuffer *logits; /* [V] */
  QomniVkBuffer *codes;  /* uint [G]: the GPU's picks */
  QomniVkBuffer *sum;    /* [H] */
  /* host: uint ids [G] in | uint codes [G] | sum [H] | logits [V] | double draws [G] in */
  QomniVkBuffer *io;
  size_t io_codes, io_sum, io_logits, io_draws;   /* 32-bit word offsets in io */
  gint64 t_record, t_submit;           /* µs: recording, and submitting + waiting */
  gboolean gpu_sampling;               /* sampled picks by SAMPLE_PICK when it can */
  /* The frame on the GPU is the same commands every time (only c0 and the draws in io and
   * the contents of the talker's states change), so it is recorded once and submitted
   * again. A sampled frame's push constants hold the sampler's parameters. */
  QomniVkCmd *frame;
  const QomniVkDecoder *frame_talker;
  int frame_z_row;
  gboolean frame_profiled;
  QomniSamplerParams frame_params;     /* temperature ≤ 0: the greedy frame */
};

QomniVkCodePredictor *
qomni_vk_code_predictor_new (QomniVk *vk, const QomniWeights *w, const QomniTalkerConfig *tc,
                             QomniDType rdt, GError **error)
{
  QomniVkCodePredictor *p = g_new0 (QomniVkCodePredictor, 1);
  g_autofree int *pos = NULL;
  g_autofree float *cs = NULL;
  p->vk = vk;
  p->H = tc->code_predictor.hidden_size;
  p->V = tc->code_predictor.vocab_size;
  p->G = tc->num_code_groups;
  if (p->G < 2 || p->H != tc->text.hidden_size) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                 "talker_config: num_code_groups %d and code predictor width %d (need ≥ 2 "
                 "groups and the talker's width %d)", p->G, p->H, tc->text.hidden_size);
    goto fail;
  }
  const QomniVkStackNames names = {
    .prefix = "talker.code_predictor.model",
    .embed = "talker.code_predictor.model.codec_embedding.%d.weight",
    .head = "talker.code_predictor.lm_head.%d.weight",
    .n_tables = p->G - 1,
  };
  /* G positions per frame: the 2-row prefill, then G − 2 single rows */
  p->dec = qomni_vk_decoder_new (vk, w, &tc->code_predictor, &names, rdt, p->G, 2, error);
  if (!p->dec)
    goto fail;
  p->half = qomni_vk_decoder_rope_half (p->dec);
  pos = g_new (int, 3 * p->G);
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < p->G; i++)
      pos[a * p->G + i] = i;
  cs = g_new (float, 2 * (gsize) p->G * p->half);
  qomni_vk_decoder_rope_table (p->dec, pos, p->G, p->G, cs);
  p->io_codes = p->G;
  p->io_sum = 2 * (gsize) p->G;
  p->io_logits = p->io_sum + p->H;
  p->io_draws = (p->io_logits + p->V + 1) & ~(size_t) 1;   /* doubles: 8-byte aligned */
  /* QOMNI_GPU_SAMPLING=0: each pass's logits to the CPU's sampler, for comparison */
  p->gpu_sampling = g_strcmp0 (g_getenv ("QOMNI_GPU_SAMPLING"), "0") != 0;
  struct { QomniVkBuffer **b; uint64_t words; QomniVkMem mem; const char *what; } bufs[] = {
    { &p->cs, 2 * (uint64_t) p->G * p->half, QOMNI_VK_MEM_DEVICE, "code predictor rope" },
    { &p->logits, p->V, QOMNI_VK_MEM_DEVICE, "code predictor logits" },
    { &p->codes, p->G, QOMNI_VK_MEM_DEVICE, "code predictor codes" },
    { &p->sum, p->H, QOMNI_VK_MEM_DEVICE, "code embedding sum" },
    { &p->io, p->io_draws + 2 * (uint64_t) p->G, QOMNI_VK_MEM_HOST, "code predictor in/out" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bufs); i++) {
    *bufs[i].b = qomni_vk_buffer_new (vk, 4 * bufs[i].words, bufs[i].mem, bufs[i].what, error);
    if (!*bufs[i].b)
      goto fail;
  }
  if (!qomni_vk_upload (vk, p->cs, 0, cs, sizeof (float) * 2 * p->G * p->half, error))
    goto fail;
  return p;
fail:
  qomni_vk_code_predictor_free (p);
  return NULL;
}

void
qomni_vk_code_predictor_free (QomniVkCodePredictor *p)
{
  if (!p)
    return;
  g_clear_pointer (&p->frame, qomni_vk_cmd_abandon);
  QomniVkBuffer *bs[] = { p->cs, p->logits, p->codes, p->sum, p->io };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++)
    qomni_vk_buffer_free (p->vk, bs[i]);
  qomni_vk_decoder_free (p->dec);
  g_free (p);
}

double
qomni_vk_code_predictor_frame_bytes (const QomniVkCodePredictor *p)
{
  /* the heads and tables are the stack's weights too, but a pass reads one row of a table
   * and a whole head: count the heads */
  return (p->G - 1) * (qomni_vk_decoder_step_bytes (p->dec)
                       + 2.0 * p->V * p->H /* bf16 head */);
}

/* sum += x row 0 */
static void
rec_add_row (QomniVkCodePredictor *p, QomniVkCmd *c)
{
  QomniVkEltPush ap = { .n = p->H };
  QomniVkBind b[] = { { qomni_vk_decoder_x (p->dec) }, { p->sum } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_ADD, b, 2, &ap, sizeof ap, (p->H + 255) / 256, 1, 1);
}

void
qomni_vk_code_predictor_set_gpu_sampling (QomniVkCodePredictor *p, gboolean on)
{
  p->gpu_sampling = on;
}

void
qomni_vk_code_predictor_timing (const QomniVkCodePredictor *p, double *record_s,
                                double *submit_s)
{
  *record_s = p->t_record * 1e-6;
  *submit_s = p->t_submit * 1e-6;
}

/* Submits and waits; the time since *t0 counts as recording, the rest as submission. */
static gboolean
timed_submit (QomniVkCodePredictor *p, QomniVkCmd *c, gint64 *t0, GError **error)
{
  const gint64 t1 = g_get_monotonic_time ();
  const gboolean ok = qomni_vk_cmd_submit (c, error);
  const gint64 t2 = g_get_monotonic_time ();
  p->t_record += t1 - *t0;
  p->t_submit += t2 - t1;
  *t0 = t2;
  return ok;
}

/* Rows [z, C(c0)] at positions 0, 1 (c0 read from io[0] when the command runs); the sum
 * starts at C(c0). */
static gboolean
rec_prefill (QomniVkCodePredictor *p, QomniVkCmd *c, QomniVkDecoder *talker, int z_row,
             GError **error)
{
  const int H = p->H;
  QomniVkBuffer *x = qomni_vk_decoder_x (p->dec);
  /* fresh cache every frame (pitfall 21) */
  qomni_vk_decoder_reset (p->dec);
  qomni_vk_cmd_copy (c, qomni_vk_decoder_x (talker), 4 * (uint64_t) z_row * H, x, 0,
                     4 * (uint64_t) H);
  qomni_vk_decoder_record_embed (talker, c, 0, p->io, 0, 1, x, H);
  qomni_vk_cmd_copy (c, x, 4 * (uint64_t) H, p->sum, 0, 4 * (uint64_t) H);
  return qomni_vk_decoder_record (p->dec, c, 2, p->cs, 0, p->G * p->half, error);
}

typedef enum {
  PICK_ARGMAX,   /* greedy on the GPU */
  PICK_SAMPLE,   /* SAMPLE_PICK on the GPU, the draw from io */
  PICK_CPU,      /* logits to io for the CPU's sampler */
} Pick;

/* Whether SAMPLE_PICK can make this sampler's picks: doubles on the device, the vocabulary
 * and the effective top-k within the shader's shared arrays. */
static gboolean
can_pick_on_gpu (const QomniVkCodePredictor *p, const QomniSamplerParams *sp)
{
  const int k = (sp->top_k > 0 && sp->top_k < p->V) ? sp->top_k : p->V;
  return p->gpu_sampling && qomni_vk_has_float64 (p->vk) && p->V <= QOMNI_VK_PICK_MAX_N
         && k <= QOMNI_VK_PICK_MAX_K;
}

/* Pass g (1 … G−1) up to its head: codebook g−1's row (in x row 0) at position g, except
 * for g = 1, whose input is the prefill's last row. On the GPU the pick goes to codes[g]
 * (a sampled one from draw g in io); else the logits go to io for the CPU. */
static gboolean
rec_pass_head (QomniVkCodePredictor *p, QomniVkCmd *c, int g, Pick pick,
               const QomniSamplerParams *sp, GError **error)
{
  if (g > 1 && !qomni_vk_decoder_record (p->dec, c, 1, p->cs, g * p->half, p->G * p->half,
                                         error))
    return FALSE;
  qomni_vk_decoder_record_head (p->dec, c, g - 1, g == 1 ? 1 : 0, p->logits, 0);
  if (pick == PICK_ARGMAX) {
    QomniVkArgmaxPush am = { .n = p->V, .out_off = g };
    QomniVkBind bm[] = { { p->logits }, { p->codes } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_ARGMAX, bm, 2, &am, sizeof am, 1, 1, 1);
  } else if (pick == PICK_SAMPLE) {
    QomniVkPickPush pp = {
      .n = p->V, .k = (sp->top_k > 0 && sp->top_k < p->V) ? sp->top_k : p->V,
      .draw_off = p->io_draws + 2 * g, .out_off = g, .temperature = sp->temperature,
      .top_p = sp->top_p,
    };
    QomniVkBind bp[] = { { p->logits }, { p->io }, { p->codes } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_SAMPLE_PICK, bp, 3, &pp, sizeof pp, 1, 1, 1);
  } else {
    qomni_vk_cmd_copy (c, p->logits, 0, p->io, 4 * (uint64_t) p->io_logits,
                       4 * (uint64_t) p->V);
  }
  return TRUE;
}

/* Codebook g's row through table g−1 (id at ids[g]) into x row 0, the next pass's input,
 * and into the sum. */
static void
rec_pass_embed (QomniVkCodePredictor *p, QomniVkCmd *c, int g, const QomniVkBuffer *ids)
{
  qomni_vk_decoder_record_embed (p->dec, c, g - 1, ids, g, 1, qomni_vk_decoder_x (p->dec), 0);
  rec_add_row (p, c);
}

static void
rec_results (QomniVkCodePredictor *p, QomniVkCmd *c)
{
  qomni_vk_cmd_copy (c, p->codes, 0, p->io, 4 * (uint64_t) p->io_codes, 4 * (uint64_t) p->G);
  qomni_vk_cmd_copy (c, p->sum, 0, p->io, 4 * (uint64_t) p->io_sum, 4 * (uint64_t) p->H);
}

static gboolean
same_params (const QomniSamplerParams *a, const QomniSamplerParams *b)
{
  if ((a->temperature <= 0.0f) != (b->temperature <= 0.0f))
    return FALSE;
  return a->temperature <= 0.0f
         || (a->temperature == b->temperature && a->top_k == b->top_k && a->top_p == b->top_p);
}

/* The frame on the GPU (greedy, or sampled with draws in io) as one reusable command,
 * recorded on first use (and again when the talker stack, its row, profiling or the
 * sampler's parameters change). */
static gboolean
gpu_frame (QomniVkCodePredictor *p, QomniVkDecoder *talker, int z_row,
           const QomniSamplerParams *sp, GError **error)
{
  const gboolean prof = qomni_vk_profile_enabled (p->vk);
  const Pick pick = sp->temperature <= 0.0f ? PICK_ARGMAX : PICK_SAMPLE;
  if (p->frame && (p->frame_talker != talker || p->frame_z_row != z_row
                   || p->frame_profiled != prof || !same_params (&p->frame_params, sp)))
    g_clear_pointer (&p->frame, qomni_vk_cmd_abandon);
  gint64 t0 = g_get_monotonic_time ();
  if (!p->frame) {
    QomniVkCmd *c = qomni_vk_cmd_begin_reusable (p->vk, error);
    if (!c)
      return FALSE;
    gboolean ok = rec_prefill (p, c, talker, z_row, error);
    for (int g = 1; ok && g < p->G; g++) {
      ok = rec_pass_head (p, c, g, pick, sp, error);
      if (ok)
        rec_pass_embed (p, c, g, p->codes);
    }
    if (!ok) {
      qomni_vk_cmd_abandon (c);
      return FALSE;
    }
    rec_results (p, c);
    p->frame = c;
    p->frame_talker = talker;
    p->frame_z_row = z_row;
    p->frame_profiled = prof;
    p->frame_params = *sp;
  }
  if (!timed_submit (p, p->frame, &t0, error)) {
    g_clear_pointer (&p->frame, qomni_vk_cmd_abandon);
    return FALSE;
  }
  return TRUE;
}

gboolean
qomni_vk_code_predictor_run (QomniVkCodePredictor *p, QomniVkDecoder *talker, int z_row, int c0,
                             QomniSampler *sampler, int *codes, float *embed_sum,
                             GError **error)
{
  const QomniSamplerParams *sp = qomni_sampler_params (sampler);
  const gboolean greedy = qomni_sampler_is_greedy (sampler);
  guint32 *io = p->io->map;
  if (c0 < 0 || c0 >= qomni_vk_decoder_vocab (talker)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_INVALID_INPUT,
                 "codebook-0 code %d is outside the talker vocabulary", c0);
    return FALSE;
  }
  io[0] = (guint32) c0;
  if (greedy || can_pick_on_gpu (p, sp)) {
    /* the draws the CPU path would take, in its order: one per pass */
    double *draws = (double *) (io + p->io_draws);
    for (int g = 1; !greedy && g < p->G; g++)
      draws[g] = qomni_sampler_draw (sampler);
    if (!gpu_frame (p, talker, z_row, sp, error))
      return FALSE;
    for (int g = 1; g < p->G; g++)
      codes[g] = (int) io[p->io_codes + g];
  } else {
    /* each pass's logits to the CPU's sampler, the next pass in a new command */
    gint64 t0 = g_get_monotonic_time ();
    QomniVkCmd *c = qomni_vk_cmd_begin (p->vk, error);
    if (!c)
      return FALSE;
    if (!rec_prefill (p, c, talker, z_row, error)) {
      qomni_vk_cmd_abandon (c);
      return FALSE;
    }
    for (int g = 1; g < p->G; g++) {
      if (!rec_pass_head (p, c, g, PICK_CPU, sp, error)) {
        qomni_vk_cmd_abandon (c);
        return FALSE;
      }
      if (!timed_submit (p, c, &t0, error))
        return FALSE;
      codes[g] = qomni_sampler_pick (sampler, (float *) io + p->io_logits, p->V,
                                     qomni_sampler_draw (sampler));
      io[g] = (guint32) codes[g];
      c = qomni_vk_cmd_begin (p->vk, error);
      if (!c)
        return FALSE;
      rec_pass_embed (p, c, g, p->io);
    }
    rec_results (p, c);
    if (!timed_submit (p, c, &t0, error))
      return FALSE;
  }
  if (embed_sum)
    memcpy (embed_sum, io + p->io_sum, sizeof (float) * p->H);
  return TRUE;
}
