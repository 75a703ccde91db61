/*
 * posclass.h - position classes: which positions of a feature map have
 * identical receptive fields, so that exact arithmetic gives them equal values.
 *
 * Owned by common/nn. Real radiographs have flat regions (the black border
 * outside the collimation, zero padding to a square, the constant image at
 * the start of every Integrated Gradients path). Inside such a region every
 * convolution output has the same receptive field, so PyTorch (float32 and
 * float64) computes the same value at each position, and max pooling routes
 * the gradient to the FIRST maximal element of the window in scan order.
 * A GEMM kernel, however, may compute a column differently depending on
 * where it falls in its register tile (OpenBLAS's Haswell kernels do; its
 * AVX-512 kernels do for small matrices), so equal receptive fields get
 * values that differ in the last bits, max pooling picks another element,
 * and the input gradient changes over the whole receptive field.
 *
 * The rule salcheck follows: two positions of a feature map are in one class
 * when their receptive fields in the network input are identical, cell by
 * cell (padding included); after every GEMM-based layer each position takes
 * the value computed at the first position of its class (scan order), so a
 * class holds bit-identical values and ties are exact ties, resolved by the
 * first-maximum rule of nn/pool.c. The classes are exact (tuples are compared,
 * not only hashed); they depend only on the input image and the graph, not on
 * the batch size, the rank, the thread count or the BLAS kernel.
 *
 * Representation: rep[p] is the first position (in scan order) of p's class,
 * so rep[p] <= p and rep[rep[p]] == rep[p]. A map without any repeated class
 * is not stored: the functions return 0 ("all distinct") and leave rep
 * undefined, which keeps textured images free of any cost.
 */
#ifndef NN_POSCLASS_H
#define NN_POSCLASS_H

#include <stddef.h>
#include <stdint.h>

/* Entries of the int32 hash table the functions below need for maps of up to hw positions. */
size_t posclass_table_size(size_t hw);

/*
 * Classes of an input image x[c][hw]: positions whose c values are equal
 * (as numbers: -0 equals +0). Returns 1 when some class has two or more
 * positions (rep filled), 0 when all positions are distinct.
 */
int posclass_input(int c, int hw, const float *x, int32_t *rep, int32_t *table);

/*
 * Classes of a windowed layer's output (convolution, pooling): output
 * (oy, ox) sees input cells (oy*sh - pt + ky, ox*sw - pl + kx); cells outside
 * [0,h) x [0,w) are padding, one class of their own. in_dup/in_rep describe
 * the input map. Returns the duplicate flag of the output as above.
 */
int posclass_window(int in_dup, const int32_t *in_rep, int h, int w, int kh, int kw, int sh,
                    int sw, int pt, int pl, int oh, int ow, int32_t *out_rep, int32_t *table);

/*
 * Classes of a layer that combines k maps of hw positions position by
 * position (addition, concatenation): the tuple of the inputs' classes.
 */
int posclass_combine(int k, const int *in_dup, const int32_t *const *in_rep, int hw,
                     int32_t *out_rep, int32_t *table);

/* y[ch][p] = y[ch][rep[p]] for every channel and every p with rep[p] != p.
 * scratch: posclass_table_size(hw) entries (the table above serves), for the
 * runs of positions with one representative, each filled with one value. */
void posclass_apply(float *y, int c, int hw, const int32_t *rep, int32_t *scratch);

#endif
