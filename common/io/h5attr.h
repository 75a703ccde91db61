/*
 * h5attr.h - scalar HDF5 attributes: strings and doubles, written and read
 * the same way by every salcheck file (model files, checkpoints, explain
 * output), and the checked close of a file that was written.
 */
#ifndef SALCHECK_H5ATTR_H
#define SALCHECK_H5ATTR_H

#include <hdf5.h>
#include <stddef.h>

/* A fixed-length, NUL-terminated UTF-8 string (h5py returns it as bytes); an
 * existing attribute of that name is replaced. 0 or SC_ERR_H5. */
int h5attr_write_str(hid_t obj, const char *key, const char *value);
/* A string attribute, fixed or variable length, into buf. 0, SC_ERR_ARG when
 * it does not exist, SC_ERR_FORMAT when it is not a readable string. */
int h5attr_read_str(hid_t obj, const char *key, char *buf, size_t len);
/* A float64 scalar; an existing attribute of that name is replaced. */
int h5attr_write_f64(hid_t obj, const char *key, double value);
/* 0, SC_ERR_ARG when it does not exist, SC_ERR_FORMAT when unreadable. */
int h5attr_read_f64(hid_t obj, const char *key, double *value);

/* Closes a file opened for writing. HDF5 writes the file's own metadata at
 * close, so a full disk or quota can fail there after every dataset was
 * written: the failure is logged naming the file and what was written into it
 * (`what`, e.g. "the training checkpoint"), with the system's reason when
 * known. The identifier is released either way. 0 or SC_ERR_IO; file < 0 is 0. */
int h5file_close(hid_t file, const char *path, const char *what);

#endif
