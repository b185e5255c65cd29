// A student with one stage, for tests of whole steps: conv(2 -> width, 3x3) -> ReLU is
// feats[0]; mean pool -> linear(width -> classes) is the logits.
#pragma once
#include <torch/torch.h>

#include "objective.h"

struct TinyConvImpl : torch::nn::Module {
    explicit TinyConvImpl(int64_t width = 3, int64_t classes = 3)
        : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, width, 3).padding(1)))),
          fc(register_module("fc", torch::nn::Linear(width, classes))) {}
    dtokd::NetOutputs forward(const torch::Tensor &x) {
        dtokd::NetOutputs out;
        const torch::Tensor f = torch::relu(conv(x));
        out.feats = {f};
        out.logits = fc(f.mean({2, 3}));
        return out;
    }
    torch::nn::Conv2d conv;
    torch::nn::Linear fc;
};
TORCH_MODULE(TinyConv);
