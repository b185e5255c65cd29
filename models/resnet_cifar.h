// CIFAR ResNets of RepDistiller/mdistiller (resnet8..110, resnet8x4, resnet32x4):
// a 3x3 stem, three stages of BasicBlocks (depth = 6n + 2), global average pool
// and one linear layer. Submodule names match RepDistiller's state_dict keys,
// so its checkpoints map one to one. The stem takes any channel count and the
// global pool replaces AvgPool2d(8), so 28x28 inputs work too.
// Feature taps (mdistiller models/cifar/resnet.py): feats = [f0 stem conv-BN-ReLU,
// f1, f2, f3 stage outputs after the last block's ReLU]; preact_feats = [f0 itself,
// then each stage's last bn2(conv2) + shortcut before that ReLU]; pooled = the global
// average of f3, [B, filters[3]], what fc reads.
#pragma once
#include <torch/nn.h>

#include <array>
#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct ResNetCifarImpl : ClassifierImpl {
    // `filters`: stem width, then the widths of the three stages.
    ResNetCifarImpl(int64_t depth, std::array<int64_t, 4> filters, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3;
    torch::nn::Linear fc;
};
TORCH_MODULE(ResNetCifar);

}  // namespace dtokd
