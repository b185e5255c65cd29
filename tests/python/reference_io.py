# The Python side of tests/torch_reference.h: a reference script calls
# main({"name": function}) and is run as  script.py NAME IN.pt OUT.pt ; the function
# gets the dict of tensors the C++ test wrote and returns a dict of tensors.
import sys

import torch


def main(functions):
    name, in_path, out_path = sys.argv[1:4]
    if name not in functions:
        sys.exit("unknown reference function %r; expected one of %s" % (name, sorted(functions)))
    # weights_only=False: IN.pt is torch::pickle_save's, whose dict is tagged with
    # torch.jit._pickle.restore_type_tag, a global torch.load refuses by default from torch 2.6
    # (weights_only=True). The argument exists from torch 1.13 (Debian's python3-torch).
    inputs = torch.load(in_path, weights_only=False)
    outputs = functions[name](inputs)
    torch.save({k: v.detach().contiguous() for k, v in outputs.items()}, out_path)
