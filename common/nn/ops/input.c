/*
 * ops/input.c - the network input node (node 0): the image batch itself.
 *
 * Owned by common/nn. nn_forward copies the batch into its output; its
 * position classes are those of the pixel values (posclass_input).
 */
#include "nn/op.h"

const nn_op_def_t nn_op_input = {
    .name = "input",
    .pc = NN_PC_IMAGE,
    .sign = NN_SIGN_ANY,
    .bwd_reads = NN_READS_NOTHING,
};
