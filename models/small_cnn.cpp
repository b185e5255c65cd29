// See small_cnn.h. PyTorch's default initialisation throughout.
#include "small_cnn.h"

#include <torch/torch.h>

#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, /*kernel_size=*/3).padding(1));
}

// 2x2 max pooling, stride 2, floor mode. LibTorch 1.13's CPU max_pool2d also writes
// int64 argmax indices for its backward; when no gradient is recorded (evaluation, the
// teacher-logit cache, dto-amortized's re-evaluation) two strided maxima give the same
// values about 10x faster (0.19 vs 2.3 ms at 128x8x28x28 on 2 cores).
torch::Tensor max_pool2x2(const torch::Tensor &x) {
    if (at::GradMode::is_enabled() && x.requires_grad()) return torch::max_pool2d(x, /*kernel_size=*/{2, 2});
    const int64_t h = x.size(2) / 2 * 2, w = x.size(3) / 2 * 2;
    const torch::Tensor rows = torch::maximum(x.slice(2, 0, h, 2), x.slice(2, 1, h, 2));
    return torch::maximum(rows.slice(3, 0, w, 2), rows.slice(3, 1, w, 2));
}

// conv-BN-ReLU, its taps, then maxpool(2). Without taps it stays one expression, so
// the temporaries are freed in the order they always were: freeing the BN output
// before the pool instead made glibc's default allocator trim and re-fault its heap
// on every call (cnn_small train-mode forward, batch 128, one thread: 9 -> 55 ms
// median; not with the pipeline's tuned allocator, runtime/host_allocator.h).
torch::Tensor conv_stage(const torch::Tensor &x, nn::Conv2d &conv, nn::BatchNorm2d &bn,
                         const FeatureRequest &request, ModelOutputs &out) {
    if (!request.feats && !request.preact_feats) return max_pool2x2(torch::relu(bn(conv(x))));
    const torch::Tensor preact = bn(conv(x));
    const torch::Tensor feat = torch::relu(preact);
    record_stage(out, request, feat, preact);
    return max_pool2x2(feat);
}

// Two conv stages, then the 7x7 grid the classifier expects, flattened.
torch::Tensor features(const torch::Tensor &x, nn::Conv2d &conv1, nn::BatchNorm2d &bn1, nn::Conv2d &conv2,
                       nn::BatchNorm2d &bn2, const FeatureRequest &request, ModelOutputs &out) {
    torch::Tensor y = conv_stage(x, conv1, bn1, request, out);
    y = conv_stage(y, conv2, bn2, request, out);
    return torch::adaptive_avg_pool2d(y, {7, 7}).flatten(1);
}

}  // namespace

CnnSmallImpl::CnnSmallImpl(int64_t in_channels, int64_t num_classes)
    : conv1(register_module("conv1", conv3x3(in_channels, 8))),
      bn1(register_module("bn1", nn::BatchNorm2d(8))),
      conv2(register_module("conv2", conv3x3(8, 16))),
      bn2(register_module("bn2", nn::BatchNorm2d(16))),
      fc(register_module("fc", nn::Linear(16 * 7 * 7, num_classes))) {}

torch::Tensor CnnSmallImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs CnnSmallImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = features(x, conv1, bn1, conv2, bn2, request, out);
    if (request.pooled) out.pooled = x;
    out.logits = fc(x);
    return out;
}

CnnLargeImpl::CnnLargeImpl(int64_t in_channels, int64_t num_classes)
    : conv1(register_module("conv1", conv3x3(in_channels, 32))),
      bn1(register_module("bn1", nn::BatchNorm2d(32))),
      conv2(register_module("conv2", conv3x3(32, 64))),
      bn2(register_module("bn2", nn::BatchNorm2d(64))),
      fc1(register_module("fc1", nn::Linear(64 * 7 * 7, 128))),
      dropout(register_module("dropout", nn::Dropout(/*p=*/0.25))),
      fc2(register_module("fc2", nn::Linear(128, num_classes))) {}

torch::Tensor CnnLargeImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs CnnLargeImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = torch::relu(fc1(features(x, conv1, bn1, conv2, bn2, request, out)));
    if (request.pooled) out.pooled = x;
    out.logits = fc2(dropout(x));
    return out;
}

// No reference model: each preact entry is exactly its stage's BN output.
std::vector<std::pair<torch::Tensor, torch::Tensor>> CnnSmallImpl::preact_bn_affine() { return {{bn1->weight, bn1->bias}, {bn2->weight, bn2->bias}}; }
std::vector<std::pair<torch::Tensor, torch::Tensor>> CnnLargeImpl::preact_bn_affine() { return {{bn1->weight, bn1->bias}, {bn2->weight, bn2->bias}}; }

}  // namespace dtokd
