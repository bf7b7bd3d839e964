/* qomni — the Vulkan device layer. */
#include "vk-device.h"
#include "vk-ops.h"
#include "vk-shaders.h"
#include "error.h"
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row per pipeline: the shader variant, how many storage buffers it binds, the size
 * of its push-constant block and its specialization constants (constant_id 0 is always
 * the workgroup width). */
typedef struct {
  const char *shader;
  int n_binds;
  uint32_t push_size;
  uint32_t spec[3];
  int n_spec;
} PipeDecl;

/* Matvec: 128 threads, 2 output rows per workgroup: enough loads in flight per
 * workgroup while keeping thousands of workgroups for the 2048-wide projections. */
#define MATVEC(s) { s, 5, sizeof (QomniVkMatvecPush), { 128, 2 }, 2 }
/* Matmul: 256 threads, the count matmul.comp's tiles are written for. */
#define MATMUL(s) { s, 4, sizeof (QomniVkMatmulPush), { 256 }, 1 }
#define EMBED(s) { s, 3, sizeof (QomniVkEmbedPush), { 128 }, 1 }
#define CONV(s) { s, 4, sizeof (QomniVkConvPush), { 256 }, 1 }
#define EMBED_MEAN(s) { s, 3, sizeof (QomniVkEmbedMeanPush), { 128 }, 1 }
#define MOE_MATMUL(s) { s, 4, sizeof (QomniVkMoeMatmulPush), { 256 }, 1 }
#define MOE_MATMUL_CM(s) { s, 4, sizeof (QomniVkMoeMatmulPush), { 128 }, 1 }

static const PipeDecl pipe_table[] = {
  [QOMNI_VK_PIPE_MATVEC_F32] = MATVEC ("matvec_f32"),
  [QOMNI_VK_PIPE_MATVEC_F16] = MATVEC ("matvec_f16"),
  [QOMNI_VK_PIPE_MATVEC_BF16] = MATVEC ("matvec_bf16"),
  [QOMNI_VK_PIPE_MATVEC_Q8_0] = MATVEC ("matvec_q8_0"),
  [QOMNI_VK_PIPE_MATVEC_Q4_0] = MATVEC ("matvec_q4_0"),
  [QOMNI_VK_PIPE_SWIGLU_F32] = MATVEC ("swiglu_f32"),
  [QOMNI_VK_PIPE_SWIGLU_F16] = MATVEC ("swiglu_f16"),
  [QOMNI_VK_PIPE_SWIGLU_BF16] = MATVEC ("swiglu_bf16"),
  [QOMNI_VK_PIPE_SWIGLU_Q8_0] = MATVEC ("swiglu_q8_0"),
  [QOMNI_VK_PIPE_SWIGLU_Q4_0] = MATVEC ("swiglu_q4_0"),
  [QOMNI_VK_PIPE_MATMUL_F32] = MATMUL ("matmul_f32"),
  [QOMNI_VK_PIPE_MATMUL_F16] = MATMUL ("matmul_f16"),
  [QOMNI_VK_PIPE_MATMUL_BF16] = MATMUL ("matmul_bf16"),
  [QOMNI_VK_PIPE_MATMUL_Q8_0] = MATMUL ("matmul_q8_0"),
  [QOMNI_VK_PIPE_MATMUL_Q4_0] = MATMUL ("matmul_q4_0"),
  [QOMNI_VK_PIPE_MATMUL_WIDE_F32] = MATMUL ("matmul_wide_f32"),
  [QOMNI_VK_PIPE_MATMUL_WIDE_F16] = MATMUL ("matmul_wide_f16"),
  [QOMNI_VK_PIPE_MATMUL_WIDE_BF16] = MATMUL ("matmul_wide_bf16"),
  [QOMNI_VK_PIPE_MATMUL_WIDE_Q8_0] = MATMUL ("matmul_wide_q8_0"),
  [QOMNI_VK_PIPE_MATMUL_WIDE_Q4_0] = MATMUL ("matmul_wide_q4_0"),
  [QOMNI_VK_PIPE_MATMUL_NARROW_F32] = MATMUL ("matmul_narrow_f32"),
  [QOMNI_VK_PIPE_MATMUL_NARROW_F16] = MATMUL ("matmul_narrow_f16"),
  [QOMNI_VK_PIPE_MATMUL_NARROW_BF16] = MATMUL ("matmul_narrow_bf16"),
  [QOMNI_VK_PIPE_MATMUL_NARROW_Q8_0] = MATMUL ("matmul_narrow_q8_0"),
  [QOMNI_VK_PIPE_MATMUL_NARROW_Q4_0] = MATMUL ("matmul_narrow_q4_0"),
  [QOMNI_VK_PIPE_EMBED_F32] = EMBED ("embed_f32"),
  [QOMNI_VK_PIPE_EMBED_F16] = EMBED ("embed_f16"),
  [QOMNI_VK_PIPE_EMBED_BF16] = EMBED ("embed_bf16"),
  [QOMNI_VK_PIPE_EMBED_Q8_0] = EMBED ("embed_q8_0"),
  [QOMNI_VK_PIPE_EMBED_Q4_0] = EMBED ("embed_q4_0"),
  [QOMNI_VK_PIPE_MOE_MATMUL_F32] = MOE_MATMUL ("moe_matmul_f32"),
  [QOMNI_VK_PIPE_MOE_MATMUL_F16] = MOE_MATMUL ("moe_matmul_f16"),
  [QOMNI_VK_PIPE_MOE_MATMUL_BF16] = MOE_MATMUL ("moe_matmul_bf16"),
  [QOMNI_VK_PIPE_MOE_MATMUL_Q8_0] = MOE_MATMUL ("moe_matmul_q8_0"),
  [QOMNI_VK_PIPE_MOE_MATMUL_Q4_0] = MOE_MATMUL ("moe_matmul_q4_0"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_F32] = MOE_MATMUL ("moe_swiglu_f32"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_F16] = MOE_MATMUL ("moe_swiglu_f16"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_BF16] = MOE_MATMUL ("moe_swiglu_bf16"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_Q8_0] = MOE_MATMUL ("moe_swiglu_q8_0"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_Q4_0] = MOE_MATMUL ("moe_swiglu_q4_0"),
  [QOMNI_VK_PIPE_MOE_MATMUL_CM_F32] = MOE_MATMUL_CM ("moe_matmul_cm_f32"),
  [QOMNI_VK_PIPE_MOE_MATMUL_CM_F16] = MOE_MATMUL_CM ("moe_matmul_cm_f16"),
  [QOMNI_VK_PIPE_MOE_MATMUL_CM_BF16] = MOE_MATMUL_CM ("moe_matmul_cm_bf16"),
  [QOMNI_VK_PIPE_MOE_MATMUL_CM_Q8_0] = MOE_MATMUL_CM ("moe_matmul_cm_q8_0"),
  [QOMNI_VK_PIPE_MOE_MATMUL_CM_Q4_0] = MOE_MATMUL_CM ("moe_matmul_cm_q4_0"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_CM_F32] = MOE_MATMUL_CM ("moe_swiglu_cm_f32"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_CM_F16] = MOE_MATMUL_CM ("moe_swiglu_cm_f16"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_CM_BF16] = MOE_MATMUL_CM ("moe_swiglu_cm_bf16"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_CM_Q8_0] = MOE_MATMUL_CM ("moe_swiglu_cm_q8_0"),
  [QOMNI_VK_PIPE_MOE_SWIGLU_CM_Q4_0] = MOE_MATMUL_CM ("moe_swiglu_cm_q4_0"),
  [QOMNI_VK_PIPE_RMSNORM] = { "rmsnorm", 3, sizeof (QomniVkNormPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_LAYERNORM] = { "layernorm", 4, sizeof (QomniVkNormPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_SOFTMAX] = { "softmax", 1, sizeof (QomniVkSoftmaxPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_ROPE] = { "rope", 4, sizeof (QomniVkRopePush), { 64 }, 1 },
  [QOMNI_VK_PIPE_ROPE_QKV] = { "rope_qkv", 5, sizeof (QomniVkRopeQkvPush), { 64 }, 1 },
  [QOMNI_VK_PIPE_ATTENTION] = { "attention", 4, sizeof (QomniVkAttnPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_ATTN_TILED] = { "attn_tiled", 4, sizeof (QomniVkAttnPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_ATTN_SPLIT] = { "attn_split", 5, sizeof (QomniVkAttnPush),
                                 { 128, QOMNI_VK_ATTN_TILE }, 2 },
  [QOMNI_VK_PIPE_ATTN_COMBINE] = { "attn_combine", 2, sizeof (QomniVkAttnCombinePush),
                                   { 128 }, 1 },
  [QOMNI_VK_PIPE_SILU_MUL] = { "silu_mul", 2, sizeof (QomniVkEltPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_GELU] = { "gelu", 2, sizeof (QomniVkEltPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_GELU_TANH] = { "gelu_tanh", 2, sizeof (QomniVkEltPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_ADD] = { "add", 2, sizeof (QomniVkEltPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_SCALE] = { "scale", 2, sizeof (QomniVkEltPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_MOE_TOPK] = { "moe_topk", 3, sizeof (QomniVkTopkPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_MOE_COMBINE] = { "moe_combine", 3, sizeof (QomniVkCombinePush), { 256 }, 1 },
  [QOMNI_VK_PIPE_MOE_GROUP] = { "moe_group", 2, sizeof (QomniVkGroupPush), { 128 }, 1 },
  [QOMNI_VK_PIPE_ARGMAX] = { "argmax", 2, sizeof (QomniVkArgmaxPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_SAMPLE_PICK] = { "sample_pick", 3, sizeof (QomniVkPickPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_FILL_RANDOM] = { "fill_random", 1, sizeof (QomniVkFillPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_CONV1D_F32] = CONV ("conv1d_f32"),
  [QOMNI_VK_PIPE_CONV1D_F16] = CONV ("conv1d_f16"),
  [QOMNI_VK_PIPE_CONV1D_BF16] = CONV ("conv1d_bf16"),
  [QOMNI_VK_PIPE_CONV1D_T_F32] = CONV ("conv1d_t_f32"),
  [QOMNI_VK_PIPE_CONV1D_T_F16] = CONV ("conv1d_t_f16"),
  [QOMNI_VK_PIPE_CONV1D_T_BF16] = CONV ("conv1d_t_bf16"),
  [QOMNI_VK_PIPE_CONV1D_N_F32] = CONV ("conv1d_n_f32"),
  [QOMNI_VK_PIPE_CONV1D_N_F16] = CONV ("conv1d_n_f16"),
  [QOMNI_VK_PIPE_CONV1D_N_BF16] = CONV ("conv1d_n_bf16"),
  [QOMNI_VK_PIPE_CONV1D_TN_F32] = CONV ("conv1d_tn_f32"),
  [QOMNI_VK_PIPE_CONV1D_TN_F16] = CONV ("conv1d_tn_f16"),
  [QOMNI_VK_PIPE_CONV1D_TN_BF16] = CONV ("conv1d_tn_bf16"),
  [QOMNI_VK_PIPE_EMBED_MEAN_F32] = EMBED_MEAN ("embed_mean_f32"),
  [QOMNI_VK_PIPE_EMBED_MEAN_F16] = EMBED_MEAN ("embed_mean_f16"),
  [QOMNI_VK_PIPE_EMBED_MEAN_BF16] = EMBED_MEAN ("embed_mean_bf16"),
  [QOMNI_VK_PIPE_DWCONV1D] = { "dwconv1d", 3, sizeof (QomniVkDwConvPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_SNAKE] = { "snake", 3, sizeof (QomniVkSnakePush), { 256 }, 1 },
  [QOMNI_VK_PIPE_SCALE_ADD] = { "scale_add", 3, sizeof (QomniVkScaleAddPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_FILL_RANDOM_BLOCKS] = { "fill_random_blocks", 1, sizeof (QomniVkFillBlocksPush),
                                         { 64 }, 1 },
  [QOMNI_VK_PIPE_BIAS_ACT] = { "bias_act", 2, sizeof (QomniVkBiasActPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_IM2COL] = { "im2col", 2, sizeof (QomniVkIm2colPush), { 256 }, 1 },
  [QOMNI_VK_PIPE_MATMUL_REDUCE] = { "matmul_reduce", 3, sizeof (QomniVkMatmulReducePush),
                                    { 256 }, 1 },
};
_Static_assert (G_N_ELEMENTS (pipe_table) == QOMNI_VK_PIPE_COUNT, "one row per pipeline");

#define MAX_BINDS 5
#define STAGING_BYTES (32u << 20)
#define MAX_TIMESTAMPS 8192

typedef struct {
  VkDescriptorSetLayout dsl;
  VkPipelineLayout layout;
  VkPipeline pipeline;
  gboolean failed;
  /* profiling */
  guint64 calls;
  double ns;
} Pipe;

struct _QomniVk {
  gboolean borrowed;
  VkInstance instance;
  VkPhysicalDevice phys;
  VkDevice device;
  uint32_t qfam;
  VkQueue queue;
  GMutex lock;                 /* queue submission, pipeline creation, staging ring */
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties memprops;
  uint32_t subgroup_size;
  uint64_t max_range;
  uint64_t allocated;           /* atomic: buffers come and go from any thread */
  GMutex shared_lock;          /* the shared objects; held while one is made */
  GHashTable *shared_by_key;   /* key → SharedEntry (qomni_vk_shared_get) */
  GHashTable *shared_by_obj;   /* object → the same entries */
  gboolean has_coopmat;
  gboolean mm_coopmat;         /* the MOE_*_CM pipelines may run (qomni_vk_has_coopmat) */
  gboolean has_float64;        /* shaderFloat64 enabled: SAMPLE_PICK may run */
  float ts_period;
  gboolean ts_ok;
  gboolean profile;
  PFN_vkCmdPushDescriptorSetKHR push_desc;
  Pipe pipes[QOMNI_VK_PIPE_COUNT];
  QomniVkBuffer *staging;
  VkDebugUtilsMessengerEXT messenger;   /* with QOMNI_VULKAN_VALIDATION */
  gint validation_messages;
};

typedef struct {
  char *key;
  gpointer object;
  GDestroyNotify free_fn;
  int refs;
} SharedEntry;

struct _QomniVkCmd {
  QomniVk *vk;
  VkCommandPool pool;
  VkCommandBuffer cb;
  VkQueryPool qpool;
  guint n_ts;
  guint n_flushed;             /* command buffers already submitted by qomni_vk_cmd_flush */
  QomniVkPipe *ts_pipe;        /* [MAX_TIMESTAMPS] which pipeline ended at stamp i+1 */
  GError *error;               /* first failure while recording */
  gboolean reusable;           /* submitted again and again; freed by qomni_vk_cmd_abandon */
  VkFence fence;               /* a reusable command's, reset for each run */
  gboolean ended;              /* recording finished */
};

static const char *
vk_result_str (VkResult r)
{
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
  case VK_ERROR_DEVICE_LOST: return "the device was lost";
  case VK_ERROR_INITIALIZATION_FAILED: return "initialization failed";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "no compatible Vulkan driver";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "an extension is missing";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "a feature is missing";
  case VK_ERROR_TOO_MANY_OBJECTS: return "too many objects";
  default: return "Vulkan error";
  }
}

static gboolean
check (VkResult r, GError **error, const char *what)
{
  if (r == VK_SUCCESS)
    return TRUE;
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "%s: %s (VkResult %d)", what,
               vk_result_str (r), (int) r);
  return FALSE;
}

const char *
qomni_vk_pipe_name (QomniVkPipe pipe)
{
  g_return_val_if_fail (pipe >= 0 && pipe < QOMNI_VK_PIPE_COUNT, "?");
  return pipe_table[pipe].shader;
}

uint32_t
qomni_vk_pipe_spec (QomniVkPipe pipe, int i)
{
  g_assert (pipe >= 0 && pipe < QOMNI_VK_PIPE_COUNT && i >= 0 && i < pipe_table[pipe].n_spec);
  return pipe_table[pipe].spec[i];
}

int
qomni_vk_pipe_for_dtype (QomniVkPipe family, int dtype)
{
  /* The families list their variants in this dtype order. */
  static const int order[QOMNI_DTYPE_COUNT] = {
    [QOMNI_DTYPE_F32] = 0, [QOMNI_DTYPE_F16] = 1, [QOMNI_DTYPE_BF16] = 2,
    [QOMNI_DTYPE_I64] = -1, [QOMNI_DTYPE_I32] = -1, [QOMNI_DTYPE_U8] = -1,
    [QOMNI_DTYPE_Q8_0] = 3, [QOMNI_DTYPE_Q4_0] = 4,
  };
  if (dtype < 0 || dtype >= QOMNI_DTYPE_COUNT || order[dtype] < 0)
    return -1;
  return (int) family + order[dtype];
}

int
qomni_vk_pipe_for_float_dtype (QomniVkPipe family, int dtype)
{
  const int p = qomni_vk_pipe_for_dtype (family, dtype);
  return p < 0 || p - (int) family > 2 ? -1 : p;
}

int
qomni_vk_conv_pipe (int dtype, gboolean transposed, uint32_t R, uint32_t *tile_r,
                    uint32_t *tile_m)
{
  const gboolean narrow = R <= 32;
  *tile_r = narrow ? 16 : 64;
  *tile_m = narrow ? 256 : 64;
  return qomni_vk_pipe_for_float_dtype (
      narrow ? (transposed ? QOMNI_VK_PIPE_CONV1D_TN_F32 : QOMNI_VK_PIPE_CONV1D_N_F32)
             : (transposed ? QOMNI_VK_PIPE_CONV1D_T_F32 : QOMNI_VK_PIPE_CONV1D_F32),
      dtype);
}

static gboolean
has_ext (const VkExtensionProperties *exts, uint32_t n, const char *name)
{
  for (uint32_t i = 0; i < n; i++)
    if (!strcmp (exts[i].extensionName, name))
      return TRUE;
  return FALSE;
}

/* Whether the device multiplies 16×16 by 16×8 fp16 cooperative matrices into fp32 in a
 * subgroup: the one shape moe_matmul_cm.comp is written for. */
static gboolean
coopmat_shape (VkInstance instance, VkPhysicalDevice phys)
{
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
      (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) vkGetInstanceProcAddr (
          instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
  uint32_t n = 0;
  if (!get || get (phys, &n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  VkCooperativeMatrixPropertiesNV *props = g_new0 (VkCooperativeMatrixPropertiesNV, n);
  for (uint32_t i = 0; i < n; i++)
    props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  gboolean found = FALSE;
  if (get (phys, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n && !found; i++) {
      const VkCooperativeMatrixPropertiesNV *c = &props[i];
      found = c->MSize == 16 && c->NSize == 8 && c->KSize == 16
              && c->AType == VK_COMPONENT_TYPE_FLOAT16_NV
              && c->BType == VK_COMPONENT_TYPE_FLOAT16_NV
              && c->CType == VK_COMPONENT_TYPE_FLOAT32_NV
              && c->DType == VK_COMPONENT_TYPE_FLOAT32_NV && c->scope == VK_SCOPE_SUBGROUP_NV;
    }
  g_free (props);
  return found;
}

/* Fills in what both the owned and the borrowed paths need once the device exists. */
static gboolean
finish_setup (QomniVk *vk, GError **error)
{
  g_mutex_init (&vk->lock);
  vkGetPhysicalDeviceProperties (vk->phys, &vk->props);
  vkGetPhysicalDeviceMemoryProperties (vk->phys, &vk->memprops);
  VkPhysicalDeviceSubgroupProperties sg = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
  };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                     .pNext = &sg };
  vkGetPhysicalDeviceProperties2 (vk->phys, &p2);
  vk->subgroup_size = sg.subgroupSize;
  if (!(sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT)
      || !(sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT)
      || !(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s has no subgroup arithmetic and shuffles in compute shaders",
                 vk->props.deviceName);
    return FALSE;
  }
  vk->max_range = vk->props.limits.maxStorageBufferRange;
  vk->ts_period = vk->props.limits.timestampPeriod;
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &nq, NULL);
  VkQueueFamilyProperties *qf = g_new0 (VkQueueFamilyProperties, nq);
  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &nq, qf);
  vk->ts_ok = vk->qfam < nq && qf[vk->qfam].timestampValidBits > 0
              && vk->props.limits.timestampComputeAndGraphics;
  g_free (qf);
  vkGetDeviceQueue (vk->device, vk->qfam, 0, &vk->queue);
  vk->push_desc = (PFN_vkCmdPushDescriptorSetKHR) vkGetDeviceProcAddr (
      vk->device, "vkCmdPushDescriptorSetKHR");
  if (!vk->push_desc) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: VK_KHR_push_descriptor is not enabled", vk->props.deviceName);
    return FALSE;
  }
  const char *prof = g_getenv ("QOMNI_PROFILE");
  vk->profile = prof && *prof && strcmp (prof, "0");
  /* the tensor-core kernels assume 4 subgroups of 32 in a workgroup of 128 */
  const char *cm = g_getenv ("QOMNI_VK_COOPMAT");
  if (vk->subgroup_size != 32 || (cm && !strcmp (cm, "0")))
    vk->mm_coopmat = FALSE;
  return TRUE;
}

/* Validation-layer messages: counted and logged as GLib warnings; with
 * QOMNI_VULKAN_VALIDATION=fatal (the validation test suite) the first one aborts the
 * program, so no test can pass over a message. */
static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation_message (VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                       VkDebugUtilsMessageTypeFlagsEXT types,
                       const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
  QomniVk *vk = user;
  g_atomic_int_inc (&vk->validation_messages);
  const char *what =
    severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
  const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
  if (g_strcmp0 (g_getenv ("QOMNI_VULKAN_VALIDATION"), "fatal") == 0)
    g_error ("Vulkan validation %s: %s", what, msg);
  g_warning ("Vulkan validation %s: %s", what, msg);
  return VK_FALSE;
}

int
qomni_vk_validation_messages (QomniVk *vk)
{
  return g_atomic_int_get (&vk->validation_messages);
}

QomniVk *
qomni_vk_new (int index, GError **error)
{
  QomniVk *vk = g_new0 (QomniVk, 1);
  VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                            .pApplicationName = "qomni", .apiVersion = VK_API_VERSION_1_2 };
  VkInstanceCreateInfo ici = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app };
  /* QOMNI_VULKAN_VALIDATION=1 (or =fatal) turns the Khronos validation layer on, its
   * messages routed through on_validation_message. */
  const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
  const char *instance_exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
  const char *val = g_getenv ("QOMNI_VULKAN_VALIDATION");
  const gboolean validate = val && *val && strcmp (val, "0");
  VkDebugUtilsMessengerCreateInfoEXT mci = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
                       | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
                   | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
    .pfnUserCallback = on_validation_message, .pUserData = vk };
  if (validate) {
    ici.enabledLayerCount = 1;
    ici.ppEnabledLayerNames = layers;
    ici.enabledExtensionCount = 1;
    ici.ppEnabledExtensionNames = instance_exts;
    ici.pNext = &mci;   /* also covers vkCreateInstance and vkDestroyInstance */
  }
  VkResult r = vkCreateInstance (&ici, NULL, &vk->instance);
  if (r == VK_ERROR_LAYER_NOT_PRESENT || r == VK_ERROR_EXTENSION_NOT_PRESENT) {
    /* a validation run must not turn into a skip for want of the layer */
    if (g_strcmp0 (val, "fatal") == 0)
      g_error ("QOMNI_VULKAN_VALIDATION=fatal but the Khronos validation layer is not "
               "installed (Debian: vulkan-validationlayers)");
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "QOMNI_VULKAN_VALIDATION is set but the Khronos validation layer is not "
                 "installed (Debian: vulkan-validationlayers): %s", vk_result_str (r));
    g_free (vk);
    return NULL;
  }
  if (r == VK_SUCCESS && validate) {
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
      vkGetInstanceProcAddr (vk->instance, "vkCreateDebugUtilsMessengerEXT");
    if (create)
      create (vk->instance, &mci, NULL, &vk->messenger);
  }
  if (r != VK_SUCCESS) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "cannot create a Vulkan instance: %s (is a Vulkan driver installed?)",
                 vk_result_str (r));
    g_free (vk);
    return NULL;
  }
  uint32_t n = 0;
  vkEnumeratePhysicalDevices (vk->instance, &n, NULL);
  if (n == 0) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "no Vulkan device found");
    goto fail;
  }
  VkPhysicalDevice *devs = g_new0 (VkPhysicalDevice, n);
  vkEnumeratePhysicalDevices (vk->instance, &n, devs);
  const char *env = g_getenv ("QOMNI_VULKAN_DEVICE");
  if (index < 0 && env && *env)
    index = atoi (env);
  if (index >= (int) n) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "Vulkan device %d asked for, but only %u exist", index, n);
    g_free (devs);
    goto fail;
  }
  if (index < 0) {
    index = 0;
    for (uint32_t i = 0; i < n; i++) {
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties (devs[i], &p);
      if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) {
        index = (int) i;
        break;
      }
    }
  }
  vk->phys = devs[index];
  g_free (devs);

  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (vk->phys, &props);
  if (VK_API_VERSION_MINOR (props.apiVersion) < 1 && VK_API_VERSION_MAJOR (props.apiVersion) == 1) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s supports only Vulkan 1.0; qomni needs 1.1", props.deviceName);
    goto fail;
  }
  uint32_t next = 0;
  vkEnumerateDeviceExtensionProperties (vk->phys, NULL, &next, NULL);
  VkExtensionProperties *exts = g_new0 (VkExtensionProperties, MAX (next, 1));
  vkEnumerateDeviceExtensionProperties (vk->phys, NULL, &next, exts);
  const char *want[8];
  uint32_t n_want = 0;
  if (!has_ext (exts, next, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME)) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s lacks VK_KHR_push_descriptor", props.deviceName);
    g_free (exts);
    goto fail;
  }
  want[n_want++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
  gboolean v12 = VK_API_VERSION_MINOR (props.apiVersion) >= 2;
  gboolean v13 = VK_API_VERSION_MINOR (props.apiVersion) >= 3;
  gboolean sgsc = !v13 && has_ext (exts, next, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  if (sgsc)
    want[n_want++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
  gboolean coop = has_ext (exts, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  if (coop)
    want[n_want++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
  g_free (exts);

  /* Ask what exists, then enable exactly that subset of what the shaders can use. */
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV
  };
  VkPhysicalDeviceSubgroupSizeControlFeatures sc = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
    .pNext = coop ? &cm : NULL
  };
  VkPhysicalDeviceVulkan12Features f12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    .pNext = (v13 || sgsc) ? (void *) &sc : (coop ? (void *) &cm : NULL)
  };
  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
    .pNext = v12 ? &f12 : NULL
  };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                   .pNext = &f11 };
  vkGetPhysicalDeviceFeatures2 (vk->phys, &f2);
  /* keep only the features qomni's shaders may use */
  VkPhysicalDeviceVulkan11Features e11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
    .storageBuffer16BitAccess = f11.storageBuffer16BitAccess,
  };
  VkPhysicalDeviceVulkan12Features e12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    .storageBuffer8BitAccess = f12.storageBuffer8BitAccess,
    .shaderFloat16 = f12.shaderFloat16,
    .shaderInt8 = f12.shaderInt8,
    .vulkanMemoryModel = f12.vulkanMemoryModel,   /* SPIR-V of cooperative matrix needs it */
  };
  VkPhysicalDeviceSubgroupSizeControlFeatures esc = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
    .subgroupSizeControl = sc.subgroupSizeControl,
    .computeFullSubgroups = sc.computeFullSubgroups,
  };
  VkPhysicalDeviceCooperativeMatrixFeaturesNV ecm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
    .cooperativeMatrix = cm.cooperativeMatrix,
  };
  void *chain = NULL;
  if (coop) {
    ecm.pNext = chain;
    chain = &ecm;
  }
  if (v13 || sgsc) {
    esc.pNext = chain;
    chain = &esc;
  }
  if (v12) {
    e12.pNext = chain;
    chain = &e12;
  }
  e11.pNext = chain;
  chain = &e11;
  /* core 1.0 features: doubles, for the sampler's sums in the CPU's precision */
  VkPhysicalDeviceFeatures e10 = { .shaderFloat64 = f2.features.shaderFloat64 };
  vk->has_float64 = f2.features.shaderFloat64;
  vk->has_coopmat = coop && cm.cooperativeMatrix;
  vk->mm_coopmat = vk->has_coopmat && f12.shaderFloat16 && f12.vulkanMemoryModel
                   && coopmat_shape (vk->instance, vk->phys);

  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &nq, NULL);
  VkQueueFamilyProperties *qf = g_new0 (VkQueueFamilyProperties, MAX (nq, 1));
  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &nq, qf);
  vk->qfam = UINT32_MAX;
  /* prefer a compute queue that can write timestamps */
  for (uint32_t i = 0; i < nq && vk->qfam == UINT32_MAX; i++)
    if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && qf[i].timestampValidBits)
      vk->qfam = i;
  for (uint32_t i = 0; i < nq && vk->qfam == UINT32_MAX; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      vk->qfam = i;
  g_free (qf);
  if (vk->qfam == UINT32_MAX) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED, "%s has no compute queue",
                 props.deviceName);
    goto fail;
  }
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vk->qfam, .queueCount = 1,
                                  .pQueuePriorities = &prio };
  VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = chain,
                             .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
                             .enabledExtensionCount = n_want, .ppEnabledExtensionNames = want,
                             .pEnabledFeatures = &e10 };
  if (!check (vkCreateDevice (vk->phys, &dci, NULL, &vk->device), error,
              "cannot create the Vulkan device"))
    goto fail;
  if (!finish_setup (vk, error))
    goto fail;
  return vk;
fail:
  qomni_vk_free (vk);
  return NULL;
}

QomniVk *
qomni_vk_new_borrowed (VkInstance instance, VkPhysicalDevice phys, VkDevice device,
                       uint32_t queue_family, GError **error)
{
  QomniVk *vk = g_new0 (QomniVk, 1);
  vk->borrowed = TRUE;
  vk->instance = instance;
  vk->phys = phys;
  vk->device = device;
  vk->qfam = queue_family;
  if (!finish_setup (vk, error)) {
    qomni_vk_free (vk);
    return NULL;
  }
  return vk;
}

/* Objects still shared when the device goes are a leak of their users: say so, then free
 * them while the device still exists. */
static void
shared_free_all (QomniVk *vk)
{
  if (!vk->shared_by_key)
    return;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, vk->shared_by_key);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    SharedEntry *e = v;
    g_warning ("qomni_vk_free: \"%s\" is still held %d time(s)", e->key, e->refs);
    e->free_fn (e->object);
    g_free (e->key);
    g_free (e);
  }
  g_clear_pointer (&vk->shared_by_key, g_hash_table_destroy);
  g_clear_pointer (&vk->shared_by_obj, g_hash_table_destroy);
}

void
qomni_vk_free (QomniVk *vk)
{
  if (!vk)
    return;
  if (vk->device) {
    vkDeviceWaitIdle (vk->device);
    shared_free_all (vk);
    if (vk->staging)
      qomni_vk_buffer_free (vk, vk->staging);
    for (int i = 0; i < QOMNI_VK_PIPE_COUNT; i++) {
      Pipe *p = &vk->pipes[i];
      if (p->pipeline)
        vkDestroyPipeline (vk->device, p->pipeline, NULL);
      if (p->layout)
        vkDestroyPipelineLayout (vk->device, p->layout, NULL);
      if (p->dsl)
        vkDestroyDescriptorSetLayout (vk->device, p->dsl, NULL);
    }
    if (!vk->borrowed)
      vkDestroyDevice (vk->device, NULL);
  }
  if (vk->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
      vkGetInstanceProcAddr (vk->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy)
      destroy (vk->instance, vk->messenger, NULL);
  }
  if (vk->instance && !vk->borrowed)
    vkDestroyInstance (vk->instance, NULL);
  if (vk->queue || vk->device)
    g_mutex_clear (&vk->lock);
  g_mutex_clear (&vk->shared_lock);
  g_free (vk);
}

const char *qomni_vk_device_name (const QomniVk *vk) { return vk->props.deviceName; }
uint64_t qomni_vk_max_range (const QomniVk *vk) { return vk->max_range; }
uint32_t qomni_vk_subgroup_size (const QomniVk *vk) { return vk->subgroup_size; }
gboolean qomni_vk_has_coopmat (const QomniVk *vk) { return vk->mm_coopmat; }
gboolean qomni_vk_has_float64 (const QomniVk *vk) { return vk->has_float64; }
uint64_t
qomni_vk_allocated (const QomniVk *vk)
{
  return __atomic_load_n (&vk->allocated, __ATOMIC_RELAXED);
}

gpointer
qomni_vk_shared_get (QomniVk *vk, const char *key, QomniVkSharedMake make, gpointer data,
                     GDestroyNotify free_fn, GError **error)
{
  g_mutex_lock (&vk->shared_lock);
  if (!vk->shared_by_key) {
    vk->shared_by_key = g_hash_table_new (g_str_hash, g_str_equal);
    vk->shared_by_obj = g_hash_table_new (g_direct_hash, g_direct_equal);
  }
  SharedEntry *e = g_hash_table_lookup (vk->shared_by_key, key);
  gpointer obj = NULL;
  if (e) {
    e->refs++;
    obj = e->object;
  } else if ((obj = make (vk, data, error))) {
    /* made under the lock: a second thread asking for the same key waits for this one
     * instead of uploading the same gigabytes again */
    e = g_new0 (SharedEntry, 1);
    e->key = g_strdup (key);
    e->object = obj;
    e->free_fn = free_fn;
    e->refs = 1;
    g_hash_table_insert (vk->shared_by_key, e->key, e);
    g_hash_table_insert (vk->shared_by_obj, obj, e);
  }
  g_mutex_unlock (&vk->shared_lock);
  return obj;
}

void
qomni_vk_shared_release (QomniVk *vk, gpointer object)
{
  if (!object)
    return;
  g_mutex_lock (&vk->shared_lock);
  SharedEntry *e = vk->shared_by_obj ? g_hash_table_lookup (vk->shared_by_obj, object) : NULL;
  g_assert (e != NULL);   /* not from qomni_vk_shared_get, or released once too often */
  if (--e->refs == 0) {
    g_hash_table_remove (vk->shared_by_key, e->key);
    g_hash_table_remove (vk->shared_by_obj, object);
  } else {
    e = NULL;
  }
  g_mutex_unlock (&vk->shared_lock);
  if (e) {
    /* the last user: no recording can reference the object any more */
    e->free_fn (e->object);
    g_free (e->key);
    g_free (e);
  }
}

guint
qomni_vk_shared_count (QomniVk *vk)
{
  g_mutex_lock (&vk->shared_lock);
  guint n = vk->shared_by_key ? g_hash_table_size (vk->shared_by_key) : 0;
  g_mutex_unlock (&vk->shared_lock);
  return n;
}

static int
find_memtype (QomniVk *vk, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
  for (uint32_t i = 0; i < vk->memprops.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = vk->memprops.memoryTypes[i].propertyFlags;
    if ((bits & (1u << i)) && (f & want) == want && !(f & avoid))
      return (int) i;
  }
  return -1;
}

QomniVkBuffer *
qomni_vk_buffer_new (QomniVk *vk, uint64_t size, QomniVkMem mem, const char *what,
                     GError **error)
{
  QomniVkBuffer *b = g_new0 (QomniVkBuffer, 1);
  b->size = size;
  b->what = what;
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = MAX (size, 16),
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT
             | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE
  };
  if (!check (vkCreateBuffer (vk->device, &bci, NULL, &b->buffer), error, what)) {
    g_free (b);
    return NULL;
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (vk->device, b->buffer, &req);
  int type;
  if (mem == QOMNI_VK_MEM_DEVICE) {
    type = find_memtype (vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0)
      type = find_memtype (vk, req.memoryTypeBits, 0, 0);
  } else {
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                                     | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    /* cached host memory reads back fast; any coherent host memory will do otherwise */
    type = find_memtype (vk, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (type < 0)
      type = find_memtype (vk, req.memoryTypeBits, hv, 0);
  }
  VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size, .memoryTypeIndex = (uint32_t) type };
  VkResult r = type < 0 ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                        : vkAllocateMemory (vk->device, &mai, NULL, &b->memory);
  if (r != VK_SUCCESS) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE,
                 "cannot allocate %.1f MiB for %s on %s: %s (%.1f MiB already allocated)",
                 size / 1048576.0, what, vk->props.deviceName, vk_result_str (r),
                 qomni_vk_allocated (vk) / 1048576.0);
    vkDestroyBuffer (vk->device, b->buffer, NULL);
    g_free (b);
    return NULL;
  }
  vkBindBufferMemory (vk->device, b->buffer, b->memory, 0);
  if (mem == QOMNI_VK_MEM_HOST
      && !check (vkMapMemory (vk->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->map), error,
                 what)) {
    qomni_vk_buffer_free (vk, b);
    return NULL;
  }
  b->alloc_size = req.size;
  __atomic_fetch_add (&vk->allocated, req.size, __ATOMIC_RELAXED);
  return b;
}

void
qomni_vk_buffer_free (QomniVk *vk, QomniVkBuffer *b)
{
  if (!b)
    return;
  if (b->map)
    vkUnmapMemory (vk->device, b->memory);
  vkDestroyBuffer (vk->device, b->buffer, NULL);
  if (b->memory) {
    vkFreeMemory (vk->device, b->memory, NULL);
    __atomic_fetch_sub (&vk->allocated, b->alloc_size, __ATOMIC_RELAXED);
  }
  g_free (b);
}

/* ---- pipelines ---- */

static gboolean
pipe_ensure (QomniVk *vk, QomniVkPipe id, GError **error)
{
  Pipe *p = &vk->pipes[id];
  if (p->pipeline)
    return TRUE;
  if (p->failed) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_DEVICE, "pipeline %s failed before",
                 pipe_table[id].shader);
    return FALSE;
  }
  const PipeDecl *d = &pipe_table[id];
  const uint32_t *words;
  size_t n_words;
  if (!qomni_vk_shader_find (d->shader, &words, &n_words))
    g_error ("shader %s is not in the registry", d->shader);

  VkDescriptorSetLayoutBinding lb[MAX_BINDS];
  for (int i = 0; i < d->n_binds; i++)
    lb[i] = (VkDescriptorSetLayoutBinding) { .binding = (uint32_t) i,
                                             .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                             .descriptorCount = 1,
                                             .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
  VkDescriptorSetLayoutCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
    .bindingCount = (uint32_t) d->n_binds, .pBindings = lb
  };
  VkPushConstantRange pcr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = d->push_size };
  VkShaderModuleCreateInfo smci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = n_words * 4, .pCode = words };
  VkShaderModule mod = VK_NULL_HANDLE;
  VkSpecializationMapEntry me[3];
  for (int i = 0; i < d->n_spec; i++)
    me[i] = (VkSpecializationMapEntry) { .constantID = (uint32_t) i,
                                         .offset = (uint32_t) (4 * i), .size = 4 };
  VkSpecializationInfo si = { .mapEntryCount = (uint32_t) d->n_spec, .pMapEntries = me,
                              .dataSize = 4 * (size_t) d->n_spec, .pData = d->spec };
  gboolean ok = check (vkCreateDescriptorSetLayout (vk->device, &dci, NULL, &p->dsl), error,
                       d->shader);
  if (ok) {
    VkPipelineLayoutCreateInfo lci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                       .setLayoutCount = 1, .pSetLayouts = &p->dsl,
                                       .pushConstantRangeCount = d->push_size ? 1 : 0,
                                       .pPushConstantRanges = &pcr };
    ok = check (vkCreatePipelineLayout (vk->device, &lci, NULL, &p->layout), error, d->shader);
  }
  if (ok)
    ok = check (vkCreateShaderModule (vk->device, &smci, NULL, &mod), error, d->shader);
  if (ok) {
    VkComputePipelineCreateInfo cci = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                 .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = mod, .pName = "main",
                 .pSpecializationInfo = &si },
      .layout = p->layout
    };
    ok = check (vkCreateComputePipelines (vk->device, VK_NULL_HANDLE, 1, &cci, NULL,
                                          &p->pipeline), error, d->shader);
  }
  if (mod)
    vkDestroyShaderModule (vk->device, mod, NULL);
  p->failed = !ok;
  return ok;
}

/* ---- command buffers ---- */

static QomniVkCmd *
cmd_begin (QomniVk *vk, gboolean reusable, GError **error)
{
  QomniVkCmd *c = g_new0 (QomniVkCmd, 1);
  c->vk = vk;
  c->reusable = reusable;
  /* One pool per command buffer: recording never contends with another thread's. */
  VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = reusable ? 0 : VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                  .queueFamilyIndex = vk->qfam };
  if (!check (vkCreateCommandPool (vk->device, &pci, NULL, &c->pool), error, "command pool")) {
    g_free (c);
    return NULL;
  }
  VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = c->pool,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                     .commandBufferCount = 1 };
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                  .flags = reusable ? 0
                                                    : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
  if (!check (vkAllocateCommandBuffers (vk->device, &ai, &c->cb), error, "command buffer")
      || !check (vkBeginCommandBuffer (c->cb, &bi), error, "command buffer")) {
    qomni_vk_cmd_abandon (c);
    return NULL;
  }
  if (vk->profile && vk->ts_ok) {
    VkQueryPoolCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                  .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                  .queryCount = MAX_TIMESTAMPS };
    if (vkCreateQueryPool (vk->device, &qci, NULL, &c->qpool) == VK_SUCCESS) {
      c->ts_pipe = g_new (QomniVkPipe, MAX_TIMESTAMPS);
      vkCmdResetQueryPool (c->cb, c->qpool, 0, MAX_TIMESTAMPS);
      vkCmdWriteTimestamp (c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 0);
      c->n_ts = 1;
    }
  }
  return c;
}

QomniVkCmd *
qomni_vk_cmd_begin (QomniVk *vk, GError **error)
{
  return cmd_begin (vk, FALSE, error);
}

QomniVkCmd *
qomni_vk_cmd_begin_reusable (QomniVk *vk, GError **error)
{
  return cmd_begin (vk, TRUE, error);
}

static void
barrier (QomniVkCmd *c)
{
  VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                         .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                         .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT
                                          | VK_ACCESS_TRANSFER_READ_BIT
                                          | VK_ACCESS_TRANSFER_WRITE_BIT };
  vkCmdPipelineBarrier (c->cb,
                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        0, 1, &mb, 0, NULL, 0, NULL);
}

void
qomni_vk_dispatch (QomniVkCmd *c, QomniVkPipe id, const QomniVkBind *binds, int n_binds,
                   const void *push, size_t push_size, uint32_t gx, uint32_t gy, uint32_t gz)
{
  g_assert (id >= 0 && id < QOMNI_VK_PIPE_COUNT);
  const PipeDecl *d = &pipe_table[id];
  /* Programmer errors: the call must match the declaration, as ggml-vulkan checks. */
  if (n_binds != d->n_binds || push_size != d->push_size)
    g_error ("dispatch of %s with %d bindings and %zu push bytes; it declares %d and %u",
             d->shader, n_binds, push_size, d->n_binds, d->push_size);
  QomniVk *vk = c->vk;
  if (c->error)
    return;
  const VkPhysicalDeviceLimits *lim = &vk->props.limits;
  if (gx > lim->maxComputeWorkGroupCount[0] || gy > lim->maxComputeWorkGroupCount[1]
      || gz > lim->maxComputeWorkGroupCount[2]) {
    g_set_error (&c->error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "%s: grid %u×%u×%u exceeds the device's %u×%u×%u", d->shader, gx, gy, gz,
                 lim->maxComputeWorkGroupCount[0], lim->maxComputeWorkGroupCount[1],
                 lim->maxComputeWorkGroupCount[2]);
    return;
  }
  if (gx == 0 || gy == 0 || gz == 0)
    return;
  g_mutex_lock (&vk->lock);
  gboolean ok = pipe_ensure (vk, id, &c->error);
  g_mutex_unlock (&vk->lock);
  if (!ok)
    return;
  Pipe *p = &vk->pipes[id];
  VkDescriptorBufferInfo bi[MAX_BINDS];
  VkWriteDescriptorSet w[MAX_BINDS];
  for (int i = 0; i < n_binds; i++) {
    const QomniVkBind *b = &binds[i];
    g_assert (b->buf && b->offset <= b->buf->size);
    uint64_t range = b->range ? b->range : b->buf->size - b->offset;
    if (range > vk->max_range)
      range = vk->max_range & ~(uint64_t) 15;   /* the shader is told to stay inside */
    if (range == 0)
      range = VK_WHOLE_SIZE;
    g_assert (b->offset % lim->minStorageBufferOffsetAlignment == 0);
    bi[i] = (VkDescriptorBufferInfo) { .buffer = b->buf->buffer, .offset = b->offset,
                                       .range = range };
    w[i] = (VkWriteDescriptorSet) { .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                    .dstBinding = (uint32_t) i, .descriptorCount = 1,
                                    .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                    .pBufferInfo = &bi[i] };
  }
  vkCmdBindPipeline (c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
  vk->push_desc (c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, (uint32_t) n_binds, w);
  if (push_size)
    vkCmdPushConstants (c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                        (uint32_t) push_size, push);
  vkCmdDispatch (c->cb, gx, gy, gz);
  barrier (c);
  if (c->qpool && c->n_ts < MAX_TIMESTAMPS) {
    vkCmdWriteTimestamp (c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, c->n_ts);
    c->ts_pipe[c->n_ts - 1] = id;
    c->n_ts++;
  }
}

void
qomni_vk_cmd_copy (QomniVkCmd *c, const QomniVkBuffer *src, uint64_t src_off,
                   const QomniVkBuffer *dst, uint64_t dst_off, uint64_t n)
{
  g_assert (src_off + n <= src->size && dst_off + n <= dst->size);
  if (n == 0 || c->error)
    return;
  VkBufferCopy r = { .srcOffset = src_off, .dstOffset = dst_off, .size = n };
  vkCmdCopyBuffer (c->cb, src->buffer, dst->buffer, 1, &r);
  barrier (c);
}

void
qomni_vk_cmd_copy_rows (QomniVkCmd *c, const QomniVkBuffer *src, uint64_t src_off,
                        uint64_t src_stride, const QomniVkBuffer *dst, uint64_t dst_off,
                        uint64_t dst_stride, uint64_t row_bytes, uint32_t n)
{
  if (n == 0 || c->error)
    return;
  g_assert (src_off + (n - 1) * src_stride + row_bytes <= src->size);
  g_assert (dst_off + (n - 1) * dst_stride + row_bytes <= dst->size);
  VkBufferCopy *r = g_new (VkBufferCopy, n);
  for (uint32_t i = 0; i < n; i++)
    r[i] = (VkBufferCopy) { .srcOffset = src_off + i * src_stride,
                            .dstOffset = dst_off + i * dst_stride, .size = row_bytes };
  vkCmdCopyBuffer (c->cb, src->buffer, dst->buffer, n, r);
  g_free (r);
  barrier (c);
}

void
qomni_vk_cmd_fill (QomniVkCmd *c, const QomniVkBuffer *dst, uint64_t off, uint64_t n,
                   uint32_t word)
{
  g_assert (off + n <= dst->size && off % 4 == 0 && n % 4 == 0);
  if (n == 0 || c->error)
    return;
  vkCmdFillBuffer (c->cb, dst->buffer, off, n, word);
  barrier (c);
}

void
qomni_vk_cmd_flush (QomniVkCmd *c)
{
  QomniVk *vk = c->vk;
  g_assert (!c->reusable);
  if (c->error)
    return;
  VkCommandBuffer next = VK_NULL_HANDLE;
  VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = c->pool,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                     .commandBufferCount = 1 };
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                  .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
  if (!check (vkEndCommandBuffer (c->cb), &c->error, "recording"))
    return;
  VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                      .pCommandBuffers = &c->cb };
  g_mutex_lock (&vk->lock);
  gboolean ok = check (vkQueueSubmit (vk->queue, 1, &si, VK_NULL_HANDLE), &c->error, "submit");
  g_mutex_unlock (&vk->lock);
  if (!ok)
    return;
  c->n_flushed++;
  /* the last barrier of the submitted buffer orders everything recorded after it */
  if (check (vkAllocateCommandBuffers (vk->device, &ai, &next), &c->error, "command buffer")
      && check (vkBeginCommandBuffer (next, &bi), &c->error, "command buffer"))
    c->cb = next;
}

void
qomni_vk_cmd_abandon (QomniVkCmd *c)
{
  if (!c)
    return;
  QomniVk *vk = c->vk;
  if (c->n_flushed) {
    /* parts of it may still run: nothing is freed under the GPU */
    g_mutex_lock (&vk->lock);
    vkQueueWaitIdle (vk->queue);
    g_mutex_unlock (&vk->lock);
  }
  if (c->qpool)
    vkDestroyQueryPool (vk->device, c->qpool, NULL);
  if (c->fence)
    vkDestroyFence (vk->device, c->fence, NULL);
  if (c->pool)
    vkDestroyCommandPool (vk->device, c->pool, NULL);
  g_clear_error (&c->error);
  g_free (c->ts_pipe);
  g_free (c);
}

static void
collect_timestamps (QomniVkCmd *c)
{
  QomniVk *vk = c->vk;
  if (!c->qpool || c->n_ts < 2)
    return;
  guint64 *ts = g_new (guint64, c->n_ts);
  if (vkGetQueryPoolResults (vk->device, c->qpool, 0, c->n_ts, sizeof (guint64) * c->n_ts, ts,
                             sizeof (guint64), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT)
      == VK_SUCCESS)
    for (guint i = 0; i + 1 < c->n_ts; i++) {
      Pipe *p = &vk->pipes[c->ts_pipe[i]];
      p->calls++;
      p->ns += (double) (ts[i + 1] - ts[i]) * vk->ts_period;
    }
  g_free (ts);
}

gboolean
qomni_vk_cmd_submit (QomniVkCmd *c, GError **error)
{
  QomniVk *vk = c->vk;
  if (c->error) {
    g_propagate_error (error, c->error);
    c->error = NULL;
    if (!c->reusable)
      qomni_vk_cmd_abandon (c);
    return FALSE;
  }
  gboolean ok = c->ended || check (vkEndCommandBuffer (c->cb), error, "recording");
  c->ended = TRUE;
  /* a replayed command keeps its fence: nothing is created per run */
  VkFence fence = c->fence;
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if (ok && fence)
    ok = check (vkResetFences (vk->device, 1, &fence), error, "fence");
  else if (ok)
    ok = check (vkCreateFence (vk->device, &fci, NULL, &fence), error, "fence");
  if (c->reusable)
    c->fence = fence;
  if (ok) {
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                        .pCommandBuffers = &c->cb };
    g_mutex_lock (&vk->lock);
    ok = check (vkQueueSubmit (vk->queue, 1, &si, fence), error, "submit");
    g_mutex_unlock (&vk->lock);
  }
  if (ok)
    ok = check (vkWaitForFences (vk->device, 1, &fence, VK_TRUE, UINT64_MAX), error,
                "waiting for the GPU");
  if (ok)
    collect_timestamps (c);
  if (fence && !c->reusable)
    vkDestroyFence (vk->device, fence, NULL);
  if (!c->reusable)
    qomni_vk_cmd_abandon (c);
  return ok;
}

/* ---- staging ---- */

static gboolean
staging_ensure (QomniVk *vk, GError **error)
{
  if (!vk->staging)
    vk->staging = qomni_vk_buffer_new (vk, STAGING_BYTES, QOMNI_VK_MEM_HOST, "staging buffer",
                                       error);
  return vk->staging != NULL;
}

/* Copies through a 32 MiB host buffer in chunks; each chunk is one submission. Weights
 * are uploaded once at load, so their cost is the bus, not this loop. */
static gboolean
staged_copy (QomniVk *vk, QomniVkBuffer *dev, uint64_t offset, void *host, size_t n,
             gboolean up, GError **error)
{
  g_assert (offset + n <= dev->size);
  if (dev->map) {
    if (up)
      memcpy ((char *) dev->map + offset, host, n);
    else
      memcpy (host, (char *) dev->map + offset, n);
    return TRUE;
  }
  g_mutex_lock (&vk->lock);
  gboolean ok = staging_ensure (vk, error);
  g_mutex_unlock (&vk->lock);
  /* the staging buffer is shared: one transfer at a time */
  static GMutex staging_lock;
  g_mutex_lock (&staging_lock);
  for (size_t done = 0; ok && done < n;) {
    size_t len = MIN (n - done, (size_t) STAGING_BYTES);
    if (up)
      memcpy (vk->staging->map, (const char *) host + done, len);
    QomniVkCmd *c = qomni_vk_cmd_begin (vk, error);
    ok = c != NULL;
    if (ok) {
      if (up)
        qomni_vk_cmd_copy (c, vk->staging, 0, dev, offset + done, len);
      else
        qomni_vk_cmd_copy (c, dev, offset + done, vk->staging, 0, len);
      ok = qomni_vk_cmd_submit (c, error);
    }
    if (ok && !up)
      memcpy ((char *) host + done, vk->staging->map, len);
    done += len;
  }
  g_mutex_unlock (&staging_lock);
  return ok;
}

gboolean
qomni_vk_upload (QomniVk *vk, QomniVkBuffer *dst, uint64_t offset, const void *src, size_t n,
                 GError **error)
{
  return staged_copy (vk, dst, offset, (void *) src, n, TRUE, error);
}

gboolean
qomni_vk_download (QomniVk *vk, const QomniVkBuffer *src, uint64_t offset, void *dst, size_t n,
                   GError **error)
{
  return staged_copy (vk, (QomniVkBuffer *) src, offset, dst, n, FALSE, error);
}

/* ---- profiling ---- */

void
qomni_vk_profile_enable (QomniVk *vk, gboolean on)
{
  vk->profile = on;
}

gboolean
qomni_vk_profile_enabled (const QomniVk *vk)
{
  return vk->profile;
}

void
qomni_vk_profile_reset (QomniVk *vk)
{
  for (int i = 0; i < QOMNI_VK_PIPE_COUNT; i++)
    vk->pipes[i].calls = 0, vk->pipes[i].ns = 0;
}

guint64
qomni_vk_profile_calls (const QomniVk *vk, QomniVkPipe pipe)
{
  return vk->pipes[pipe].calls;
}

void
qomni_vk_profile_print (QomniVk *vk, const char *title)
{
  double total = 0;
  for (int i = 0; i < QOMNI_VK_PIPE_COUNT; i++)
    total += vk->pipes[i].ns;
  if (total <= 0) {
    printf ("%s: no timestamps (profiling off or unsupported)\n", title);
    return;
  }
  printf ("%s (GPU timestamps, %s)\n", title, vk->props.deviceName);
  printf ("  %-16s %8s %10s %9s %6s\n", "kernel", "calls", "total ms", "µs/call", "share");
  for (int i = 0; i < QOMNI_VK_PIPE_COUNT; i++) {
    Pipe *p = &vk->pipes[i];
    if (!p->calls)
      continue;
    printf ("  %-16s %8" G_GUINT64_FORMAT " %10.3f %9.2f %5.1f%%\n", pipe_table[i].shader,
            p->calls, p->ns * 1e-6, p->ns * 1e-3 / (double) p->calls, 100.0 * p->ns / total);
  }
  printf ("  %-16s %8s %10.3f\n", "total", "", total * 1e-6);
}
