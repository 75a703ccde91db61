/*
 * modelfile.h - salcheck model files (HDF5): architecture, weights, provenance.
 *
 * Layout (readable with h5py):
 *   /                 attrs: format="salcheck-model", format_version, salcheck_version,
 *                     arch, normalize, num_classes, input_c, input_h, input_w,
 *                     gradcam_layer, plus provenance key/value strings
 *   /graph            [nodes] strings, one line per node: "op=conv name=... block=...
 *                     in=0 out_c=64 k=7,7 s=2,2 pad=3,3,3,3 bias=0 ..."
 *   /weights/<node>/<kind>   float32 tensors (conv weight [oc,c,kh,kw], dense
 *                     [out,in], BN gamma/beta/running_mean/running_var [c]);
 *                     '/' in a node name is stored as '|'.
 */
#ifndef NN_MODELFILE_H
#define NN_MODELFILE_H

#include <stddef.h>

#include "nn/model.h"

/* Write m to path (overwritten). meta: NULL-terminated list of key, value
 * strings stored as root attributes (provenance), may be NULL. Serial HDF5. */
int modelfile_save(const char *path, const nn_model_t *m, const char *const *meta);

/* Read a model file into a new finalized model (caller owns it: nn_model_destroy). */
int modelfile_load(const char *path, nn_model_t **out);

/* Read one root string attribute into buf; SC_ERR_ARG when absent. */
int modelfile_get_attr(const char *path, const char *key, char *buf, size_t len);

#endif
