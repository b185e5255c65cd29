// RepDistiller's CIFAR MobileNetV2 (its `mobile_half`: expansion 6, width 0.5):
// a stride-2 3x3 stem, seven stages of inverted residuals, a 1x1 conv to 1280
// channels, global average pool and one linear layer. Submodule names match
// RepDistiller's state_dict keys (conv1.0, blocks.3.1.conv.6, classifier.0, ...).
// The global pool replaces AvgPool2d(input/16), so 28x28 inputs work too.
// Feature taps (mdistiller models/cifar/mobilenetv2.py): feats = [f0 the stem's
// conv-BN-ReLU, then the outputs of stages 1, 2, 4 and 6 (0-based)], which are
// linear-bottleneck outputs with no ReLU after them. mdistiller gives no
// preact_feats for this family; here preact_feats are the same tensors as feats
// (nothing to take a ReLU off). pooled = the global average of conv2's output,
// [B, 1280] for width <= 1, what the classifier reads.
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct MobileNetV2CifarImpl : ClassifierImpl {
    MobileNetV2CifarImpl(int64_t expansion, double width_mult, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Sequential conv1;
    torch::nn::ModuleList blocks;  // one Sequential of inverted residuals per stage
    torch::nn::Sequential conv2;
    torch::nn::Sequential classifier;
};
TORCH_MODULE(MobileNetV2Cifar);

}  // namespace dtokd
