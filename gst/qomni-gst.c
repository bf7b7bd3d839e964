/* qomni — the GStreamer-side shared pieces: model cache and context, errors. */
#include "qomni-gst.h"
#include "error.h"
#ifdef QOMNI_HAVE_VULKAN
#include "vk-device.h"
#endif

#include <stdlib.h>

GST_DEBUG_CATEGORY_STATIC (qomni_gst_debug);
#define GST_CAT_DEFAULT qomni_gst_debug

G_DEFINE_BOXED_TYPE (QomniModel, qomni_gst_model, qomni_model_ref, qomni_model_unref)

/* The process-wide cache. An entry does not own the model: elements do. It counts the
 * elements holding it and disappears with the last one, so weights unload when no element
 * needs them (a bin's cached context may keep the model alive longer, which is what lets a
 * pipeline go NULL → PLAYING again without a reload). */
typedef struct {
  char *key;            /* canonical path */
  QomniModel *model;    /* borrowed */
  int holders;
} CacheEntry;

static GMutex cache_lock;
static GHashTable *cache_by_path;   /* key → CacheEntry */
static GHashTable *cache_by_model;  /* QomniModel* → CacheEntry (same entries) */

static void
debug_init (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (qomni_gst_debug, "qomni", 0, "qomni shared element code");
    g_once_init_leave (&done, 1);
  }
}

/* (transfer full) The path with symlinks and "..", "." resolved when it exists. */
static char *
canonical_path (const char *path)
{
  char *real = realpath (path, NULL);
  if (real) {
    char *copy = g_strdup (real);
    free (real);
    return copy;
  }
  return g_canonicalize_filename (path, NULL);
}

static gboolean
model_has_path (QomniModel *m, const char *canonical)
{
  g_autofree char *c = canonical_path (m->path);
  return g_strcmp0 (c, canonical) == 0;
}

GstContext *
qomni_gst_model_context_new (QomniModel *model)
{
  GstContext *ctx = gst_context_new (QOMNI_GST_MODEL_CONTEXT_TYPE, TRUE);
  GstStructure *s = gst_context_writable_structure (ctx);
  gst_structure_set (s, "model", QOMNI_TYPE_MODEL, model, "path", G_TYPE_STRING, model->path,
                     NULL);
  return ctx;
}

QomniModel *
qomni_gst_model_from_context (GstContext *context)
{
  if (!context || g_strcmp0 (gst_context_get_context_type (context),
                             QOMNI_GST_MODEL_CONTEXT_TYPE) != 0)
    return NULL;
  QomniModel *m = NULL;
  if (!gst_structure_get (gst_context_get_structure (context), "model", QOMNI_TYPE_MODEL, &m,
                          NULL))
    return NULL;
  return m;
}

gboolean
qomni_gst_model_handle_context_query (GstElement *element, GstQuery *query, QomniModel *model)
{
  const char *type = NULL;
  if (!model || GST_QUERY_TYPE (query) != GST_QUERY_CONTEXT ||
      !gst_query_parse_context_type (query, &type) ||
      g_strcmp0 (type, QOMNI_GST_MODEL_CONTEXT_TYPE) != 0)
    return FALSE;
  GstContext *ctx = qomni_gst_model_context_new (model);
  gst_query_set_context (query, ctx);
  gst_context_unref (ctx);
  GST_CAT_DEBUG_OBJECT (qomni_gst_debug, element, "answered a model context query");
  return TRUE;
}

/* (transfer full) A context of `type` from a neighbour: the peers of element's pads in
 * one direction are asked with a CONTEXT query. NULL when none answers. */
static GstContext *
query_neighbours (GstElement *element, GstPadDirection direction, const char *type)
{
  GstContext *found = NULL;
  GstIterator *it = direction == GST_PAD_SRC ? gst_element_iterate_src_pads (element)
                                             : gst_element_iterate_sink_pads (element);
  GValue item = G_VALUE_INIT;
  while (!found && gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GstPad *pad = g_value_get_object (&item);
    GstQuery *q = gst_query_new_context (type);
    if (gst_pad_peer_query (pad, q)) {
      GstContext *ctx = NULL;
      gst_query_parse_context (q, &ctx);
      if (ctx)
        found = gst_context_ref (ctx);
    }
    gst_query_unref (q);
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return found;
}

/* (transfer full) A shared context of `type`, tried in order: the element's own (set by the
 * application or the bin), its downstream then upstream neighbours, and a need-context
 * message, which the bin answers from the contexts it has cached (or the application from
 * a sync handler) by calling gst_element_set_context on us before post_message returns. */
static GstContext *
find_context (GstElement *element, const char *type)
{
  GstContext *ctx = gst_element_get_context (element, type);
  if (!ctx)
    ctx = query_neighbours (element, GST_PAD_SRC, type);
  if (!ctx)
    ctx = query_neighbours (element, GST_PAD_SINK, type);
  if (!ctx) {
    gst_element_post_message (element,
                              gst_message_new_need_context (GST_OBJECT (element), type));
    ctx = gst_element_get_context (element, type);
  }
  return ctx;
}

/* A shared model if one fits. */
static QomniModel *
find_shared (GstElement *element, const char *want)
{
  GstContext *ctx = find_context (element, QOMNI_GST_MODEL_CONTEXT_TYPE);
  QomniModel *m = qomni_gst_model_from_context (ctx);
  if (ctx)
    gst_context_unref (ctx);
  if (m && want && !model_has_path (m, want)) {
    GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "shared model %s is not %s; not using it",
                         m->path, want);
    qomni_model_unref (m);
    m = NULL;
  }
  return m;
}

static void
cache_hold (QomniModel *m)
{
  g_mutex_lock (&cache_lock);
  CacheEntry *e = cache_by_model ? g_hash_table_lookup (cache_by_model, m) : NULL;
  if (e)
    e->holders++;
  g_mutex_unlock (&cache_lock);
}

/* (transfer full) The cached model for a canonical path, loaded if absent. The lock is held
 * across the load so two elements asking at once load it once. */
static QomniModel *
cache_acquire (GstElement *element, const char *key, GError **error)
{
  g_mutex_lock (&cache_lock);
  if (!cache_by_path) {
    cache_by_path = g_hash_table_new (g_str_hash, g_str_equal);
    cache_by_model = g_hash_table_new (g_direct_hash, g_direct_equal);
  }
  CacheEntry *e = g_hash_table_lookup (cache_by_path, key);
  QomniModel *m = NULL;
  if (e) {
    e->holders++;
    m = qomni_model_ref (e->model);
    GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "model %s already loaded in this process",
                         key);
  } else {
    g_autofree char *text = g_strdup_printf ("Loading model %s", key);
    gst_element_post_message (element, gst_message_new_progress (
                                         GST_OBJECT (element), GST_PROGRESS_TYPE_START,
                                         "load-model", text));
    m = qomni_model_load (key, error);
    gst_element_post_message (element, gst_message_new_progress (
                                         GST_OBJECT (element),
                                         m ? GST_PROGRESS_TYPE_COMPLETE
                                           : GST_PROGRESS_TYPE_ERROR,
                                         "load-model",
                                         m ? "Model loaded" : "Model failed to load"));
    if (m) {
      e = g_new0 (CacheEntry, 1);
      e->key = g_strdup (key);
      e->model = m;
      e->holders = 1;
      g_hash_table_insert (cache_by_path, e->key, e);
      g_hash_table_insert (cache_by_model, m, e);
    }
  }
  g_mutex_unlock (&cache_lock);
  return m;
}

QomniModel *
qomni_gst_model_ensure (GstElement *element, const char *path, GError **error)
{
  debug_init ();
  g_autofree char *want = path && *path ? canonical_path (path) : NULL;
  QomniModel *m = find_shared (element, want);
  if (m) {
    GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "using the shared model %s", m->path);
    cache_hold (m);
    return m;
  }
  if (!want) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_IO,
                 "no model: set the element's model property to a checkpoint folder, or put "
                 "an element that has one next to it");
    return NULL;
  }
  m = cache_acquire (element, want, error);
  if (m) {
    GstContext *ctx = qomni_gst_model_context_new (m);
    gst_element_post_message (element,
                              gst_message_new_have_context (GST_OBJECT (element), ctx));
  }
  return m;
}

void
qomni_gst_model_release (QomniModel *model)
{
  if (!model)
    return;
  g_mutex_lock (&cache_lock);
  CacheEntry *e = cache_by_model ? g_hash_table_lookup (cache_by_model, model) : NULL;
  if (e && --e->holders == 0) {
    g_hash_table_remove (cache_by_model, model);
    g_hash_table_remove (cache_by_path, e->key);
    g_free (e->key);
    g_free (e);
  }
  g_mutex_unlock (&cache_lock);
  qomni_model_unref (model);
}

/* ---- the shared Vulkan device ------------------------------------------------------- */

struct _QomniGstDevice {
  QomniVk *vk;
  int index;     /* as asked: -1 for "vulkan" (QOMNI_VULKAN_DEVICE or the first GPU) */
  gboolean borrowed;   /* the application's: not freed here */
};

static void
device_clear (gpointer p)
{
#ifdef QOMNI_HAVE_VULKAN
  QomniGstDevice *d = p;
  if (!d->borrowed)
    qomni_vk_free (d->vk);
#endif
}

QomniGstDevice *
qomni_gst_device_new_borrowed (QomniVk *vk, int index)
{
  QomniGstDevice *d = g_atomic_rc_box_new0 (QomniGstDevice);
  d->vk = vk;
  d->index = index;
  d->borrowed = TRUE;
  return d;
}

QomniGstDevice *
qomni_gst_device_ref (QomniGstDevice *d)
{
  return g_atomic_rc_box_acquire (d);
}

void
qomni_gst_device_unref (QomniGstDevice *d)
{
  if (d)
    g_atomic_rc_box_release_full (d, device_clear);
}

G_DEFINE_BOXED_TYPE (QomniGstDevice, qomni_gst_device, qomni_gst_device_ref,
                     qomni_gst_device_unref)

QomniVk *
qomni_gst_device_vk (const QomniGstDevice *d)
{
  return d ? d->vk : NULL;
}

GstContext *
qomni_gst_device_context_new (QomniGstDevice *d)
{
  GstContext *ctx = gst_context_new (QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE, TRUE);
  gst_structure_set (gst_context_writable_structure (ctx), "device", QOMNI_TYPE_GST_DEVICE, d,
                     "index", G_TYPE_INT, d->index, NULL);
  return ctx;
}

QomniGstDevice *
qomni_gst_device_from_context (GstContext *context)
{
  QomniGstDevice *d = NULL;
  if (context && g_strcmp0 (gst_context_get_context_type (context),
                            QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE) == 0)
    gst_structure_get (gst_context_get_structure (context), "device", QOMNI_TYPE_GST_DEVICE,
                       &d, NULL);
  return d;
}

gboolean
qomni_gst_device_handle_context_query (GstElement *element, GstQuery *query, QomniGstDevice *d)
{
  const char *type = NULL;
  if (!d || GST_QUERY_TYPE (query) != GST_QUERY_CONTEXT ||
      !gst_query_parse_context_type (query, &type) ||
      g_strcmp0 (type, QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE) != 0)
    return FALSE;
  GstContext *ctx = qomni_gst_device_context_new (d);
  gst_query_set_context (query, ctx);
  gst_context_unref (ctx);
  return TRUE;
}

/* Parses the `device` property: -2 for the CPU, -1 for "vulkan", N for "vulkan:N". */
static gboolean
parse_device (const char *device, int *index, GError **error)
{
  *index = -2;
  if (!device || !*device || g_str_equal (device, "auto") || g_str_equal (device, "cpu"))
    return TRUE;
  if (g_str_equal (device, "vulkan")) {
    *index = -1;
    return TRUE;
  }
  char *end = NULL;
  if (g_str_has_prefix (device, "vulkan:")) {
    gint64 n = g_ascii_strtoll (device + 7, &end, 10);
    if (end && !*end && end != device + 7 && n >= 0 && n < 64) {
      *index = (int) n;
      return TRUE;
    }
  }
  g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
               "unknown device \"%s\" (expected auto, cpu, vulkan or vulkan:N)", device);
  return FALSE;
}

gboolean
qomni_gst_device_check (const char *device, GError **error)
{
  int index;
  if (!parse_device (device, &index, error))
    return FALSE;
#ifndef QOMNI_HAVE_VULKAN
  if (index >= -1) {
    g_set_error (error, QOMNI_ERROR, QOMNI_ERROR_UNSUPPORTED,
                 "device \"%s\": this build of qomni has no Vulkan backend", device);
    return FALSE;
  }
#endif
  return TRUE;
}

gboolean
qomni_gst_device_ensure (GstElement *element, const char *device, QomniGstDevice **out,
                         GError **error)
{
  debug_init ();
  *out = NULL;
  int index;
  if (!qomni_gst_device_check (device, error) || !parse_device (device, &index, error))
    return FALSE;
  if (index == -2)
    return TRUE;   /* the CPU */
#ifdef QOMNI_HAVE_VULKAN
  GstContext *ctx = find_context (element, QOMNI_GST_VULKAN_DEVICE_CONTEXT_TYPE);
  QomniGstDevice *d = qomni_gst_device_from_context (ctx);
  if (ctx)
    gst_context_unref (ctx);
  if (d && index >= 0 && d->index != index) {
    GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "shared device vulkan:%d is not vulkan:%d",
                         d->index, index);
    g_clear_pointer (&d, qomni_gst_device_unref);
  }
  if (d) {
    GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "using the shared device %s",
                         qomni_vk_device_name (d->vk));
    *out = d;
    return TRUE;
  }
  QomniVk *vk = qomni_vk_new (index, error);
  if (!vk)
    return FALSE;
  d = g_atomic_rc_box_new0 (QomniGstDevice);
  d->vk = vk;
  d->index = index;
  GST_CAT_INFO_OBJECT (qomni_gst_debug, element, "opened %s", qomni_vk_device_name (vk));
  ctx = qomni_gst_device_context_new (d);
  gst_element_post_message (element, gst_message_new_have_context (GST_OBJECT (element), ctx));
  *out = d;
  return TRUE;
#else
  return FALSE;
#endif
}

gboolean
qomni_gst_property_settable_now (GstElement *element, GParamSpec *pspec)
{
  GST_OBJECT_LOCK (element);
  GstState state = GST_STATE (element);
  GST_OBJECT_UNLOCK (element);
  if (state <= GST_STATE_READY)
    return TRUE;
  GST_ELEMENT_WARNING (element, LIBRARY, SETTINGS,
                       ("Property '%s' can only change in the NULL or READY state", pspec->name),
                       (NULL));
  return FALSE;
}

void
qomni_gst_element_error (GstElement *element, const GError *error, const char *file,
                         const char *function, int line, const char *format, ...)
{
  GQuark domain = GST_LIBRARY_ERROR;
  int code = GST_LIBRARY_ERROR_FAILED;
  if (error && error->domain == QOMNI_ERROR) {
    switch ((QomniErrorCode) error->code) {
    case QOMNI_ERROR_IO:
      domain = GST_RESOURCE_ERROR;
      code = GST_RESOURCE_ERROR_OPEN_READ;
      break;
    case QOMNI_ERROR_FORMAT:
    case QOMNI_ERROR_MISSING:
    case QOMNI_ERROR_MISMATCH:
      domain = GST_RESOURCE_ERROR;
      code = GST_RESOURCE_ERROR_READ;
      break;
    case QOMNI_ERROR_INVALID_INPUT:
      domain = GST_STREAM_ERROR;
      code = GST_STREAM_ERROR_FORMAT;
      break;
    case QOMNI_ERROR_UNSUPPORTED:
      domain = GST_LIBRARY_ERROR;
      code = GST_LIBRARY_ERROR_SETTINGS;
      break;
    case QOMNI_ERROR_DEVICE:
      domain = GST_RESOURCE_ERROR;
      code = GST_RESOURCE_ERROR_FAILED;
      break;
    }
  }
  va_list ap;
  va_start (ap, format);
  char *text = g_strdup_vprintf (format, ap);
  va_end (ap);
  /* the user message says what failed and why in a sentence; the debug detail repeats the
   * library's message so logs carry it even when the application shows only the text */
  char *full = error ? g_strdup_printf ("%s: %s", text, error->message) : g_strdup (text);
  g_free (text);
  gst_element_message_full (element, GST_MESSAGE_ERROR, domain, code, full,
                            error ? g_strdup (error->message) : NULL, file, function, line);
}
