/* qomni-convert — `qomni convert` as a program of its own, for tests and for use before the
 * main `qomni` program links it. */
#include "commands.h"

int
main (int argc, char **argv)
{
  return qomni_cmd_convert (argc, argv);
}
