/*
 * concat_view.h - channel concatenations without a buffer of their own (the
 * memory-efficient DenseNet layout).
 *
 * Owned by common/nn. A concat node whose only reader is a batch
 * normalization (DenseNet's norm1 of every dense layer, the transition's norm
 * and norm5) needs no copy: the BN reads each channel where the concat's input
 * that holds it left it, and its backward accumulates each channel's gradient
 * straight into that input's gradient. The memory plan (nn/memplan.h) gives
 * such a concat ("a view") no output and no gradient buffer and keeps its
 * inputs alive as long as the BN needs them; the concat's own forward and
 * backward do nothing. Results are bit-identical to the copying path: the BN
 * reads the same values, and every input gradient receives the same
 * contributions in the same order (the view's single reader comes before any
 * other reader of its inputs in the backward; a fresh input gradient is zeroed
 * and then added to, the bits of the copying backward's 0 + dy).
 */
#ifndef NN_CONCAT_VIEW_H
#define NN_CONCAT_VIEW_H

#include <stddef.h>

#include "nn/model.h"

/* May concat node id be a view? Needs: a channel concat of c x h x w maps,
 * not pinned (memplan.h), inputs that are neither the network input nor
 * concats, exactly one reader, a BN, and no node between the concat and that
 * BN that reads one of the concat's inputs (so the backward adds the
 * gradients in the copying path's order). */
int nn_cview_eligible(const nn_model_t *m, int id);

/*
 * Per-channel access to the output (and gradient) of node src, c x hw per
 * sample, for a reader that works channel by channel: channel ch of sample b
 * starts at x[ch] + b * step[ch] (and dx[ch] + b * step[ch]). For an ordinary
 * node these are the offsets into its buffers; for a view (nd->cview) they
 * point into the buffers of the concat's inputs. With dx non-NULL the
 * gradients are taken for accumulation: *assign is 1 when the caller may
 * overwrite (an ordinary node's first contribution in this pass, as
 * nn_grad_dst), 0 otherwise (a view's fresh input gradients are zeroed here).
 * x, dx and step have room for the node's c channels (caller-owned).
 */
void nn_cview_bind(nn_model_t *m, int src, const float **x, float **dx, size_t *step,
                   int *assign);

#endif
