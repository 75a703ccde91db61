/*
 * run_verify.h - the cell checksums checked when `salcheck run --resume`
 * reopens a results file (driver, used by cmd_run.c).
 */
#ifndef RUN_VERIFY_H
#define RUN_VERIFY_H

#include <mpi.h>
#include <stdint.h>

#include "io/results.h"
#include "plan.h"

/*
 * Verify every finished cell of the reopened file (done [V*N], the done
 * flags read from it). A cell whose stored data no longer matches its
 * checksum is reported (the file, its variant and image), its done flag is
 * cleared in done and in the file, and the run computes it again; the run
 * then says how many cells it recomputes. Returns 0 or a negative error.
 * COLLECTIVE.
 */
int run_verify_resumed(results_t *res, const plan_t *p, uint8_t *done, const char *path,
                       MPI_Comm comm);

#endif
