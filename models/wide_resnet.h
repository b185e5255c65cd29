// Wide ResNets of RepDistiller/mdistiller (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2):
// pre-activation BasicBlocks in three stages (depth = 6n + 4, widths 16k, 32k, 64k),
// a final BN-ReLU, global average pool and one linear layer, no dropout.
// Submodule names match RepDistiller's state_dict keys (block1.layer.0.convShortcut, ...).
// The global pool replaces avg_pool2d(8), so 28x28 inputs work too.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

// One stage of n blocks (RepDistiller's NetworkBlock); its only child is "layer".
struct WideResNetStageImpl : torch::nn::Module {
    WideResNetStageImpl(int64_t blocks, int64_t in_planes, int64_t out_planes, int64_t stride);
    torch::Tensor forward(torch::Tensor x) { return layer->forward(x); }

    torch::nn::Sequential layer;
};
TORCH_MODULE(WideResNetStage);

struct WideResNetImpl : ClassifierImpl {
    WideResNetImpl(int64_t depth, int64_t widen_factor, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;

    torch::nn::Conv2d conv1;
    WideResNetStage block1, block2, block3;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Linear fc;
};
TORCH_MODULE(WideResNet);

}  // namespace dtokd
