/* qomni — command-line entry point: run a prompt without GStreamer, make models. */
#include "commands.h"

#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "generate", qomni_cmd_generate, "run a prompt through the thinker and stream the answer" },
  { "mkmodel", qomni_cmd_mkmodel, "write a random-weight checkpoint in the release layout" },
  { "bench", qomni_cmd_bench, "measure prefill and decode speed with random weights" },
  { "convert", qomni_cmd_convert, "write a checkpoint as GGUF, quantized to Q8_0 or Q4_0" },
};

static void
usage (FILE *out)
{
  fprintf (out, "usage: qomni COMMAND [OPTIONS]\n\ncommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\n'qomni COMMAND --help' describes a command's options.\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    usage (argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  fprintf (stderr, "qomni: unknown command '%s'\n\n", argv[1]);
  usage (stderr);
  return 2;
}
