// Two small CNNs sized for 28x28 grayscale (Fashion-MNIST) but shape-agnostic:
// two conv-BN-ReLU-maxpool stages and an adaptive average pool to 7x7 (identity
// at 28x28), so 32x32 inputs work too.
//   cnn_small (fast student):  8 -> 16 channels, linear(16*7*7 -> classes).
//   cnn_large (teacher):      32 -> 64 channels, linear(64*7*7 -> 128)-ReLU-dropout(0.25), linear(128 -> classes).
// Feature taps (our convention; the reference code has no such model): no stem, so
// feats = [f1, f2], each stage's conv-BN-ReLU output before its max pool (as VGG's
// fi are taken before the pool), [B, 8|32, H, W] and [B, 16|64, H/2, W/2];
// preact_feats = the same stages' BN outputs before the ReLU, so relu(preact) == feat.
// pooled = the per-sample embedding the last linear layer reads: for cnn_small the
// flattened 7x7 grid, [B, 16*7*7]; for cnn_large the hidden ReLU(fc1) before the
// dropout, [B, 128] (dropout is a training-time mask on the classifier, not part of
// the embedding; in eval mode it is exactly what fc2 reads).
#pragma once
#include <torch/nn.h>

#include <cstdint>

#include "classifier.h"

namespace dtokd {

struct CnnSmallImpl : ClassifierImpl {
    CnnSmallImpl(int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Conv2d conv2;
    torch::nn::BatchNorm2d bn2;
    torch::nn::Linear fc;
};
TORCH_MODULE(CnnSmall);

struct CnnLargeImpl : ClassifierImpl {
    CnnLargeImpl(int64_t in_channels, int64_t num_classes);
    torch::Tensor forward(torch::Tensor x) override;
    ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) override;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() override;

    torch::nn::Conv2d conv1;
    torch::nn::BatchNorm2d bn1;
    torch::nn::Conv2d conv2;
    torch::nn::BatchNorm2d bn2;
    torch::nn::Linear fc1;
    torch::nn::Dropout dropout;
    torch::nn::Linear fc2;
};
TORCH_MODULE(CnnLarge);

}  // namespace dtokd
