/*
 * ops/table.c - the op table: every node kind's definition, indexed by nn_op.
 *
 * Owned by common/nn. The entries come from NN_OP_LIST (ops/table.h).
 */
#include "nn/op.h"

#include <string.h>

#define NN_OP_EXTERN(id, file) extern const nn_op_def_t nn_op_##file;
NN_OP_LIST(NN_OP_EXTERN)
#undef NN_OP_EXTERN

#define NN_OP_ENTRY(id, file) [NN_##id] = &nn_op_##file,
static const nn_op_def_t *const op_table[NN_OP_COUNT] = {NN_OP_LIST(NN_OP_ENTRY)};
#undef NN_OP_ENTRY

const nn_op_def_t *nn_op_def(nn_op op) { return op < NN_OP_COUNT ? op_table[op] : NULL; }

const char *nn_op_name(nn_op op) { return op < NN_OP_COUNT ? op_table[op]->name : "?"; }

nn_op nn_op_from_name(const char *name)
{
    for (int i = 0; i < NN_OP_COUNT; i++)
        if (!strcmp(name, op_table[i]->name))
            return (nn_op)i;
    return NN_OP_COUNT;
}
