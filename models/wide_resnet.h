// Wide ResNets of RepDistiller/mdistiller (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2):
// pre-activation BasicBlocks in three stages (depth = 6n + 4, widths 16k, 32k, 64k),
// a final BN-ReLU, global average pool and one linear layer, no dropout.
// Submodule names match RepDistiller's state_dict keys (block1.layer.0.convShortcut, ...).
// The global pool replaces avg_pool2d(8), so 28x28 inputs work too.
// Feature taps (mdistiller models/cifar/wrn.py): feats = [f0 conv1 output, f1, f2, f3
// the raw stage outputs (pre-activation blocks end in an addition, no ReLU)];
// preact_feats = [f0, then the BN that follows each stage: block2's and block3's
// first bn1, and the final bn1] (taken in the one forward, not by a second BN call as
// mdistiller does, so running stats move once); pooled = the global average of
// relu(bn1(f3)), [B, 64 * widen_factor], what fc reads.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

// One stage of n blocks (RepDistiller's NetworkBlock); its only child is "layer".
struct WideResNetStageImpl : torch::nn::Module {
    WideResNetStageImpl(int64_t blocks, int64_t in_planes, int64_t out_planes, int64_t stride);
    // `input_preact`, when given, receives the first block's bn1(x), the BN before its ReLU.
    torch::Tensor forward(torch::Tensor x, torch::Tensor *input_preact = nullptr);

    torch::nn::Sequential layer;
};
TORCH_MODULE(WideResNetStage);

struct WideResNetImpl : ClassifierImpl {
    WideResNetImpl(int64_t depth, int64_t widen_factor, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    WideResNetStage block1, block2, block3;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Linear fc;
};
TORCH_MODULE(WideResNet);

}  // namespace dtokd
