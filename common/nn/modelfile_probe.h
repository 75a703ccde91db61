/*
 * modelfile_probe.h - let a child process meet a model file's HDF5 structures
 * first, so that HDF5's own crashes on a corrupt file become errors.
 */
#ifndef NN_MODELFILE_PROBE_H
#define NN_MODELFILE_PROBE_H

typedef enum {
    MODELFILE_PROBE_ATTRS, /* the root attributes (modelfile_get_attr) */
    MODELFILE_PROBE_ALL    /* and every dataset: /graph's storage, /weights read */
} modelfile_probe_depth;

/* Fork a child that makes the HDF5 calls of a load of path (depth: which) and
 * wait for it. 0 when it finished, including when HDF5 refused the file (the
 * caller's own read then says why); SC_ERR_FORMAT with a message naming path
 * when the child crashed or ran out of time; SC_ERR_IO when it could not start. */
int modelfile_probe(const char *path, modelfile_probe_depth depth);

#endif
