/*
 * run_verify.c - checksums of finished cells on --resume (run_verify.h).
 *
 * Silent corruption (a shared file system that loses or garbles a block, a
 * disk error) would otherwise go into the summary unnoticed. The cells are
 * read back spread over the ranks, so the check costs one read of the
 * finished maps divided by the rank count.
 */
#include "run_verify.h"

#include <stdlib.h>

#include "sc.h"

int run_verify_resumed(results_t *res, const plan_t *p, uint8_t *done, const char *path,
                       MPI_Comm comm)
{
    int rank = 0, rc = 0;
    MPI_Comm_rank(comm, &rank);
    if (!results_has_checksums(res)) {
        if (rank == 0)
            SC_INFO("'%s' has no cell checksums (made by an older salcheck): finished cells are "
                    "kept unverified", path);
        return 0;
    }
    const long cells = (long)p->n_variants * p->n_images;
    uint8_t *bad = calloc((size_t)cells + 1, 1);
    if (!bad)
        return SC_ERR_NOMEM;
    double t0 = sc_now();
    int n_bad = results_verify_cells(res, done, bad);
    long n_done = 0;
    for (long q = 0; q < cells; q++)
        n_done += done[q] != 0;
    if (n_bad < 0) {
        rc = n_bad;
        if (rank == 0)
            SC_ERROR("'%s': the finished cells could not be verified", path);
        goto cleanup;
    }
    for (long q = 0; q < cells; q++) {
        if (!bad[q])
            continue;
        int v = (int)(q / p->n_images), i = (int)(q % p->n_images);
        done[q] = 0;
        if (rank == 0) {
            SC_WARN("'%s': cell (variant %s, image %s) does not match its checksum (the stored "
                    "data is corrupt): it is computed again", path, p->variants[v].name, p->ids[i]);
            if (results_clear_done(res, v, i) < 0 && rc == 0)
                rc = SC_ERR_H5;
        }
    }
    if (rank == 0)
        SC_INFO("checksums of %ld finished cells verified in %.1f s: %d corrupt%s", n_done,
                sc_now() - t0, n_bad, n_bad ? ", computed again" : "");
cleanup:
    free(bad);
    return rc;
}
