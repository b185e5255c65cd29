// RepDistiller's CIFAR ShuffleNet V1 (its `ShuffleV1`: groups 3, stage widths
// 240/480/960, 4/8/4 units): a 1x1 stem to 24 channels without downsampling,
// three stages whose first unit halves the resolution and concatenates an
// average-pooled shortcut, global average pool and one linear layer.
// Submodule names match RepDistiller's state_dict keys. The global pool replaces
// avg_pool2d(4), so 28x28 inputs work too.
// Feature taps (mdistiller models/cifar/ShuffleNetv1.py): feats = [f0 stem
// conv-BN-ReLU, f1, f2, f3 stage outputs after the last unit's ReLU]; preact_feats =
// [f0 itself, then each stage's last unit before that ReLU: bn3(conv3) + input, or
// its concatenation with the pooled shortcut when the stage has one unit]; pooled =
// the global average of f3, [B, stage_widths[2]], what linear reads.
#pragma once
#include <torch/nn.h>

#include <array>
#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct ShuffleNetV1Impl : ClassifierImpl {
    ShuffleNetV1Impl(std::array<int64_t, 3> stage_widths, std::array<int64_t, 3> stage_units, int64_t groups,
                     int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Sequential layer1, layer2, layer3;
    torch::nn::Linear linear;
};
TORCH_MODULE(ShuffleNetV1);

// [N, C, H, W] -> view [N, g, C/g, H, W] -> swap the group axes -> [N, C, H, W]. Written out
// (not at::channel_shuffle) so autograd sees plain view/permute/reshape.
torch::Tensor shuffle_channels(const torch::Tensor &x, int64_t groups);

}  // namespace dtokd
