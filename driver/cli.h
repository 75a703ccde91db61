/*
 * cli.h - the salcheck subcommands. Each lives in driver/cmd_<name>.c and is
 * called by main() after MPI_Init with argv[0] = the subcommand name. A
 * subcommand returns 0 on success, non-zero on failure (it has already
 * printed the error); main() decides between a clean exit and MPI_Abort.
 */
#ifndef CLI_H
#define CLI_H

/* Declared weak so that main() can say which subcommands this build lacks. */
int cmd_phantom(int argc, char **argv) __attribute__((weak));
int cmd_train(int argc, char **argv) __attribute__((weak));
int cmd_run(int argc, char **argv) __attribute__((weak));
int cmd_report(int argc, char **argv) __attribute__((weak));
int cmd_import(int argc, char **argv) __attribute__((weak));
int cmd_info(int argc, char **argv) __attribute__((weak));
int cmd_explain(int argc, char **argv) __attribute__((weak));

#endif
