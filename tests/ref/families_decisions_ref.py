#!/usr/bin/python3
"""A family of families_torch_ref.py in float64 with the engine's ReLU and
max-pool decisions, for tests/unit/test_families.c's long form.

usage: families_decisions_ref.py ARCH SIZE SEED INPUT.f32 TARGET MASKS.u8 ARGMAX.i32 OUT.f32

The network is built again as families_torch_ref.py builds it (the same
seed gives the same weights). Every nn.ReLU and nn.MaxPool2d module goes
through zoo_torch_ref.DECISIONS in execution order: the float64 pass takes
the engine's decisions (ReLU on/off pattern, max-pool argmax, written by the
test in its node order), so a near-tie that float32 decides otherwise than
float64 does not count against the engine; a float32 pass with PyTorch's own
decisions counts where those differ from the engine's. OUT.f32: the 2
logits and the input gradient of logit TARGET (float64, followed). Prints
"relu_flips N" and "pool_flips N" (PyTorch float32 against the engine). Exits
non-zero when the decisions do not line up with the network (the graphs
differ).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    if len(sys.argv) != 9:
        raise SystemExit(__doc__)
    import torch
    import families_torch_ref
    import zoo_torch_ref as z
    torch.set_num_threads(1)
    arch, size, seed, inp, target, mask_path, argmax_path, out = sys.argv[1:9]
    size, target = int(size), int(target)
    model = z.route_decisions(families_torch_ref.build(arch, size, int(seed)))
    x0 = np.fromfile(inp, dtype=np.float32).reshape(1, 3, size, size)
    z.DECISIONS.masks = np.fromfile(mask_path, dtype=np.uint8)
    z.DECISIONS.argmax = np.fromfile(argmax_path, dtype=np.int32)
    res = []
    for dtype, mode in ((torch.float64, "masked"), (torch.float32, "record")):
        model = model.to(dtype).eval()
        x = torch.tensor(x0, dtype=dtype, requires_grad=True)
        z.DECISIONS.start(mode)
        logits = model(x)
        z.DECISIONS.finish()
        logits[0, target].backward()
        if dtype == torch.float64:
            res = [logits.detach().numpy().ravel(), x.grad.numpy().ravel()]
    print("relu_flips %d" % z.DECISIONS.flips)
    print("pool_flips %d" % z.DECISIONS.pool_flips)
    np.concatenate(res).astype(np.float32).tofile(out)


if __name__ == "__main__":
    main()
