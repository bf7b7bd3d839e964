/* qomni — sampling. */
#include "sampler.h"

#include <math.h>

struct _QomniSampler {
  QomniSamplerParams p;
  GRand *rng;
  int *order;       /* [order_len] ids by logit */
  float *probs;     /* [order_len] */
  guint8 *seen;     /* [order_len] ids already penalised in this draw; all 0 between draws */
  int order_len;
};

static void
seed_rng (QomniSampler *s, guint64 seed)
{
  guint32 words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  if (s->rng)
    g_rand_set_seed_array (s->rng, words, 2);
  else
    s->rng = g_rand_new_with_seed_array (words, 2);
}

QomniSampler *
qomni_sampler_new (const QomniSamplerParams *params)
{
  QomniSampler *s = g_new0 (QomniSampler, 1);
  s->p = *params;
  seed_rng (s, params->seed);
  return s;
}

void
qomni_sampler_free (QomniSampler *s)
{
  if (!s)
    return;
  g_rand_free (s->rng);
  g_free (s->order);
  g_free (s->probs);
  g_free (s->seen);
  g_free (s);
}

void
qomni_sampler_reseed (QomniSampler *s, guint64 seed)
{
  seed_rng (s, seed);
}

gboolean
qomni_sampler_is_greedy (const QomniSampler *s)
{
  return s->p.temperature <= 0.0f;
}

static int
by_logit_desc (gconstpointer a, gconstpointer b, gpointer keys)
{
  const float *l = keys;
  float x = l[*(const int *) a], y = l[*(const int *) b];
  if (x != y)
    return x < y ? 1 : -1;
  return *(const int *) a - *(const int *) b;
}

/* The order top-k ranks by: a above b when its logit is larger, or equal with a lower id
 * (by_logit_desc's order, so ties at the k-th place keep the lowest ids, which the GPU's
 * pick shader reproduces). */
static inline gboolean
ranks_below (const float *l, int a, int b)
{
  return l[a] < l[b] || (l[a] == l[b] && a > b);
}

/* Moves the k largest logits' ids to order[0..k) (unsorted) with a min-heap: O(n log k),
 * so top-k 50 over 152k logits costs far less than a full sort. */
static void
select_top (const float *l, int n, int k, int *order)
{
  int size = 0;
  for (int i = 0; i < n; i++) {
    /* i is the highest id so far: a tie with the heap's least loses */
    if (size == k && l[i] <= l[order[0]])
      continue;
    int at;
    if (size < k) {
      at = size++;
      while (at > 0 && ranks_below (l, i, order[(at - 1) / 2])) {
        order[at] = order[(at - 1) / 2];
        at = (at - 1) / 2;
      }
    } else {
      at = 0;
      for (;;) {
        int c = 2 * at + 1;
        if (c >= size)
          break;
        if (c + 1 < size && ranks_below (l, order[c + 1], order[c]))
          c++;
        if (!ranks_below (l, order[c], i))
          break;
        order[at] = order[c];
        at = c;
      }
    }
    order[at] = i;
  }
}

const QomniSamplerParams *
qomni_sampler_params (const QomniSampler *s)
{
  return &s->p;
}

double
qomni_sampler_draw (QomniSampler *s)
{
  return g_rand_double (s->rng);
}

static void
ensure_scratch (QomniSampler *s, int n)
{
  if (s->order_len >= n)
    return;
  /* scratch grows once to the vocabulary size; draws allocate nothing after that */
  g_free (s->order);
  g_free (s->probs);
  g_free (s->seen);
  s->order = g_new (int, n);
  s->probs = g_new (float, n);
  s->seen = g_new0 (guint8, n);
  s->order_len = n;
}

int
qomni_sampler_pick (QomniSampler *s, float *logits, int n, double u)
{
  const QomniSamplerParams *p = &s->p;
  if (p->temperature <= 0.0f) {
    int best = 0;
    for (int i = 1; i < n; i++)
      if (logits[i] > logits[best])
        best = i;
    return best;
  }
  ensure_scratch (s, n);
  for (int i = 0; i < n; i++)
    logits[i] /= p->temperature;
  int *order = s->order;
  int k = (p->top_k > 0 && p->top_k < n) ? p->top_k : n;
  if (k < n) {
    select_top (logits, n, k, order);
  } else {
    for (int i = 0; i < n; i++)
      order[i] = i;
  }
  g_qsort_with_data (order, k, sizeof (int), by_logit_desc, logits);
  const float max = logits[order[0]];
  double sum = 0.0;
  float *probs = s->probs;
  for (int i = 0; i < k; i++) {
    probs[i] = expf (logits[order[i]] - max);
    sum += probs[i];
  }
  int keep_n = k;
  if (p->top_p < 1.0f) {
    /* Keep the smallest prefix whose mass reaches top_p (at least one token). */
    double cum = 0.0;
    for (int i = 0; i < k; i++) {
      cum += probs[i] / sum;
      if (cum >= p->top_p) {
        keep_n = i + 1;
        break;
      }
    }
  }
  double kept = 0.0;
  for (int i = 0; i < keep_n; i++)
    kept += probs[i];
  double r = u * kept;
  int pick = order[keep_n - 1];
  for (int i = 0; i < keep_n; i++) {
    r -= probs[i];
    if (r < 0) {
      pick = order[i];
      break;
    }
  }
  return pick;
}

int
qomni_sampler_sample (QomniSampler *s, float *logits, int n, const int *history, int n_history,
                      int suppress_from, int suppress_to, int keep)
{
  const QomniSamplerParams *p = &s->p;
  ensure_scratch (s, n);
  if (p->repetition_penalty != 1.0f) {
    /* HF: each distinct id seen is penalised once. */
    for (int i = 0; i < n_history; i++) {
      const int id = history[i];
      if (id < 0 || id >= n || s->seen[id])
        continue;
      s->seen[id] = 1;
      logits[id] = logits[id] > 0 ? logits[id] / p->repetition_penalty
                                  : logits[id] * p->repetition_penalty;
    }
    for (int i = 0; i < n_history; i++)
      if (history[i] >= 0 && history[i] < n)
        s->seen[history[i]] = 0;
  }
  for (int i = MAX (suppress_from, 0); i < MIN (suppress_to, n); i++)
    if (i != keep)
      logits[i] = -INFINITY;
  /* greedy consumes no draw */
  return qomni_sampler_pick (s, logits, n, p->temperature <= 0.0f ? 0.0 : qomni_sampler_draw (s));
}
