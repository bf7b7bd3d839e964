/* qomni — the embedded SPIR-V registry, generated at build time by shaders/embed.py
 * from the list in shaders/meson.build. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stddef.h>

G_BEGIN_DECLS

/* (transfer none) The words of the shader variant `name` ("matvec_bf16"). */
gboolean qomni_vk_shader_find (const char *name, const uint32_t **words, size_t *n_words);
guint qomni_vk_shader_count (void);

G_END_DECLS
