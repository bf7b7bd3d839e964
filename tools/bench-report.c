/* qomni bench — the report: every figure printed as a table row when it is measured (a
 * long run shows progress), and kept for the JSON written at the end. */
#include "bench.h"

#include <json-glib/json-glib.h>
#include <stdio.h>

typedef struct {
  char *section, *figure, *param_name, *unit, *floor_basis;
  int param;
  double value, floor;
} Figure;

typedef struct {
  char *section, *what, *reason;
} Skip;

struct _BenchReport {
  GPtrArray *sections;   /* char*, in the order they ran */
  GArray *figures;       /* Figure */
  GArray *skips;         /* Skip */
  gboolean header_done;
};

static void
figure_clear (gpointer p)
{
  Figure *f = p;
  g_free (f->section);
  g_free (f->figure);
  g_free (f->param_name);
  g_free (f->unit);
  g_free (f->floor_basis);
}

static void
skip_clear (gpointer p)
{
  Skip *s = p;
  g_free (s->section);
  g_free (s->what);
  g_free (s->reason);
}

BenchReport *
bench_report_new (void)
{
  BenchReport *r = g_new0 (BenchReport, 1);
  r->sections = g_ptr_array_new_with_free_func (g_free);
  r->figures = g_array_new (FALSE, TRUE, sizeof (Figure));
  g_array_set_clear_func (r->figures, figure_clear);
  r->skips = g_array_new (FALSE, TRUE, sizeof (Skip));
  g_array_set_clear_func (r->skips, skip_clear);
  return r;
}

void
bench_report_free (BenchReport *r)
{
  if (!r)
    return;
  g_ptr_array_unref (r->sections);
  g_array_unref (r->figures);
  g_array_unref (r->skips);
  g_free (r);
}

void
bench_section (Bench *b, const char *section)
{
  BenchReport *r = b->report;
  for (guint i = 0; i < r->sections->len; i++)
    if (g_str_equal (g_ptr_array_index (r->sections, i), section))
      return;
  g_ptr_array_add (r->sections, g_strdup (section));
}

static void
print_header (BenchReport *r)
{
  if (r->header_done)
    return;
  r->header_done = TRUE;
  printf ("%-9s %-34s %12s %-12s %12s %7s  %s\n", "section", "figure", "value", "unit",
          "floor", "of it", "floor from");
}

static gboolean
has_floor (double floor)
{
  return isfinite (floor) && floor > 0;
}

void
bench_figure (Bench *b, const char *section, const char *figure, const char *param_name,
              int param, double value, const char *unit, double floor, const char *floor_basis)
{
  BenchReport *r = b->report;
  bench_section (b, section);
  Figure f = { g_strdup (section), g_strdup (figure), g_strdup (param_name), g_strdup (unit),
               g_strdup (floor_basis), param, value, floor };
  g_array_append_val (r->figures, f);

  print_header (r);
  g_autofree char *name = param_name ? g_strdup_printf ("%s (%s %d)", figure, param_name, param)
                                     : g_strdup (figure);
  /* "of it": how far the figure is from its floor; a rate's floor is a ceiling, a time's
   * a floor, so the share is always measured-effort ÷ ideal-effort inverted to ≤ 100 % */
  char floor_s[32] = "-", share[16] = "-";
  if (has_floor (floor)) {
    g_snprintf (floor_s, sizeof floor_s, "%.4g", floor);
    const gboolean rate = g_str_has_suffix (unit, "/s");
    g_snprintf (share, sizeof share, "%.1f%%", 100.0 * (rate ? value / floor : floor / value));
  }
  printf ("%-9s %-34s %12.4g %-12s %12s %7s  %s\n", section, name, value, unit, floor_s, share,
          has_floor (floor) && floor_basis ? floor_basis : "");
  fflush (stdout);
}

void
bench_skip (Bench *b, const char *section, const char *what, const char *fmt, ...)
{
  BenchReport *r = b->report;
  bench_section (b, section);
  va_list ap;
  va_start (ap, fmt);
  Skip s = { g_strdup (section), g_strdup (what), g_strdup_vprintf (fmt, ap) };
  va_end (ap);
  g_array_append_val (r->skips, s);
  print_header (r);
  printf ("%-9s %-34s skipped: %s\n", section, what, s.reason);
  fflush (stdout);
}

char *
bench_report_json (const Bench *b)
{
  const BenchReport *r = b->report;
  g_autoptr (JsonBuilder) jb = json_builder_new ();
  json_builder_begin_object (jb);
  json_builder_set_member_name (jb, "model");
  json_builder_add_string_value (jb, b->model_desc);
  json_builder_set_member_name (jb, "device");
  json_builder_add_string_value (jb, b->device);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = g_date_time_format_iso8601 (now);
  json_builder_set_member_name (jb, "date");
  json_builder_add_string_value (jb, date);
  const struct { const char *name; double v; } hw[] = {
    { "cpu_bandwidth_gbs", b->cpu_bandwidth_gbs }, { "cpu_peak_gflops", b->cpu_peak_gflops },
    { "gpu_bandwidth_gbs", b->gpu_bandwidth_gbs }, { "gpu_peak_gflops", b->gpu_peak_gflops },
  };
  for (guint i = 0; i < G_N_ELEMENTS (hw); i++) {
    json_builder_set_member_name (jb, hw[i].name);
    json_builder_add_double_value (jb, hw[i].v);
  }
  json_builder_set_member_name (jb, "where");
  json_builder_begin_object (jb);
  const struct { const char *name, *where; } where[] = {
    { "thinker", bench_thinker_where (b) }, { "encoder", bench_encoder_where (b) },
    { "talker", bench_talker_where (b) }, { "vocoder", bench_code2wav_where (b) },
  };
  for (guint i = 0; i < G_N_ELEMENTS (where); i++) {
    json_builder_set_member_name (jb, where[i].name);
    json_builder_add_string_value (jb, where[i].where);
  }
  json_builder_end_object (jb);

  json_builder_set_member_name (jb, "sections");
  json_builder_begin_object (jb);
  for (guint s = 0; s < r->sections->len; s++) {
    const char *section = g_ptr_array_index (r->sections, s);
    json_builder_set_member_name (jb, section);
    json_builder_begin_object (jb);
    json_builder_set_member_name (jb, "figures");
    json_builder_begin_array (jb);
    for (guint i = 0; i < r->figures->len; i++) {
      const Figure *f = &g_array_index (r->figures, Figure, i);
      if (!g_str_equal (f->section, section))
        continue;
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "figure");
      json_builder_add_string_value (jb, f->figure);
      if (f->param_name) {
        json_builder_set_member_name (jb, f->param_name);
        json_builder_add_int_value (jb, f->param);
      }
      json_builder_set_member_name (jb, "value");
      json_builder_add_double_value (jb, f->value);
      json_builder_set_member_name (jb, "unit");
      json_builder_add_string_value (jb, f->unit);
      if (has_floor (f->floor)) {
        json_builder_set_member_name (jb, "floor");
        json_builder_add_double_value (jb, f->floor);
        json_builder_set_member_name (jb, "floor_basis");
        json_builder_add_string_value (jb, f->floor_basis ? f->floor_basis : "");
      }
      json_builder_end_object (jb);
    }
    json_builder_end_array (jb);
    json_builder_set_member_name (jb, "skipped");
    json_builder_begin_array (jb);
    for (guint i = 0; i < r->skips->len; i++) {
      const Skip *k = &g_array_index (r->skips, Skip, i);
      if (!g_str_equal (k->section, section))
        continue;
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "what");
      json_builder_add_string_value (jb, k->what);
      json_builder_set_member_name (jb, "reason");
      json_builder_add_string_value (jb, k->reason);
      json_builder_end_object (jb);
    }
    json_builder_end_array (jb);
    json_builder_end_object (jb);
  }
  json_builder_end_object (jb);
  json_builder_end_object (jb);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (jb);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}
