/*
 * modelfile_graph.h - a model file's /graph node lines, read without HDF5's
 * variable-length string conversion (which a corrupt heap crashes).
 */
#ifndef NN_MODELFILE_GRAPH_H
#define NN_MODELFILE_GRAPH_H

#include <hdf5.h>
#include <stddef.h>

/* Read the strings of the open dataset dset (/graph of the file at path, open
 * as file) into *lines_out, *count_out of them, every length, heap address
 * and object index checked against the file. The caller owns the lines:
 * modelfile_graph_free. A damaged file is SC_ERR_FORMAT with a message naming
 * path. */
int modelfile_graph_read(hid_t file, hid_t dset, const char *path, char ***lines_out,
                         size_t *count_out);

void modelfile_graph_free(char **lines, size_t count);

#endif
