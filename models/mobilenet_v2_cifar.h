// RepDistiller's CIFAR MobileNetV2 (its `mobile_half`: expansion 6, width 0.5):
// a stride-2 3x3 stem, seven stages of inverted residuals, a 1x1 conv to 1280
// channels, global average pool and one linear layer. Submodule names match
// RepDistiller's state_dict keys (conv1.0, blocks.3.1.conv.6, classifier.0, ...).
// The global pool replaces AvgPool2d(input/16), so 28x28 inputs work too.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct MobileNetV2CifarImpl : ClassifierImpl {
    MobileNetV2CifarImpl(int64_t expansion, double width_mult, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;

    torch::nn::Sequential conv1;
    torch::nn::ModuleList blocks;  // one Sequential of inverted residuals per stage
    torch::nn::Sequential conv2;
    torch::nn::Sequential classifier;
};
TORCH_MODULE(MobileNetV2Cifar);

}  // namespace dtokd
