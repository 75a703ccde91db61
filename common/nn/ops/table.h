/*
 * ops/table.h - the list of node kinds: one line per op, in the order of nn_op.
 *
 * Owned by common/nn. X(id, def) names the enum constant NN_<id> (model.h)
 * and the definition nn_op_<def> its file exports (ops/<def>.c; max and
 * average pooling share ops/pool.c, the two GELU forms ops/gelu.c);
 * ops/table.c turns the list into the table nn_op_def() reads. Adding an op is one line here,
 * the file ops/<def>.c and its mapping in the ONNX importer.
 */
#ifndef NN_OPS_TABLE_H
#define NN_OPS_TABLE_H

#define NN_OP_LIST(X) \
    X(INPUT, input)     \
    X(CONV, conv)       \
    X(BN, bn)           \
    X(RELU, relu)       \
    X(MAXPOOL, maxpool) \
    X(AVGPOOL, avgpool) \
    X(GAP, gap)         \
    X(DENSE, dense)     \
    X(CONCAT, concat)   \
    X(ADD, add)         \
    X(FLATTEN, flatten) \
    X(SOFTMAX, softmax) \
    X(SIGMOID, sigmoid) \
    X(SILU, silu)       \
    X(HARDSWISH, hardswish) \
    X(HARDSIGMOID, hardsigmoid) \
    X(RELU6, relu6)     \
    X(GELU, gelu)       \
    X(GELU_TANH, gelu_tanh) \
    X(MUL, mul)         \
    X(GCONV, gconv)     \
    X(CHSLICE, chslice) \
    X(SHUFFLE, shuffle) \
    X(RESHAPE, reshape) \
    X(TRANSPOSE, transpose) \
    X(PARAM, param)     \
    X(CONCAT_AXIS, concat_axis) \
    X(SLICE, slice)     \
    X(SCALE, scale)     \
    X(LINEAR, linear)   \
    X(MATMUL, matmul)   \
    X(LAYERNORM, layernorm) \
    X(SOFTMAX_AXIS, softmax_axis) \
    X(ERF, erf)         \
    X(SQRT, sqrt)       \
    X(POW, pow)         \
    X(BCAST_ADD, bcast_add)

#endif
