// The common base of every zoo model: an image classifier mapping [B, C, H, W]
// to logits [B, classes]. One virtual forward lets make_model() hand out any
// family behind one pointer that is also a torch::nn::Module (parameters,
// train()/eval(), to(), save/load). Only <torch/nn/module.h>, not <torch/torch.h>,
// so that model_factory.h stays light for the pipelines that include it.
#pragma once
#include <torch/nn/module.h>

namespace dtokd {

struct ClassifierImpl : torch::nn::Module {
    virtual torch::Tensor forward(torch::Tensor x) = 0;
};

}  // namespace dtokd
