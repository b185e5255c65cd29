// RepDistiller's CIFAR ResNet50 (models/resnetv2.py): a 3x3 stride-1 stem to 64
// channels (no max pool), four stages of Bottleneck blocks (3, 4, 6, 3; widths
// 64..512, expansion 4), global average pool and one linear layer on 2048
// features. Submodule names match RepDistiller's state_dict keys.
// Feature taps (mdistiller models/cifar/resnetv2.py): feats = [f0 stem
// conv-BN-ReLU, f1..f4 stage outputs after the last block's ReLU]; preact_feats =
// [f0 itself, then each stage's last bn3(conv3) + shortcut before that ReLU];
// pooled = the global average of f4, [B, 2048], what linear reads.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct ResNet50CifarImpl : ClassifierImpl {
    ResNet50CifarImpl(int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3, layer4;
    torch::nn::Linear linear;
};
TORCH_MODULE(ResNet50Cifar);

}  // namespace dtokd
