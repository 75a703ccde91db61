/*
 * bench_cascade.c - how much of a cascading-randomization audit repeats the
 * same work: the forward FLOPs below the re-initialized blocks of each state.
 *
 * For a zoo architecture and the cascade of jobs/arun2021-rsna.ini (top-down:
 * logits, mixed10, ..., mixed1 for InceptionV3; the zoo's own top-down block
 * order otherwise), state k re-initializes the top k blocks; every node below
 * the lowest of them computes the activations of the trained model. Prints,
 * per state, the forward FLOPs that must be recomputed and the share that a
 * reuse of the trained model's lower activations would skip, for gradient
 * maps (forward + input-gradient backward, the backward counted as the
 * forward's GEMM FLOPs again: it still runs through every layer) and for
 * forward-only maps (occlusion, RISE). No timing: the FLOP counts of the
 * op table (nn_forward_flops' per-node costs).
 *
 *   bench_cascade [arch] [size]       (default inceptionv3 299)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/zoo.h"
#include "sc.h"

int main(int argc, char **argv)
{
    const char *arch = argc > 1 ? argv[1] : "inceptionv3";
    int size = argc > 2 ? atoi(argv[2]) : 299;
    nn_model_t *m = NULL;
    if (zoo_build(arch, size, 2, 1, &m) < 0)
        return 1;
    const char *blocks[64];
    int nb = zoo_blocks_top_down(m, blocks, 64);
    /* the paper's cascade: the top 11 blocks (logits, mixed10 .. mixed1 for InceptionV3) */
    int states = nb - 1 < 11 ? nb - 1 : 11;
    double total = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
        total += def->flops ? def->flops(m, &m->nodes[i]) : 0.0;
    }
    printf("%s at %d: forward %.2f GFLOP per image; cascade of %d states (top-down)\n\n", arch,
           size, total * 1e-9, states);
    printf("| state | re-initialized down to | forward GFLOP recomputed | share of forward |\n");
    printf("|---|---|---|---|\n");
    double grad_alone = 0.0, grad_reuse = 0.0, fwd_alone = 0.0, fwd_reuse = 0.0;
    for (int k = 1; k <= states; k++) {
        /* the first node of any of the top k blocks */
        int first = m->n_nodes;
        for (int b = 0; b < k; b++)
            for (int i = 1; i < m->n_nodes; i++)
                if (!strcmp(m->nodes[i].block, blocks[b]) && i < first)
                    first = i;
        double upper = 0.0;
        for (int i = first; i < m->n_nodes; i++) {
            const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
            upper += def->flops ? def->flops(m, &m->nodes[i]) : 0.0;
        }
        printf("| %d | %s | %.2f | %.0f%% |\n", k, blocks[k - 1], upper * 1e-9,
               100.0 * upper / total);
        grad_alone += 2.0 * total;
        grad_reuse += upper + total;
        fwd_alone += total;
        fwd_reuse += upper;
    }
    printf("\ngradient maps: the cascade with reuse costs %.0f%% of computing each state alone\n",
           100.0 * grad_reuse / grad_alone);
    printf("forward-only maps: %.0f%%\n", 100.0 * fwd_reuse / fwd_alone);
    nn_model_destroy(m);
    return 0;
}
