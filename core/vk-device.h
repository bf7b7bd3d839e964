/* qomni — the Vulkan device layer: one device, one compute queue, buffers by lifetime,
 * a table of compute pipelines and one dispatch function that checks every call
 * against the pipeline's declaration.
 *
 *   GError *error = NULL;
 *   QomniVk *vk = qomni_vk_new (-1, &error);          // -1: QOMNI_VULKAN_DEVICE or auto
 *   QomniVkBuffer *w = qomni_vk_buffer_new (vk, bytes, QOMNI_VK_MEM_DEVICE, "wq", &error);
 *   qomni_vk_upload (vk, w, 0, host_bytes, bytes, &error);   // through the staging ring
 *   QomniVkCmd *cmd = qomni_vk_cmd_begin (vk, &error);
 *   qomni_vk_dispatch (cmd, QOMNI_VK_PIPE_MATVEC_BF16, binds, 4, &push, sizeof push, gx, 1, 1);
 *   qomni_vk_cmd_submit (cmd, &error);                 // submits once, waits for the fence
 *   qomni_vk_buffer_free (vk, w);
 *   qomni_vk_free (vk);
 *
 * Shaders read every weight dtype through 32-bit words, so the only features they
 * strictly need are Vulkan 1.1 compute, subgroup arithmetic and shuffles and push
 * descriptors; 16/8-bit storage, fp16/int8 arithmetic, subgroup size control and
 * VK_NV_cooperative_matrix are enabled when the device has them, for the kernels that will
 * use them.
 *
 * Threads: buffers and pipelines may be created from any thread; a QomniVkCmd belongs to
 * the thread that began it; submission is serialized by the device's queue lock.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#ifdef QOMNI_HAVE_VULKAN
#include <vulkan/vulkan.h>
#endif

G_BEGIN_DECLS

typedef struct _QomniVk QomniVk;
typedef struct _QomniVkCmd QomniVkCmd;

typedef enum {
  QOMNI_VK_MEM_DEVICE,   /* device-local: weights, activations, KV cache */
  QOMNI_VK_MEM_HOST,     /* host-visible, coherent, mapped: step inputs, read-back */
} QomniVkMem;

typedef struct {
#ifdef QOMNI_HAVE_VULKAN
  VkBuffer buffer;
  VkDeviceMemory memory;
#endif
  uint64_t size;
  uint64_t alloc_size;   /* what the device took, alignment included */
  void *map;             /* mapped pointer for QOMNI_VK_MEM_HOST, else NULL */
  const char *what;      /* a static name for error messages and leaks */
} QomniVkBuffer;

/* One binding of a dispatch: a range of a buffer. range 0 means "to the end". */
typedef struct {
  const QomniVkBuffer *buf;
  uint64_t offset;
  uint64_t range;
} QomniVkBind;

/* The pipelines. Their declarations (shader, bindings, push-constant size,
 * specialization constants) are one table in vk-device.c. */
typedef enum {
  QOMNI_VK_PIPE_MATVEC_F32,
  QOMNI_VK_PIPE_MATVEC_F16,
  QOMNI_VK_PIPE_MATVEC_BF16,
  QOMNI_VK_PIPE_MATVEC_Q8_0,
  QOMNI_VK_PIPE_MATVEC_Q4_0,
  QOMNI_VK_PIPE_SWIGLU_F32,     /* matvec over stacked [gate; up] rows, silu(g)·u out */
  QOMNI_VK_PIPE_SWIGLU_F16,
  QOMNI_VK_PIPE_SWIGLU_BF16,
  QOMNI_VK_PIPE_SWIGLU_Q8_0,
  QOMNI_VK_PIPE_SWIGLU_Q4_0,
  QOMNI_VK_PIPE_MATMUL_F32,
  QOMNI_VK_PIPE_MATMUL_F16,
  QOMNI_VK_PIPE_MATMUL_BF16,
  QOMNI_VK_PIPE_MATMUL_Q8_0,
  QOMNI_VK_PIPE_MATMUL_Q4_0,
  QOMNI_VK_PIPE_MATMUL_WIDE_F32,    /* the same with 128 × 128 tiles (8 × 8 per thread) */
  QOMNI_VK_PIPE_MATMUL_WIDE_F16,
  QOMNI_VK_PIPE_MATMUL_WIDE_BF16,
  QOMNI_VK_PIPE_MATMUL_WIDE_Q8_0,
  QOMNI_VK_PIPE_MATMUL_WIDE_Q4_0,
  QOMNI_VK_PIPE_MATMUL_NARROW_F32,  /* 64 × 16 tiles, for ≤ 16 token rows */
  QOMNI_VK_PIPE_MATMUL_NARROW_F16,
  QOMNI_VK_PIPE_MATMUL_NARROW_BF16,
  QOMNI_VK_PIPE_MATMUL_NARROW_Q8_0,
  QOMNI_VK_PIPE_MATMUL_NARROW_Q4_0,
  QOMNI_VK_PIPE_EMBED_F32,
  QOMNI_VK_PIPE_EMBED_F16,
  QOMNI_VK_PIPE_EMBED_BF16,
  QOMNI_VK_PIPE_EMBED_Q8_0,
  QOMNI_VK_PIPE_EMBED_Q4_0,
  QOMNI_VK_PIPE_MOE_MATMUL_F32,  /* grouped expert product of a prefill (moe_group's order) */
  QOMNI_VK_PIPE_MOE_MATMUL_F16,
  QOMNI_VK_PIPE_MOE_MATMUL_BF16,
  QOMNI_VK_PIPE_MOE_MATMUL_Q8_0,
  QOMNI_VK_PIPE_MOE_MATMUL_Q4_0,
  QOMNI_VK_PIPE_MOE_SWIGLU_F32,  /* the same over stacked [gate; up], silu(g)·u out */
  QOMNI_VK_PIPE_MOE_SWIGLU_F16,
  QOMNI_VK_PIPE_MOE_SWIGLU_BF16,
  QOMNI_VK_PIPE_MOE_SWIGLU_Q8_0,
  QOMNI_VK_PIPE_MOE_SWIGLU_Q4_0,
  QOMNI_VK_PIPE_MOE_MATMUL_CM_F32,  /* the same two on tensor cores (qomni_vk_has_coopmat) */
  QOMNI_VK_PIPE_MOE_MATMUL_CM_F16,
  QOMNI_VK_PIPE_MOE_MATMUL_CM_BF16,
  QOMNI_VK_PIPE_MOE_MATMUL_CM_Q8_0,
  QOMNI_VK_PIPE_MOE_MATMUL_CM_Q4_0,
  QOMNI_VK_PIPE_MOE_SWIGLU_CM_F32,
  QOMNI_VK_PIPE_MOE_SWIGLU_CM_F16,
  QOMNI_VK_PIPE_MOE_SWIGLU_CM_BF16,
  QOMNI_VK_PIPE_MOE_SWIGLU_CM_Q8_0,
  QOMNI_VK_PIPE_MOE_SWIGLU_CM_Q4_0,
  QOMNI_VK_PIPE_RMSNORM,
  QOMNI_VK_PIPE_LAYERNORM,
  QOMNI_VK_PIPE_SOFTMAX,
  QOMNI_VK_PIPE_ROPE,           /* optional per-head RMSNorm, then rotate-half RoPE */
  QOMNI_VK_PIPE_ROPE_QKV,       /* rope of q and k heads, k and v into the caches, at once */
  QOMNI_VK_PIPE_ATTENTION,     /* one workgroup per (head, row); decode and hd > 128 */
  QOMNI_VK_PIPE_ATTN_TILED,     /* prompts: flash attention over tiles of 32 (row, head) */
  QOMNI_VK_PIPE_ATTN_SPLIT,     /* flash-decoding: chunks of the keys → partial buffer */
  QOMNI_VK_PIPE_ATTN_COMBINE,   /* merges the chunks */
  QOMNI_VK_PIPE_SILU_MUL,
  QOMNI_VK_PIPE_GELU,
  QOMNI_VK_PIPE_GELU_TANH,
  QOMNI_VK_PIPE_ADD,
  QOMNI_VK_PIPE_SCALE,
  QOMNI_VK_PIPE_MOE_TOPK,
  QOMNI_VK_PIPE_MOE_COMBINE,
  QOMNI_VK_PIPE_MOE_GROUP,       /* (token, slot) pairs grouped by expert, for MOE_MATMUL */
  QOMNI_VK_PIPE_ARGMAX,
  QOMNI_VK_PIPE_SAMPLE_PICK,    /* a sampled token from logits and a CPU draw (sampler.c) */
  QOMNI_VK_PIPE_FILL_RANDOM,
  QOMNI_VK_PIPE_CONV1D_F32,     /* causal conv as an implicit-im2col product (Code2Wav) */
  QOMNI_VK_PIPE_CONV1D_F16,
  QOMNI_VK_PIPE_CONV1D_BF16,
  QOMNI_VK_PIPE_CONV1D_T_F32,   /* causal transposed conv, trimmed as CausalTransConv1d */
  QOMNI_VK_PIPE_CONV1D_T_F16,
  QOMNI_VK_PIPE_CONV1D_T_BF16,
  QOMNI_VK_PIPE_CONV1D_N_F32,   /* the same two with 16 × 256 tiles, for ≤ 32 channels */
  QOMNI_VK_PIPE_CONV1D_N_F16,
  QOMNI_VK_PIPE_CONV1D_N_BF16,
  QOMNI_VK_PIPE_CONV1D_TN_F32,
  QOMNI_VK_PIPE_CONV1D_TN_F16,
  QOMNI_VK_PIPE_CONV1D_TN_BF16,
  QOMNI_VK_PIPE_EMBED_MEAN_F32, /* mean of one row per codebook */
  QOMNI_VK_PIPE_EMBED_MEAN_F16,
  QOMNI_VK_PIPE_EMBED_MEAN_BF16,
  QOMNI_VK_PIPE_DWCONV1D,       /* depthwise causal conv, f32 weights */
  QOMNI_VK_PIPE_SNAKE,          /* SnakeBeta */
  QOMNI_VK_PIPE_SCALE_ADD,      /* x += g ⊙ y per channel (LayerScale) */
  QOMNI_VK_PIPE_FILL_RANDOM_BLOCKS, /* random Q8_0 / Q4_0 blocks */
  QOMNI_VK_PIPE_BIAS_ACT,       /* bias (+ GELU) in place after a matmul */
  QOMNI_VK_PIPE_IM2COL,         /* 3×3 stride-2 convolution input as matmul rows */
  QOMNI_VK_PIPE_MATMUL_REDUCE,  /* sums a split-K matmul's partials (+ bias, act) */
  QOMNI_VK_PIPE_COUNT
} QomniVkPipe;

/* Weight-dtype variant of a family: pipe + the dtype's index in the family, or -1 when
 * the dtype has no variant. Families: MATVEC, SWIGLU, MATMUL(_WIDE, _NARROW), EMBED, MOE_MATMUL,
 * MOE_SWIGLU, MOE_MATMUL_CM, MOE_SWIGLU_CM. */
int qomni_vk_pipe_for_dtype (QomniVkPipe family_f32, int dtype);
/* The same for the float-only families (f32, f16, bf16): CONV1D(_T, _N, _TN), EMBED_MEAN. */
int qomni_vk_pipe_for_float_dtype (QomniVkPipe family_f32, int dtype);
/* The convolution pipeline for a weight dtype, transposed or not, with R output columns
 * (-1 for a dtype without a variant): the narrow tiles for R ≤ 32. *tile_r, *tile_m: its
 * tile, so the grid is (⌈R/tile_r⌉, ⌈M/tile_m⌉). */
int qomni_vk_conv_pipe (int dtype, gboolean transposed, uint32_t R, uint32_t *tile_r,
                        uint32_t *tile_m);

const char *qomni_vk_pipe_name (QomniVkPipe pipe);
/* Specialization constant i of a pipeline (0: workgroup width; matvec 1: rows per group). */
uint32_t qomni_vk_pipe_spec (QomniVkPipe pipe, int i);

/* (transfer full) index < 0: QOMNI_VULKAN_DEVICE=N when set, else the first discrete GPU,
 * else the first device. QOMNI_ERROR_DEVICE when there is no Vulkan or no device,
 * QOMNI_ERROR_UNSUPPORTED when the device lacks what the shaders need. */
QomniVk *qomni_vk_new (int index, GError **error);
#ifdef QOMNI_HAVE_VULKAN
/* (transfer full) Adopts handles someone else created (a media framework's device). The
 * handles stay theirs: qomni_vk_free destroys only what qomni created. The device must
 * have Vulkan 1.1+ and VK_KHR_push_descriptor enabled. */
QomniVk *qomni_vk_new_borrowed (VkInstance instance, VkPhysicalDevice phys, VkDevice device,
                                uint32_t queue_family, GError **error);
#endif
void qomni_vk_free (QomniVk *vk);
/* Warnings and errors the validation layer reported so far (QOMNI_VULKAN_VALIDATION=1);
 * each is also logged with g_warning. */
int qomni_vk_validation_messages (QomniVk *vk);

const char *qomni_vk_device_name (const QomniVk *vk);
/* The largest range one binding may cover (maxStorageBufferRange). */
uint64_t qomni_vk_max_range (const QomniVk *vk);
uint32_t qomni_vk_subgroup_size (const QomniVk *vk);
/* Whether the tensor-core pipelines (MOE_MATMUL_CM, MOE_SWIGLU_CM) may run: the device has
 * VK_NV_cooperative_matrix with the 16×8×16 fp16 → fp32 shape, fp16 arithmetic, the Vulkan
 * memory model and subgroups of 32, and QOMNI_VK_COOPMAT is not "0". They round the
 * operands to fp16 (NMSE ~1e-7 against float32). FALSE for borrowed devices. */
gboolean qomni_vk_has_coopmat (const QomniVk *vk);
/* Whether shaders may use doubles (shaderFloat64 enabled; FALSE for borrowed devices, whose
 * enabled features qomni cannot see): the GPU sampler (SAMPLE_PICK) needs them. */
gboolean qomni_vk_has_float64 (const QomniVk *vk);
/* Bytes allocated on the device so far. */
uint64_t qomni_vk_allocated (const QomniVk *vk);

/* Objects shared by every user of one device, one per key: the uploaded weights of a model
 * component, so that N decoders of one weight store hold one copy (thinker-vk.c).
 * (transfer full) The object under key, or a new one from make (vk, data, error) when there
 * is none; NULL with make's error. Each object got is given back with one
 * qomni_vk_shared_release; the last one frees it with free_fn. Thread-safe. make runs under
 * the registry's lock, so threads asking for one key at once make it once (and asks for
 * other keys wait meanwhile); it must not ask for a shared object itself. */
typedef gpointer (*QomniVkSharedMake) (QomniVk *vk, gpointer data, GError **error);
gpointer qomni_vk_shared_get (QomniVk *vk, const char *key, QomniVkSharedMake make,
                              gpointer data, GDestroyNotify free_fn, GError **error);
void qomni_vk_shared_release (QomniVk *vk, gpointer object);
/* How many shared objects the device holds now. */
guint qomni_vk_shared_count (QomniVk *vk);

/* (transfer full) QOMNI_ERROR_DEVICE when out of memory; the message names `what`. */
QomniVkBuffer *qomni_vk_buffer_new (QomniVk *vk, uint64_t size, QomniVkMem mem,
                                    const char *what, GError **error);
void qomni_vk_buffer_free (QomniVk *vk, QomniVkBuffer *buf);

/* Host ↔ device copies through the staging ring; they wait for completion. */
gboolean qomni_vk_upload (QomniVk *vk, QomniVkBuffer *dst, uint64_t offset, const void *src,
                          size_t n, GError **error);
gboolean qomni_vk_download (QomniVk *vk, const QomniVkBuffer *src, uint64_t offset, void *dst,
                            size_t n, GError **error);

/* (transfer full) A primary command buffer being recorded. */
QomniVkCmd *qomni_vk_cmd_begin (QomniVk *vk, GError **error);
/* (transfer full) The same, for work that repeats unchanged but for the contents of its
 * buffers (the code predictor's frame): qomni_vk_cmd_submit runs it and keeps it, so it can
 * be submitted again without recording; qomni_vk_cmd_abandon frees it. No flush. */
QomniVkCmd *qomni_vk_cmd_begin_reusable (QomniVk *vk, GError **error);
/* Records one dispatch. Asserts (a programmer error) when the binding count or the
 * push-constant size differ from the pipeline's declaration. Follows it with a
 * compute→compute barrier, so every dispatch sees the previous ones' writes. Pipelines
 * are compiled on first use; a failure is kept and reported by qomni_vk_cmd_submit. */
void qomni_vk_dispatch (QomniVkCmd *cmd, QomniVkPipe pipe, const QomniVkBind *binds,
                        int n_binds, const void *push, size_t push_size, uint32_t gx,
                        uint32_t gy, uint32_t gz);
void qomni_vk_cmd_copy (QomniVkCmd *cmd, const QomniVkBuffer *src, uint64_t src_off,
                        const QomniVkBuffer *dst, uint64_t dst_off, uint64_t n);
/* n rows of row_bytes, strided on both sides, as one copy command. */
void qomni_vk_cmd_copy_rows (QomniVkCmd *cmd, const QomniVkBuffer *src, uint64_t src_off,
                             uint64_t src_stride, const QomniVkBuffer *dst, uint64_t dst_off,
                             uint64_t dst_stride, uint64_t row_bytes, uint32_t n);
void qomni_vk_cmd_fill (QomniVkCmd *cmd, const QomniVkBuffer *dst, uint64_t off, uint64_t n,
                        uint32_t word);
/* Submits what was recorded so far without waiting and goes on recording into a fresh
 * command buffer of the same cmd, so the GPU starts while the CPU records the rest (a
 * decode step's ~500 dispatches). Order and barriers carry across; failures are kept and
 * reported by qomni_vk_cmd_submit. */
void qomni_vk_cmd_flush (QomniVkCmd *cmd);
/* Submits, waits for the fence, collects timestamps, frees cmd (unless reusable). Device
 * loss is QOMNI_ERROR_DEVICE. */
gboolean qomni_vk_cmd_submit (QomniVkCmd *cmd, GError **error);
/* Frees a command buffer without submitting it (or a reusable one after its runs). */
void qomni_vk_cmd_abandon (QomniVkCmd *cmd);

/* Per-kernel profiling (QOMNI_PROFILE=1, or enabled here): each dispatch is bracketed by
 * timestamps and accumulated per pipeline. */
void qomni_vk_profile_enable (QomniVk *vk, gboolean on);
gboolean qomni_vk_profile_enabled (const QomniVk *vk);
void qomni_vk_profile_reset (QomniVk *vk);
/* Timed dispatches of one pipeline since the last reset (0 without timestamps). */
guint64 qomni_vk_profile_calls (const QomniVk *vk, QomniVkPipe pipe);
/* Prints the table (pipeline, calls, total ms, share) to stdout. */
void qomni_vk_profile_print (QomniVk *vk, const char *title);

G_END_DECLS
