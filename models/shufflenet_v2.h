// RepDistiller's CIFAR ShuffleNet V2 (its `ShuffleV2`, net size 1: stage widths
// 116/232/464, 3/7/3 basic units, 1024-channel head): a 1x1 stem to 24 channels
// without downsampling, three stages of one stride-2 down unit plus basic units
// (channel split, branch, concat, shuffle), a 1x1 head conv, global average pool
// and one linear layer. Submodule names match RepDistiller's state_dict keys.
// The global pool replaces avg_pool2d(4), so 28x28 inputs work too.
#pragma once
#include <torch/nn.h>

#include <array>
#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct ShuffleNetV2Impl : ClassifierImpl {
    // `widths`: the three stage widths, then the head width.
    ShuffleNetV2Impl(std::array<int64_t, 4> widths, std::array<int64_t, 3> stage_units, int64_t in_channels,
                     int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3;
    torch::nn::Conv2d conv2;
    torch::nn::BatchNorm2d bn2;
    torch::nn::Linear linear;
};
TORCH_MODULE(ShuffleNetV2);

}  // namespace dtokd
