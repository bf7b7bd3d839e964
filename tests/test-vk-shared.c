/* Decoders sharing one upload of their weights (tiny-omni fixture, float32 weights): two
 * thinkers of one store on one QomniVk hold one copy (the device grows by the weights once,
 * plus each one's own KV cache and activations, byte for byte), and the weights' bytes are
 * the store's thinker.model.* and lm_head bytes (within 1%: alignment). Sharing changes no
 * number: the first thinker's greedy tokens are generate.sequences[68:72]; two prompts (the
 * fixture's and its first 60 rows) decoded in alternation on the two, then from two threads
 * at once with the prompts swapped, give exactly (bit for bit) the tokens and last logits
 * of each prompt alone on the first. Freeing one keeps the other
 * working; the last one frees the weights (the device back to where it started). Two
 * threads making thinkers at once upload once. Random weights (no store) are each
 * decoder's own and run. Exit 77 without a device. */
#include "refs.h"
#include "config.h"
#include "error.h"
#include "positions.h"
#include "thinker.h"
#include "thinker-vk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define STEPS 4

static int failures;

static void
expect (gboolean ok, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static void
expect (gboolean ok, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  printf ("%s %s\n", ok ? "ok  " : "FAIL", msg);
  failures += !ok;
}

/* One prompt: rows x[n, H] at positions pos[3, n]. */
typedef struct {
  const float *x;
  const int *pos;
  int n, next_pos;
} Prompt;

/* What a thinker answers to a prompt: the greedy tokens and the logits of the last step. */
typedef struct {
  int tokens[STEPS];
  float *logits;   /* [V] */
} Answer;

static gboolean
prefill (QomniVkThinker *g, const Prompt *p, Answer *a, GError **error)
{
  qomni_vk_thinker_reset (g);
  return qomni_vk_thinker_forward (g, p->x, p->n, p->pos, NULL, NULL, NULL, &a->tokens[0],
                                   error);
}

static gboolean
step (QomniVkThinker *g, const Prompt *p, Answer *a, int i, GError **error)
{
  return qomni_vk_thinker_decode (g, a->tokens[i - 1], p->next_pos + i - 1,
                                  i == STEPS - 1 ? a->logits : NULL, &a->tokens[i], error);
}

static gboolean
answer (QomniVkThinker *g, const Prompt *p, Answer *a, GError **error)
{
  gboolean ok = prefill (g, p, a, error);
  for (int i = 1; ok && i < STEPS; i++)
    ok = step (g, p, a, i, error);
  return ok;
}

static gboolean
same_answer (const Answer *a, const Answer *b, int V)
{
  return memcmp (a->tokens, b->tokens, sizeof a->tokens) == 0
         && memcmp (a->logits, b->logits, sizeof (float) * V) == 0;
}

typedef struct {
  QomniVkThinker *g;
  const Prompt *p;
  Answer a;
  GError *error;
  gboolean ok;
} Job;

static gpointer
answer_thread (gpointer data)
{
  Job *j = data;
  j->ok = answer (j->g, j->p, &j->a, &j->error);
  return NULL;
}

typedef struct {
  QomniVk *vk;
  const QomniWeights *w;
  const QomniTextConfig *tc;
  QomniVkThinker *g;
  GError *error;
} MakeJob;

static gpointer
make_thread (gpointer data)
{
  MakeJob *m = data;
  m->g = qomni_vk_thinker_new (m->vk, m->w, m->tc, QOMNI_DTYPE_F32, 128, 128, &m->error);
  return NULL;
}

static void
sum_thinker_bytes (const QomniTensor *t, gpointer user)
{
  if (g_str_has_prefix (t->name, "thinker.model.") || g_str_equal (t->name,
                                                                    "thinker.lm_head.weight"))
    *(uint64_t *) user += t->nbytes;
}

int
main (void)
{
  GError *error = NULL;
  QomniVk *vk = qomni_vk_new (-1, &error);
  if (!vk) {
    printf ("SKIP: no usable Vulkan device: %s\n", error->message);
    return 77;
  }
  QomniWeights *w = refs_open ("tiny-omni");
  QomniWeights *refs = refs_open ("tiny-omni/refs.safetensors");
  g_autofree char *cfg_path = refs_path ("tiny-omni/config.json");
  QomniConfig *cfg = qomni_config_load (cfg_path, &error);
  g_assert_no_error (error);
  int n, n_seq;
  g_autofree int *ids = refs_ints (refs, "thinker.prompt_ids", &n);
  g_autofree int *seq = refs_ints (refs, "generate.sequences", &n_seq);
  const QomniTextConfig *tc = &cfg->thinker.text;
  const int H = tc->hidden_size, V = tc->vocab_size;

  /* the fixture's prompt (audio rows scattered in) and its first 60 rows */
  QomniThinker *cpu = qomni_thinker_new (w, cfg, 128, &error);
  g_assert_no_error (error);
  g_autofree float *x = g_new (float, (size_t) n * H);
  qomni_thinker_embed (cpu, ids, n, x);
  g_assert_true (qomni_thinker_scatter (cpu, ids, n, cfg->thinker.audio_token_id,
                                        refs_f32 (refs, "audio.embeds", -1), 43, x, &error));
  g_autofree int *pos = g_new (int, 3 * n);
  int next_pos;
  g_assert_true (qomni_positions_build (&cfg->thinker, ids, n, NULL, 0, 0, pos, &next_pos,
                                        &error));
  const int n2 = 60;
  g_assert_true (n2 < n);
  g_autofree int *pos2 = g_new (int, 3 * n2);
  int next2 = 0;
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < n2; i++) {
      pos2[a * n2 + i] = pos[a * n + i];
      next2 = MAX (next2, pos2[a * n2 + i] + 1);
    }
  const Prompt p1 = { x, pos, n, next_pos }, p2 = { x, pos2, n2, next2 };
  Answer alone1 = { .logits = g_new (float, V) }, alone2 = { .logits = g_new (float, V) };
  Answer got1 = { .logits = g_new (float, V) }, got2 = { .logits = g_new (float, V) };
  g_autofree float *logits_r = g_new (float, V);
  uint64_t store_bytes = 0;
  qomni_weights_foreach (w, sum_thinker_bytes, &store_bytes);

  /* one upload for two thinkers (counted once the staging ring of the first upload exists:
   * it lives as long as the device) */
  QomniVkBuffer *probe = qomni_vk_buffer_new (vk, 16, QOMNI_VK_MEM_DEVICE, "probe", &error);
  g_assert_true (probe && qomni_vk_upload (vk, probe, 0, x, 16, &error));
  qomni_vk_buffer_free (vk, probe);
  const uint64_t m0 = qomni_vk_allocated (vk);
  QomniVkThinker *a = qomni_vk_thinker_new (vk, w, tc, QOMNI_DTYPE_F32, 128, 128, &error);
  g_assert_no_error (error);
  const uint64_t m1 = qomni_vk_allocated (vk);
  QomniVkThinker *b = qomni_vk_thinker_new (vk, w, tc, QOMNI_DTYPE_F32, 128, 128, &error);
  g_assert_no_error (error);
  const uint64_t m2 = qomni_vk_allocated (vk);
  const uint64_t wb = qomni_vk_decoder_weight_bytes (a);
  printf ("device memory: first thinker +%" G_GUINT64_FORMAT " B, second +%" G_GUINT64_FORMAT
          " B, weights %" G_GUINT64_FORMAT " B (store: %" G_GUINT64_FORMAT " B)\n",
          m1 - m0, m2 - m1, wb, store_bytes);
  expect (m2 - m1 == m1 - m0 - wb, "the second thinker adds its own state only (%"
          G_GUINT64_FORMAT " = %" G_GUINT64_FORMAT " - %" G_GUINT64_FORMAT ")", m2 - m1,
          m1 - m0, wb);
  expect (wb >= store_bytes && wb <= store_bytes + store_bytes / 100,
          "the shared weights: the store's thinker bytes, within 1%% (alignment)");
  expect (qomni_vk_shared_count (vk) == 1 && qomni_vk_decoder_weight_bytes (b) == wb,
          "one shared object on the device");
  qomni_vk_thinker_set_coopmat (a, FALSE);
  qomni_vk_thinker_set_coopmat (b, FALSE);

  /* each prompt alone, then both in alternation on the two thinkers */
  g_assert_true (answer (a, &p1, &alone1, &error));
  g_assert_true (answer (a, &p2, &alone2, &error));
  int agree = 0;
  for (int i = 0; i < STEPS; i++)
    agree += alone1.tokens[i] == seq[n + i];
  expect (agree == STEPS, "greedy tokens: %d of %d agree with generate.sequences[68:72]",
          agree, STEPS);
  expect (memcmp (alone1.tokens, alone2.tokens, sizeof alone1.tokens) != 0,
          "the two prompts answer differently");
  g_assert_true (prefill (a, &p1, &got1, &error) && prefill (b, &p2, &got2, &error));
  for (int i = 1; i < STEPS; i++)
    g_assert_true (step (a, &p1, &got1, i, &error) && step (b, &p2, &got2, i, &error));
  expect (same_answer (&got1, &alone1, V) && same_answer (&got2, &alone2, V),
          "alternating steps: each thinker's tokens and last logits as alone");

  /* from two threads at once, the prompts swapped: the second thinker answers the first
   * prompt exactly as the first thinker did */
  Job j1 = { .g = a, .p = &p2, .a = { .logits = got2.logits } };
  Job j2 = { .g = b, .p = &p1, .a = { .logits = got1.logits } };
  memset (got1.logits, 0, sizeof (float) * V);
  memset (got2.logits, 0, sizeof (float) * V);
  GThread *t1 = g_thread_new ("thinker a", answer_thread, &j1);
  GThread *t2 = g_thread_new ("thinker b", answer_thread, &j2);
  g_thread_join (t1);
  g_thread_join (t2);
  g_assert_no_error (j1.error);
  g_assert_no_error (j2.error);
  expect (j1.ok && j2.ok && same_answer (&j1.a, &alone2, V) && same_answer (&j2.a, &alone1, V),
          "two threads at once, prompts swapped: tokens and last logits as alone");

  /* freeing one keeps the other's weights */
  qomni_vk_thinker_free (a);
  expect (qomni_vk_allocated (vk) == m1, "freeing one gives back its state only");
  g_assert_true (answer (b, &p2, &got2, &error));
  expect (same_answer (&got2, &alone2, V), "the other still answers as before");
  qomni_vk_thinker_free (b);
  expect (qomni_vk_allocated (vk) == m0 && qomni_vk_shared_count (vk) == 0,
          "the last one frees the weights");

  /* two threads making thinkers at once: one upload */
  MakeJob mk[2] = { { vk, w, tc }, { vk, w, tc } };
  GThread *mt[2];
  for (int i = 0; i < 2; i++)
    mt[i] = g_thread_new ("make", make_thread, &mk[i]);
  for (int i = 0; i < 2; i++) {
    g_thread_join (mt[i]);
    g_assert_no_error (mk[i].error);
  }
  expect (qomni_vk_allocated (vk) - m0 == 2 * (m1 - m0) - wb && qomni_vk_shared_count (vk) == 1,
          "two thinkers made at once from two threads: one upload");
  for (int i = 0; i < 2; i++)
    qomni_vk_thinker_free (mk[i].g);

  /* another store (the same files opened again) is another upload: a store is named by its
   * serial, not its path or address */
  QomniWeights *w2 = refs_open ("tiny-omni");
  a = qomni_vk_thinker_new (vk, w, tc, QOMNI_DTYPE_F32, 128, 128, &error);
  g_assert_no_error (error);
  b = qomni_vk_thinker_new (vk, w2, tc, QOMNI_DTYPE_F32, 128, 128, &error);
  g_assert_no_error (error);
  expect (qomni_vk_shared_count (vk) == 2, "two stores, two uploads");
  qomni_vk_thinker_free (a);
  qomni_vk_thinker_free (b);
  qomni_weights_free (w2);

  /* random weights are each decoder's own */
  a = qomni_vk_thinker_new (vk, NULL, tc, QOMNI_DTYPE_BF16, 128, 16, &error);
  g_assert_no_error (error);
  const uint64_t r1 = qomni_vk_allocated (vk);
  b = qomni_vk_thinker_new (vk, NULL, tc, QOMNI_DTYPE_BF16, 128, 16, &error);
  g_assert_no_error (error);
  const uint64_t r2 = qomni_vk_allocated (vk);
  expect (r2 - r1 == r1 - m0 && qomni_vk_shared_count (vk) == 0,
          "random weights: each thinker makes its own");
  gboolean finite = TRUE;
  for (int k = 0; k < 2; k++) {
    int next_r = -1;
    g_assert_true (qomni_vk_thinker_decode (k ? b : a, 1, 0, logits_r, &next_r, &error));
    for (int i = 0; i < V; i++)
      finite &= isfinite (logits_r[i]);
    finite &= next_r >= 0 && next_r < V;
  }
  expect (finite, "random weights: finite logits and a token from each");
  qomni_vk_thinker_free (a);
  qomni_vk_thinker_free (b);
  expect (qomni_vk_allocated (vk) == m0, "everything given back");

  printf ("%s\n", failures ? "FAILED" : "all passed");
  g_free (alone1.logits);
  g_free (alone2.logits);
  g_free (got1.logits);
  g_free (got2.logits);
  qomni_thinker_free (cpu);
  qomni_config_free (cfg);
  qomni_weights_free (refs);
  qomni_weights_free (w);
  qomni_vk_free (vk);
  return failures ? 1 : 0;
}
