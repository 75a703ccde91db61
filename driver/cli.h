/*
 * cli.h - the salcheck subcommands. Each lives in driver/cmd_<name>.c and is
 * called by main() after MPI_Init with argv[0] = the subcommand name. A
 * subcommand returns 0 on success, non-zero on failure (it has already
 * printed the error); main() decides between a clean exit and MPI_Abort.
 */
#ifndef CLI_H
#define CLI_H

/* Subcommand exit statuses. */
#define CLI_OK 0
#define CLI_FAIL_ALL 1      /* every rank failed the same way (bad job file...): clean exit */
#define CLI_FAIL_RANK 2     /* this rank failed alone: main() aborts the MPI job */
#define CLI_INTERRUPTED 3   /* stopped by a signal after flushing: rerun with --resume */

/* Declared weak so that main() can say which subcommands this build lacks. */
int cmd_phantom(int argc, char **argv) __attribute__((weak));
int cmd_train(int argc, char **argv) __attribute__((weak));
int cmd_run(int argc, char **argv) __attribute__((weak));
int cmd_report(int argc, char **argv) __attribute__((weak));
int cmd_import(int argc, char **argv) __attribute__((weak));
int cmd_info(int argc, char **argv) __attribute__((weak));
int cmd_explain(int argc, char **argv) __attribute__((weak));

#endif
