// CIFAR VGGs of RepDistiller/mdistiller with BatchNorm (vgg8, vgg11, vgg13 =
// RepDistiller's vgg8_bn, vgg11_bn, vgg13_bn): five conv blocks, max pools after
// the first three (and the fourth only for 64x64 inputs), global average pool and
// one linear layer on 512 features (the "FC layers removed" CIFAR variant).
// Submodule names match RepDistiller's state_dict keys (block0.0, ..., classifier).
// Feature taps (mdistiller models/cifar/vgg.py): feats = [f0..f4, each block's
// output after its final ReLU, before the block's max pool]; preact_feats = [f0
// itself, then blocks 1-4 before that ReLU]; pooled = the global average of f4,
// [B, blocks[4].back()], what the classifier reads.
#pragma once
#include <torch/nn.h>

#include <cstdint>
#include <vector>

#include "classifier.h"

namespace dtokd {

struct VggCifarImpl : ClassifierImpl {
    // `blocks`: the conv widths of each of the five blocks, e.g. {{64}, {128}, {256}, {512}, {512}} for vgg8.
    VggCifarImpl(const std::vector<std::vector<int64_t>> &blocks, int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Sequential block0, block1, block2, block3, block4;
    torch::nn::Linear classifier;
};
TORCH_MODULE(VggCifar);

// The conv widths of RepDistiller's vgg8 ("S"), vgg11 ("A") and vgg13 ("B") configurations.
std::vector<std::vector<int64_t>> vgg_cifar_blocks(int depth);

}  // namespace dtokd
