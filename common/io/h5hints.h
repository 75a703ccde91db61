/*
 * h5hints.h - MPI-IO hints and HDF5 file-access settings for the results file
 * on parallel file systems (Lustre, GPFS); see h5hints.c for what is set and
 * the environment variables that tune it.
 */
#ifndef IO_H5HINTS_H
#define IO_H5HINTS_H

#include <hdf5.h>
#include <mpi.h>

/* A file access property list for parallel HDF5 over comm: the MPI-IO driver
 * with the hints of SALCHECK_MPIIO_HINTS, the alignment of SALCHECK_H5_ALIGN
 * (default: objects >= 4 MiB on 1 MiB boundaries) and collective metadata
 * writes. Returns the list (caller closes it with H5Pclose) or a negative
 * id. Every rank of comm passes the same environment. */
hid_t h5hints_fapl(MPI_Comm comm);

/* "THRESHOLD:ALIGNMENT" (bytes) or "0" (no alignment; *alignment = 1); NULL
 * or "" gives the defaults. Returns 0 or SC_ERR_ARG. */
int h5hints_parse_align(const char *text, unsigned long long *threshold,
                        unsigned long long *alignment);

/* MPI_Info from "key=value;key=value" (MPI_INFO_NULL for NULL or ""). The
 * caller frees a non-null *info with MPI_Info_free. Returns 0 or SC_ERR_ARG
 * (logged) with *info = MPI_INFO_NULL. */
int h5hints_info(const char *text, MPI_Info *info);

#endif
