/* The qomni GStreamer plugin: Qwen3-Omni's elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "gstqomniencode.h"
#include "gstqomnithinker.h"
#include "gstqomnitalker.h"
#include "gstqomnivocoder.h"

#include <gst/gst.h>

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ok = GST_ELEMENT_REGISTER (qomniencode, plugin);
  ok &= GST_ELEMENT_REGISTER (qomnithinker, plugin);
  ok &= GST_ELEMENT_REGISTER (qomnitalker, plugin);
  ok &= GST_ELEMENT_REGISTER (qomnivocoder, plugin);
  return ok;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, qomni,
                   "Qwen3-Omni: hearing, thinking and speaking elements",
                   plugin_init, QOMNI_VERSION, "LGPL", "qomni", "https://example.invalid/qomni")
