/*
 * fuzz_modelfile.c - libFuzzer harness: salcheck model files (HDF5,
 * common/nn/modelfile.c).
 *
 * The input is a model file as written by salcheck train / import. It is
 * loaded (graph lines, attributes, weight shapes) and one attribute is read.
 * Both first let a forked child meet the file's HDF5 structures
 * (modelfile_probe.c), so HDF5's own crashes on a corrupt file are errors
 * here as for a user; salcheck's parsing runs in this process, under the
 * fuzzer's coverage and sanitizers.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzzhelp.h"
#include "nn/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[600];
    if (!path[0]) {
        fuzz_quiet();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        fuzz_path("model.h5", path, sizeof path);
    }
    fuzz_write(path, data, size);
    nn_model_t *m = NULL;
    if (modelfile_load(path, &m) == 0)
        nn_model_destroy(m);
    char arch[64];
    modelfile_get_attr(path, "arch", arch, sizeof arch);
    FUZZ_CHECK_H5_CLOSED();
    return 0;
}
