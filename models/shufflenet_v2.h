// RepDistiller's CIFAR ShuffleNet V2 (its `ShuffleV2`, net size 1: stage widths
// 116/232/464, 3/7/3 basic units, 1024-channel head): a 1x1 stem to 24 channels
// without downsampling, three stages of one stride-2 down unit plus basic units
// (channel split, branch, concat, shuffle), a 1x1 head conv, global average pool
// and one linear layer. Submodule names match RepDistiller's state_dict keys.
// The global pool replaces avg_pool2d(4), so 28x28 inputs work too.
// Feature taps (mdistiller models/cifar/ShuffleNetv2.py): feats = [f0 stem
// conv-BN-ReLU, f1, f2, f3 stage outputs]; preact_feats = [f0 itself, then each
// stage's last unit with its final ReLUs left off]. One deviation: mdistiller's
// fi_pre is the concatenation before the channel shuffle; here it is shuffled like
// fi, so feats and preact_feats share one channel order and relu(fi_pre) == fi.
// pooled = the global average of the head relu(bn2(conv2(f3))), [B, widths[3]],
// what linear reads.
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
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3;
    torch::nn::Conv2d conv2;
    torch::nn::BatchNorm2d bn2;
    torch::nn::Linear linear;
};
TORCH_MODULE(ShuffleNetV2);

}  // namespace dtokd
