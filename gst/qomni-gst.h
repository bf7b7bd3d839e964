/* qomni — what the GStreamer elements share (libgstqomni): the loaded model, handed
 * between elements and from applications through a GstContext, and the conversion of
 * libqomni's GError into element errors.
 *
 *   // NULL→READY of an element
 *   QomniModel *m = qomni_gst_model_ensure (GST_ELEMENT (self), path, &error);
 *   ...
 *   // READY→NULL
 *   qomni_gst_model_release (m);
 *
 * Sharing works in three ways, tried in this order:
 *  1. a `qomni.model` context the application set on the pipeline (or answered to
 *     need-context from a bus sync handler): GstElement's default set_context keeps it in
 *     the element, where gst_element_get_context() finds it (elements that override
 *     set_context must chain up);
 *  2. a CONTEXT query to the element's neighbours (downstream first, then upstream) and a
 *     need-context message, which the parent bin answers from the contexts it has cached;
 *  3. the process-wide cache: a model path loads once per process however many elements
 *     name it; the entry lives while one element holds it.
 * An element that loaded the model posts have-context so the others find it.
 * The context's model is used only when the element's `model` property is unset or names
 * the same folder.
 */
#pragma once

#include <gst/gst.h>

#include "model.h"

G_BEGIN_DECLS

/* The persistent context type carrying a loaded QomniModel (field "model", boxed type
 * QOMNI_TYPE_MODEL, and its path in field "path"). */
#define QOMNI_GST_MODEL_CONTEXT_TYPE "qomni.model"
/* Reserved for the shared Vulkan device (design §3); no element sets it yet. */
#define QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE "qomni.vulkan.device"

#define QOMNI_TYPE_MODEL (qomni_gst_model_get_type ())
GType qomni_gst_model_get_type (void);

/* (transfer full) A persistent context holding a ref on model. */
GstContext *qomni_gst_model_context_new (QomniModel *model);
/* (transfer full) The model a context carries, or NULL when the context is of another type. */
QomniModel *qomni_gst_model_from_context (GstContext *context);

/* (transfer full) Finds or loads the model for element: `path` is its `model` property
 * (NULL or "" when unset: then only a shared model will do). Posts progress messages
 * around a load and have-context after it. Release with qomni_gst_model_release(). */
QomniModel *qomni_gst_model_ensure (GstElement *element, const char *path, GError **error);
/* Drops an element's hold on a model from qomni_gst_model_ensure. */
void qomni_gst_model_release (QomniModel *model);

/* Answers a CONTEXT query of type qomni.model with model (if not NULL); TRUE if answered. */
gboolean qomni_gst_model_handle_context_query (GstElement *element, GstQuery *query,
                                               QomniModel *model);

/* The shared Vulkan device (design §3): a refcounted holder of one QomniVk, carried in
 * a `qomni.vulkan.device` context (field "device", boxed QOMNI_TYPE_GST_DEVICE) so every
 * qomni element of a pipeline computes on one device and one queue. An application hands
 * in its own by setting that context on the pipeline. */
typedef struct _QomniGstDevice QomniGstDevice;
typedef struct _QomniVk QomniVk;
#define QOMNI_TYPE_GST_DEVICE (qomni_gst_device_get_type ())
GType qomni_gst_device_get_type (void);
/* (transfer full) A holder of an application's own device, to hand to elements (and to
 * several pipelines) through qomni_gst_device_context_new; vk is borrowed and must outlive
 * every holder. index: as "vulkan:N" would name it, -1 for any. */
QomniGstDevice *qomni_gst_device_new_borrowed (QomniVk *vk, int index);
QomniGstDevice *qomni_gst_device_ref (QomniGstDevice *device);
void qomni_gst_device_unref (QomniGstDevice *device);
/* (transfer none) */
QomniVk *qomni_gst_device_vk (const QomniGstDevice *device);
/* (transfer full) */
GstContext *qomni_gst_device_context_new (QomniGstDevice *device);
/* (transfer full) NULL when the context is of another type. */
QomniGstDevice *qomni_gst_device_from_context (GstContext *context);
gboolean qomni_gst_device_handle_context_query (GstElement *element, GstQuery *query,
                                                QomniGstDevice *device);
/* Checks the `device` property: "auto" and "cpu" (the CPU), "vulkan", "vulkan:N". */
gboolean qomni_gst_device_check (const char *device, GError **error);
/* For the `device` property: *out = NULL for the CPU; for vulkan[:N] the shared device
 * (the element's context, its neighbours', the bin's) or a new one, announced with
 * have-context. (transfer full) *out. */
gboolean qomni_gst_device_ensure (GstElement *element, const char *device,
                                  QomniGstDevice **out, GError **error);

/* For properties that need a reload (model, device): TRUE in NULL or READY; otherwise an
 * element warning saying so, and FALSE. */
gboolean qomni_gst_property_settable_now (GstElement *element, GParamSpec *pspec);

/* Posts a GError of libqomni as an element error: RESOURCE errors for files, STREAM errors
 * for data, the GError's message as the debug detail. */
#define QOMNI_GST_ELEMENT_ERROR_FROM_GERROR(el, err, ...)                              \
  qomni_gst_element_error ((GstElement *) (el), (err), __FILE__, GST_FUNCTION, __LINE__, \
                           __VA_ARGS__)
void qomni_gst_element_error (GstElement *element, const GError *error, const char *file,
                              const char *function, int line, const char *format, ...)
  G_GNUC_PRINTF (6, 7);

G_END_DECLS
