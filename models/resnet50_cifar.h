// RepDistiller's CIFAR ResNet50 (models/resnetv2.py): a 3x3 stride-1 stem to 64
// channels (no max pool), four stages of Bottleneck blocks (3, 4, 6, 3; widths
// 64..512, expansion 4), global average pool and one linear layer on 2048
// features. Submodule names match RepDistiller's state_dict keys.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct ResNet50CifarImpl : ClassifierImpl {
    ResNet50CifarImpl(int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3, layer4;
    torch::nn::Linear linear;
};
TORCH_MODULE(ResNet50Cifar);

}  // namespace dtokd
