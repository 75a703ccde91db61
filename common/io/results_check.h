/*
 * results_check.h - structural checks of a results file before it is opened
 * for writing (module common/io, used by results.c).
 *
 * HDF5 1.10 writes into a file opened for writing without being asked: when
 * it opens a dataset whose storage is not allocated (parallel HDF5 allocates
 * it then) and when it closes the file (the superblock, and a driver
 * information block the superblock declares). On a damaged file such a write
 * can fail (a block declared exabytes into the file: "File too large"), and a
 * close that fails leaves a file identifier that HDF5 1.10 can neither use nor
 * release (HDFFV-11052: the process then crashes in MPI_Finalize). So
 * results_open checks the file read-only first, with these functions, and
 * opens it for writing only when none of those writes can reach outside the
 * file.
 */
#ifndef RESULTS_CHECK_H
#define RESULTS_CHECK_H

#include <hdf5.h>

/* Read the HDF5 superblock of `path` with stdio: refused (SC_ERR_FORMAT,
 * message naming the file) when it declares a driver information block (a
 * results file has none) or a superblock extension or root object beyond its
 * end of file. *file_size receives the size in bytes. A file without an HDF5
 * signature, or truncated, passes (HDF5's open refuses it with its own
 * message). */
int results_check_superblock(const char *path, long long *file_size);

/*
 * Open dataset `name` of `file` into *out (caller closes; -1 on error, with
 * nothing left open) and check it against the plan: `rank` dimensions equal
 * to dims, elements of elem_size bytes of class float (is_float) or integer,
 * and, unless empty, storage contiguous, allocated and inside the file's
 * file_size bytes. A missing or different dataset is SC_ERR_FORMAT, the
 * message naming path and the dataset.
 */
int results_check_dataset(hid_t file, const char *name, int rank, const hsize_t *dims,
                          size_t elem_size, int is_float, long long file_size, const char *path,
                          hid_t *out);

#endif
