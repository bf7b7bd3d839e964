/* qomni — the pieces the Vulkan encoders share (see encoder-vk.h). */
#include "encoder-vk.h"
#include "attention-vk.h"
#include "error.h"
#include "vk-ops.h"

#include <math.h>
#include <stdarg.h>

gboolean
qomni_vk_mat_new (QomniVk *vk, QomniVkMat *m, const QomniTensor *const *parts, int n_parts,
                  int rows, int cols, QomniDType random_dtype, guint32 seed, const char *what,
                  GError **error)
{
  m->rows = rows;
  m->cols = cols;
  m->dtype = parts ? parts[0]->dtype : random_dtype;
  for (int i = 1; parts && i < n_parts; i++)
    if (parts[i]->dtype != m->dtype) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "%s: %s is %s but %s is %s; the GPU path stacks them and needs one dtype",
                   what, parts[0]->name, qomni_dtype_info (parts[0]->dtype)->name,
                   parts[i]->name, qomni_dtype_info (parts[i]->dtype)->name);
      return FALSE;
    }
  if (qomni_vk_pipe_for_dtype (QOMNI_VK_PIPE_MATMUL_F32, m->dtype) < 0
      || (!parts && m->dtype != QOMNI_DTYPE_F32 && m->dtype != QOMNI_DTYPE_BF16)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "%s: no GPU kernel for %s", what,
                 qomni_dtype_info (m->dtype)->name);
    return FALSE;
  }
  const uint64_t bytes = qomni_dtype_nbytes (m->dtype, (int64_t) rows * cols);
  /* The encoders' largest matrix (a merger's [4608, 4608]) is 42 MB in bf16: one binding
   * covers it even on lavapipe (128 MiB), so no row splitting as the thinker needs. */
  if (bytes > qomni_vk_max_range (vk)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: %" G_GUINT64_FORMAT " bytes exceed what one binding of %s covers (%"
                 G_GUINT64_FORMAT ")", what, bytes, qomni_vk_device_name (vk),
                 qomni_vk_max_range (vk));
    return FALSE;
  }
  m->buf = qomni_vk_buffer_new (vk, (bytes + 15) & ~(uint64_t) 15, QOMNI_VK_MEM_DEVICE, what,
                                error);
  if (!m->buf)
    return FALSE;
  if (!parts) {
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
    if (!c)
      return FALSE;
    /* uniform on ±√(3/cols): variance 1/cols keeps activations of order one */
    QomniVkFillPush p = { .n_words = (uint32_t) ((bytes + 3) / 4), .seed = seed,
                          .mode = m->dtype == QOMNI_DTYPE_BF16 ? 0 : 1,
                          .scale = sqrtf (3.0f / (float) cols) };
    QomniVkBind b[] = { { m->buf } };
    qomni_vk_dispatch (c, QOMNI_VK_PIPE_FILL_RANDOM, b, 1, &p, sizeof p, 8192, 1, 1);
    return qomni_vk_cmd_submit (c, error);
  }
  uint64_t off = 0;
  for (int i = 0; i < n_parts; i++) {
    if (off + parts[i]->nbytes > bytes) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_MISMATCH,
                   "%s: the parts hold more than [%d, %d]", what, rows, cols);
      return FALSE;
    }
    if (!qomni_vk_upload (vk, m->buf, off, parts[i]->data, parts[i]->nbytes, error))
      return FALSE;
    off += parts[i]->nbytes;
  }
  return TRUE;
}

gboolean
qomni_vk_mat_load (QomniVk *vk, QomniVkMat *m, const QomniWeights *w, int rows, int cols,
                   QomniDType rdt, guint32 seed, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const QomniTensor *t = NULL;
  if (w && !(t = qomni_weights_get (w, error, 2, (int64_t[]) { rows, cols }, "%s", name)))
    return FALSE;
  /* the name outlives the call only as the buffer's label: a static one */
  return qomni_vk_mat_new (vk, m, w ? &t : NULL, 1, rows, cols, rdt, seed,
                           w ? t->name : "random weight", error);
}

void
qomni_vk_mat_clear (QomniVk *vk, QomniVkMat *m)
{
  qomni_vk_buffer_free (vk, m->buf);
  m->buf = NULL;
}

gboolean
qomni_vk_host_ensure (QomniVk *vk, QomniVkBuffer **b, uint64_t bytes, const char *what,
                      GError **error)
{
  if (*b && (*b)->size >= bytes)
    return TRUE;
  qomni_vk_buffer_free (vk, *b);
  *b = qomni_vk_buffer_new (vk, MAX (bytes, 16), QOMNI_VK_MEM_HOST, what, error);
  return *b != NULL;
}

int
qomni_vk_vecs_add (GArray *vecs, const QomniWeights *w, int64_t len, float fill,
                   GError **error, const char *fmt, ...)
{
  const int off = (int) vecs->len;
  if (!w) {
    for (int64_t i = 0; i < len; i++)
      g_array_append_val (vecs, fill);
    return off;
  }
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_autofree float *v = qomni_weights_get_f32 (w, error, len, "%s", name);
  if (!v)
    return -1;
  g_array_append_vals (vecs, v, (guint) len);
  return off;
}

QomniVkBuffer *
qomni_vk_vecs_upload (QomniVk *vk, GArray *vecs, GError **error)
{
  const size_t bytes = sizeof (float) * MAX (vecs->len, 1);
  QomniVkBuffer *b = qomni_vk_buffer_new (vk, (bytes + 15) & ~(size_t) 15, QOMNI_VK_MEM_DEVICE,
                                          "biases and norm gains", error);
  if (b && vecs->len && !qomni_vk_upload (vk, b, 0, vecs->data, bytes, error)) {
    qomni_vk_buffer_free (vk, b);
    return NULL;
  }
  return b;
}

void
qomni_vk_rec_linear (QomniVkCmd *c, const QomniVkMat *w, const QomniVkBuffer *x,
                     uint32_t x_off, uint32_t x_stride, const QomniVkBuffer *y, uint32_t y_off,
                     uint32_t y_stride, int n, gboolean acc, const QomniVkBuffer *vecs,
                     int b_off, int act, const QomniVkBuffer *scratch)
{
  if (n <= 0)
    return;
  /* the bias and GELU ride in the product's last pass */
  QomniVkMatmulArgs a = { .w = { w->buf }, .dtype = w->dtype, .rows = w->rows,
                          .cols = w->cols, .n = n, .x = x, .x_off = x_off,
                          .x_stride = x_stride, .y = y, .y_off = y_off, .y_stride = y_stride,
                          .acc = acc, .bias = b_off >= 0 ? vecs : NULL,
                          .b_off = b_off >= 0 ? (uint32_t) b_off : 0, .act = (uint32_t) act,
                          .scratch = scratch };
  qomni_vk_rec_matmul (c, &a);
}

void
qomni_vk_rec_layernorm (QomniVkCmd *c, const QomniVkBuffer *x, uint32_t x_stride,
                        const QomniVkBuffer *y, uint32_t y_stride, int n, int dim,
                        const QomniVkBuffer *vecs, int w_off, int b_off, float eps)
{
  QomniVkNormPush p = { .n = n, .dim = dim, .x_stride = x_stride, .y_stride = y_stride,
                        .w_off = w_off, .b_off = b_off, .flags = 3, .eps = eps };
  QomniVkBind b[] = { { x }, { y }, { vecs }, { vecs } };
  qomni_vk_dispatch (c, QOMNI_VK_PIPE_LAYERNORM, b, 4, &p, sizeof p, MIN (n, 65535),
                     (n + 65534) / 65535, 1);
}

uint64_t
qomni_vk_enc_scratch_floats (const QomniVkEncShape *s, int rows)
{
  const uint32_t D = (uint32_t) s->D, FF = (uint32_t) s->FF, n = (uint32_t) MAX (rows, 1);
  const uint64_t v[] = { qomni_vk_matmul_scratch_floats (3 * D, D, n),
                         qomni_vk_matmul_scratch_floats (D, D, n),
                         qomni_vk_matmul_scratch_floats (FF, D, n),
                         qomni_vk_matmul_scratch_floats (D, FF, n) };
  uint64_t most = 0;
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    most = MAX (most, v[i]);
  return most;
}

gboolean
qomni_vk_enc_acts_new (QomniVk *vk, QomniVkEncActs *a, const QomniVkEncShape *s, int rows,
                       GError **error)
{
  a->rows = rows;
  struct { QomniVkBuffer **b; uint64_t floats; const char *what; } acts[] = {
    { &a->x, (uint64_t) rows * s->D, "encoder states" },
    { &a->xn, (uint64_t) rows * s->D, "encoder normed states" },
    { &a->att, (uint64_t) rows * s->D, "encoder attention output" },
    { &a->qkv, (uint64_t) rows * 3 * s->D, "encoder q/k/v" },
    { &a->ff, (uint64_t) rows * s->FF, "encoder MLP activations" },
    { &a->scratch, qomni_vk_enc_scratch_floats (s, rows), "encoder matmul partials" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (acts); i++) {
    /* each is bound whole: one binding must cover it */
    if (4 * acts[i].floats > qomni_vk_max_range (vk)) {
      g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                   "%d rows need %" G_GUINT64_FORMAT " bytes of %s, more than one binding of "
                   "%s covers (%" G_GUINT64_FORMAT "); encode less at once", rows,
                   4 * acts[i].floats, acts[i].what, qomni_vk_device_name (vk),
                   qomni_vk_max_range (vk));
      return FALSE;
    }
    *acts[i].b = qomni_vk_buffer_new (vk, 4 * MAX (acts[i].floats, 4), QOMNI_VK_MEM_DEVICE,
                                      acts[i].what, error);
    if (!*acts[i].b)
      return FALSE;
  }
  return TRUE;
}

void
qomni_vk_enc_acts_clear (QomniVk *vk, QomniVkEncActs *a)
{
  QomniVkBuffer **bs[] = { &a->x, &a->xn, &a->att, &a->qkv, &a->ff, &a->scratch };
  for (guint i = 0; i < G_N_ELEMENTS (bs); i++) {
    qomni_vk_buffer_free (vk, *bs[i]);
    *bs[i] = NULL;
  }
}

void
qomni_vk_enc_block_record (QomniVkCmd *c, const QomniVkEncBlock *b, const QomniVkBuffer *vecs,
                           const QomniVkEncShape *s, const QomniVkEncActs *a, int n, int block,
                           const QomniVkBuffer *rope, uint32_t cs_off, uint32_t sin_off)
{
  const int D = s->D, D3 = 3 * D;
  g_assert (n <= a->rows);
  /* x = x + o(attention(LN1(x))) */
  qomni_vk_rec_layernorm (c, a->x, D, a->xn, D, n, D, vecs, b->ln1_w, b->ln1_b, s->eps);
  qomni_vk_rec_linear (c, &b->qkv, a->xn, 0, D, a->qkv, 0, D3, n, FALSE, vecs, b->qkv_b,
                       QOMNI_VK_ACT_NONE, a->scratch);
  if (rope) {
    /* q then k, rotated in place inside the [q | k | v] rows */
    for (int part = 0; part < 2; part++) {
      QomniVkRopePush rp = { .n = n, .heads = s->nh, .hd = s->hd, .x_off = part * D,
                             .x_stride = D3, .y_off = part * D, .y_stride = D3,
                             .cs_off = cs_off, .sin_off = sin_off };
      QomniVkBind br[] = { { a->qkv }, { a->qkv }, { rope }, { vecs } };
      qomni_vk_dispatch (c, QOMNI_VK_PIPE_ROPE, br, 4, &rp, sizeof rp, s->nh, n, 1);
    }
  }
  QomniVkAttnPush ap = { .n = n, .m = n, .nh = s->nh, .nkv = s->nh, .hd = s->hd,
                         .q_stride = D3, .k_off = D, .v_off = 2 * D, .kv_stride = D3,
                         .o_stride = D, .scale = 1.0f / sqrtf ((float) s->hd),
                         .block = block };
  qomni_vk_rec_attention (c, &ap, a->qkv, a->qkv, a->qkv, a->att);
  qomni_vk_rec_linear (c, &b->o, a->att, 0, D, a->x, 0, D, n, TRUE, vecs, b->o_b,
                       QOMNI_VK_ACT_NONE, a->scratch);
  /* x = x + fc2(GELU(fc1(LN2(x)))) */
  qomni_vk_rec_layernorm (c, a->x, D, a->xn, D, n, D, vecs, b->ln2_w, b->ln2_b, s->eps);
  qomni_vk_rec_linear (c, &b->fc1, a->xn, 0, D, a->ff, 0, s->FF, n, FALSE, vecs, b->fc1_b,
                       s->act, a->scratch);
  qomni_vk_rec_linear (c, &b->fc2, a->ff, 0, s->FF, a->x, 0, D, n, TRUE, vecs, b->fc2_b,
                       QOMNI_VK_ACT_NONE, a->scratch);
}

void
qomni_vk_enc_block_clear (QomniVk *vk, QomniVkEncBlock *b)
{
  qomni_vk_mat_clear (vk, &b->qkv);
  qomni_vk_mat_clear (vk, &b->o);
  qomni_vk_mat_clear (vk, &b->fc1);
  qomni_vk_mat_clear (vk, &b->fc2);
}
