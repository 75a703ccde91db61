/*
 * fuzz_onnx.c - libFuzzer harness: ONNX import (common/nn/onnx_import.c on
 * protobuf-c).
 *
 * The input is a serialized ModelProto; the importer parses it, checks the
 * operators, attributes and tensor sizes, builds and finalizes the graph.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzzhelp.h"
#include "nn/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        fuzz_quiet();
        init = 1;
    }
    nn_model_t *m = NULL;
    onnx_import_info_t info;
    if (onnx_import_buffer(data, size, "fuzz.onnx", NULL, &m, &info) == 0)
        nn_model_destroy(m);
    return 0;
}
