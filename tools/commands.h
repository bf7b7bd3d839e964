/* qomni — the subcommands of the `qomni` program, one file each. Each returns the exit
 * status: 0 success, 1 a runtime failure (message printed), 2 a usage error. */
#pragma once

int qomni_cmd_generate (int argc, char **argv);
int qomni_cmd_mkmodel (int argc, char **argv);
int qomni_cmd_bench (int argc, char **argv);
