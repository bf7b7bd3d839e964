/* qomni — the subcommands of the `qomni` program, one file each under tools/.
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status: 0 done, 1 failed, 2 bad usage. */
#pragma once

int qomni_cmd_bench (int argc, char **argv);
int qomni_cmd_convert (int argc, char **argv);
int qomni_cmd_generate (int argc, char **argv);
int qomni_cmd_mkmodel (int argc, char **argv);
