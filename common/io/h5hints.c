/*
 * h5hints.c - MPI-IO hints and HDF5 file-access settings for the shared
 * results file on parallel file systems (module common/io, prefix h5hints_).
 *
 * What is set (README "Parallel file systems" and bench/README.md):
 *   - alignment: HDF5 objects of at least `threshold` bytes start on a
 *     multiple of `alignment` bytes (H5Pset_alignment), so that a rank's
 *     hyperslab of /maps does not share a Lustre stripe or a GPFS block with
 *     the small metadata objects. Default: objects >= 4 MiB on 1 MiB
 *     boundaries (Lustre's default stripe size, a GPFS block divisor);
 *     SALCHECK_H5_ALIGN="THRESHOLD:ALIGNMENT" in bytes overrides it, "0"
 *     turns it off.
 *   - collective metadata writes (H5Pset_coll_metadata_write): HDF5 writes
 *     its metadata cache with one collective MPI-IO call at flush and close
 *     instead of small independent writes from one rank. Metadata reads stay
 *     independent: workers read back maps independently in the pair phase,
 *     and all-collective metadata reads would require every rank to take part
 *     in each of them.
 *   - hints passed through to MPI-IO: SALCHECK_MPIIO_HINTS="key=value;..."
 *     (Lustre: striping_factor, striping_unit applied when the file is
 *     created; ROMIO: romio_cb_write, romio_ds_write, cb_nodes,
 *     cb_buffer_size; GPFS: IBM_largeblock_io). Unknown keys are ignored by
 *     the MPI library, as the MPI standard requires.
 */
#include "io/h5hints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

#define H5HINTS_THRESHOLD (4u << 20)
#define H5HINTS_ALIGNMENT (1u << 20)

int h5hints_parse_align(const char *text, unsigned long long *threshold,
                        unsigned long long *alignment)
{
    *threshold = H5HINTS_THRESHOLD;
    *alignment = H5HINTS_ALIGNMENT;
    if (!text || !*text)
        return 0;
    char *end = NULL;
    unsigned long long t = strtoull(text, &end, 10);
    if (end == text)
        return SC_ERR_ARG;
    if (*end == 0 && t == 0) {
        *threshold = 0;
        *alignment = 1;
        return 0;
    }
    if (*end != ':')
        return SC_ERR_ARG;
    const char *rest = end + 1;
    unsigned long long a = strtoull(rest, &end, 10);
    if (end == rest || *end != 0 || a == 0)
        return SC_ERR_ARG;
    *threshold = t;
    *alignment = a;
    return 0;
}

int h5hints_info(const char *text, MPI_Info *info)
{
    *info = MPI_INFO_NULL;
    if (!text || !*text)
        return 0;
    char *copy = strdup(text);
    if (!copy)
        return SC_ERR_NOMEM;
    int rc = 0;
    MPI_Info_create(info);
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) {
            SC_WARN("SALCHECK_MPIIO_HINTS ignored: '%s' is not key=value (example: "
                     "\"striping_factor=16;striping_unit=4194304\")", tok);
            rc = SC_ERR_ARG;
            break;
        }
        *eq = 0;
        MPI_Info_set(*info, tok, eq + 1);
    }
    free(copy);
    if (rc < 0) {
        MPI_Info_free(info);
        *info = MPI_INFO_NULL;
    }
    return rc;
}

hid_t h5hints_fapl(MPI_Comm comm)
{
    unsigned long long threshold, alignment;
    const char *align_env = getenv("SALCHECK_H5_ALIGN");
    if (h5hints_parse_align(align_env, &threshold, &alignment) < 0) {
        SC_WARN("SALCHECK_H5_ALIGN='%s' is not THRESHOLD:ALIGNMENT in bytes (or 0); using "
                "%u:%u", align_env, H5HINTS_THRESHOLD, H5HINTS_ALIGNMENT);
        threshold = H5HINTS_THRESHOLD;
        alignment = H5HINTS_ALIGNMENT;
    }
    MPI_Info info = MPI_INFO_NULL;
    if (h5hints_info(getenv("SALCHECK_MPIIO_HINTS"), &info) < 0)
        info = MPI_INFO_NULL; /* reported; the file still opens, without the hints */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        goto done;
    if (H5Pset_fapl_mpio(fapl, comm, info) < 0 ||
        (alignment > 1 && H5Pset_alignment(fapl, (hsize_t)threshold, (hsize_t)alignment) < 0) ||
        H5Pset_coll_metadata_write(fapl, 1) < 0) {
        H5Pclose(fapl);
        fapl = -1;
    }
done:
    if (info != MPI_INFO_NULL)
        MPI_Info_free(&info); /* HDF5 keeps its own copy */
    return fapl;
}
