/*
 * onnx_import.h - convert ONNX models into salcheck models (common/nn).
 *
 * Reads a ModelProto with protobuf-c (code generated from the onnx.proto of
 * Debian's libonnx-dev) and rebuilds its graph with the model.h node
 * constructors: files exported by torch.onnx.export (opsets 11 to 17) and by
 * Keras-to-ONNX converters (tf2onnx: NHWC input with a Transpose, "SAME"
 * padding, MatMul + Add heads). Supported operators: Conv, BatchNormalization,
 * Relu, MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W,
 * Concat, Add/Sub/Mul/Div (a node and a constant, or two nodes for Add),
 * Gemm, MatMul, Flatten, Reshape/Squeeze (to flatten), Softmax, Sigmoid,
 * Identity, Dropout, Pad (folded into the next Conv or pool), Transpose (of
 * the NHWC input), Constant, and the constant shape arithmetic exporters emit
 * (Shape, Gather, Unsqueeze, Concat, Cast). Vision transformers (token
 * tensors of any rank): LayerNormalization and its decomposed chain, MatMul/
 * Gemm on tokens and between activations, Softmax on any axis, Reshape/
 * Transpose/Flatten/Slice/Gather/Concat on general shapes, the GELU erf chain,
 * the class token and position embedding (onnx_import_tokens.inc). Anything
 * else is an error naming the operator and the node.
 *
 * Blocks for cascading randomization are formed from the node names
 * (onnx_group_blocks); a job file can override them (onnx_apply_block_rules).
 */
#ifndef NN_ONNX_IMPORT_H
#define NN_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"

typedef struct onnx_import_opts {
    /* Input convention recorded in the model (io/image_norm.h): a preset
     * (inception [-1,1], imagenet mean/std on [0,1], unit [0,1], xrv
     * [-1024,1024]) or "scale=... offset=...". NULL: "inception" for Keras
     * converters (tf2onnx, keras2onnx), "imagenet" otherwise; a model whose
     * input is not 3-channel must name one. */
    const char *normalize;
    /* > 0: input height and width (needed when the ONNX input size is symbolic;
     * fully convolutional models with a global pool accept any size). */
    int size;
    /* Block override rules "block = prefix[,prefix]" (see onnx_apply_block_rules). */
    const char *const *block_rules;
    int n_block_rules;
} onnx_import_opts_t;

/* What the importer found, for provenance and the import summary. */
typedef struct onnx_import_info {
    char producer[64];          /* producer_name and version */
    char graph_name[64];
    long ir_version, opset;
    int onnx_nodes;             /* nodes in the ONNX graph */
    int imported_nodes;         /* salcheck nodes created (aliases and folds excluded) */
    char input_layout[8];       /* "NCHW", or "NHWC" when the graph transposes its input */
    char blocks[64];            /* how the blocks were formed */
} onnx_import_info_t;

/* 1 when this build has the protobuf code and can import ONNX files. */
int onnx_import_available(void);

/* Import the ONNX file at `path` into a new finalized model with the ONNX
 * weights. opts and info may be NULL. Caller owns *out (nn_model_destroy).
 * Errors: SC_ERR_IO (unreadable), SC_ERR_FORMAT (not an ONNX model, bad
 * tensors), SC_ERR_UNSUPPORTED (operator or attribute salcheck lacks; the
 * message names the node), SC_ERR_SHAPE. */
int onnx_import_file(const char *path, const onnx_import_opts_t *opts, nn_model_t **out,
                     onnx_import_info_t *info);

/* The same from a serialized ModelProto in memory; `source` names it in messages. */
int onnx_import_buffer(const uint8_t *data, size_t len, const char *source,
                       const onnx_import_opts_t *opts, nn_model_t **out,
                       onnx_import_info_t *info);

/*
 * Group the nodes of m into blocks from their names (imported node names are
 * the ONNX names made into dotted module paths: "/layer4/layer4.1/conv1/Conv"
 * becomes "layer4.1.conv1"). The nodes after the last spatial feature map
 * (global pool, dense, softmax) form "logits". Then, first rule that applies:
 *   1. named merges (Keras): Concat/Add layers named like "mixed0" (or
 *      "mixed0.concat", the operation inside the layer) end a block of that
 *      name; what precedes the first block's branch point is "stem"
 *      (InceptionV3: stem, mixed0 ... mixed10).
 *   2. module paths: nodes are grouped by their leading path components, one
 *      level deeper inside a group that holds most of the network
 *      ("layer1".."layer4"; "features.denseblock1", "features.transition1",
 *      ...). Single modules before the first group form "stem"; later ones
 *      join the group before them (DenseNet's norm5 joins denseblock4).
 *   3. otherwise one block "features".
 * Also sets m->gradcam_layer to the last spatial feature map when it is empty.
 * `how` (may be NULL) receives a short description. Returns the block count.
 */
int onnx_group_blocks(nn_model_t *m, char *how, size_t how_len);

/*
 * Override the blocks of m: each rule is "block = prefix[,prefix...]"; a node
 * whose name starts with a prefix (the longest matching prefix over all
 * rules wins) moves to that block; other nodes keep theirs. Works on any
 * model (imported or built). Returns the number of nodes moved, or
 * SC_ERR_ARG for a malformed rule or a prefix that matches no node (the
 * message quotes the rule).
 */
int onnx_apply_block_rules(nn_model_t *m, const char *const *rules, int n_rules);

#endif
