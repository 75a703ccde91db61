"""Shared parts of the token-model references (vit_torch_ref.py, swin_torch_ref.py,
train_import_ref.py): weights moved away from their initial values, the ONNX
export with the weights beside it, loading them back, and the command line.

Torch is imported inside the functions, so that a script's usage text prints
without it.
"""
import sys

# The ViT's parameters: layer norms ("ln", "norm"), the class token and the
# position embedding, the classification head ("heads").
VIT_NORMS = ("ln", "norm")
VIT_EMBEDDINGS = ("class_token", "encoder.pos_embedding")
VIT_HEAD = "heads"


def perturb(model, norms=VIT_NORMS, embedded=lambda name: name in VIT_EMBEDDINGS,
            head=VIT_HEAD):
    """Moves every layer-norm weight (a name containing one of norms) to
    uniform [0.5, 1.5), every bias to N(0, 0.1), the embeddings (names for
    which embedded(name) holds) to N(0, 0.5) and the head's other parameters
    to N(0, 0.2), in the order of named_parameters, from torch's generator."""
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(k in name for k in norms) and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif embedded(name):
                p.normal_(0.0, 0.5)
            elif name.startswith(head):
                p.normal_(0.0, 0.2)
    return model


def export_onnx(model, size, out, opset):
    """Eval mode; the weights to OUT.pt (out without its .onnx), then
    torch.onnx.export with its defaults at opset on a random 1x3xSIZExSIZE input."""
    import torch
    model.eval()
    torch.save(model.state_dict(), out[:-5] + ".pt")
    x = torch.rand(1, 3, size, size)
    torch.onnx.export(model, x, out, opset_version=int(opset))


def load(model, path, dtype):
    """model with the weights of path (an OUT.pt of export_onnx), as dtype, in eval mode."""
    import torch
    model.load_state_dict(torch.load(path))
    return model.to(dtype).eval()


def command_line(doc, commands):
    """Runs commands[argv[1]] = (function, number of arguments) on the
    arguments that follow; else exits with doc."""
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd in commands and len(sys.argv) == 2 + commands[cmd][1]:
        commands[cmd][0](*sys.argv[2:])
    else:
        sys.exit(doc)
