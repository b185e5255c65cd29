# A reference for the harness's own test (test_torch_reference.cpp).
import torch

from reference_io import main


def softmax_sum(d):
    x = d["x"].clone().requires_grad_(True)
    loss = (torch.softmax(x, 1) * d["w"]).sum()
    loss.backward()
    return {"loss": loss, "grad_x": x.grad}


main({"softmax_sum": softmax_sum})
