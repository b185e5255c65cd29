// See wide_resnet.h. Block layout follows RepDistiller models/wrn.py: when the
// width changes, the block's input BN-ReLU also feeds the 1x1 shortcut.
#include "wide_resnet.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

struct PreActBlockImpl : nn::Module {
    PreActBlockImpl(int64_t in_planes, int64_t out_planes, int64_t stride)
        : bn1(register_module("bn1", nn::BatchNorm2d(in_planes))),
          conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in_planes, out_planes, /*kernel_size=*/3)
                                                        .stride(stride)
                                                        .padding(1)
                                                        .bias(false)))),
          bn2(register_module("bn2", nn::BatchNorm2d(out_planes))),
          conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out_planes, out_planes, /*kernel_size=*/3)
                                                        .padding(1)
                                                        .bias(false)))) {
        if (in_planes != out_planes)
            shortcut = register_module(
                "convShortcut",
                nn::Conv2d(nn::Conv2dOptions(in_planes, out_planes, /*kernel_size=*/1).stride(stride).bias(false)));
    }

    // `input_preact`, when given, receives bn1(x) (the pre-activation of the block's input).
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *input_preact = nullptr) {
        torch::Tensor act;
        if (input_preact) {
            *input_preact = bn1(x);
            act = torch::relu(*input_preact);
        } else {
            act = torch::relu(bn1(x));  // no named temporary: inference frees it at once
        }
        torch::Tensor out = conv2(torch::relu(bn2(conv1(act))));
        return (shortcut ? shortcut(act) : x) + out;
    }

    nn::BatchNorm2d bn1;
    nn::Conv2d conv1;
    nn::BatchNorm2d bn2;
    nn::Conv2d conv2;
    nn::Conv2d shortcut{nullptr};
};
TORCH_MODULE(PreActBlock);

int64_t blocks_per_stage(int64_t depth) {
    if (depth < 10 || (depth - 4) % 6 != 0)
        throw std::invalid_argument("WideResNet: depth is " + std::to_string(depth) +
                                    "; expected 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...)");
    return (depth - 4) / 6;
}

}  // namespace

WideResNetStageImpl::WideResNetStageImpl(int64_t blocks, int64_t in_planes, int64_t out_planes, int64_t stride)
    : layer(register_module("layer", nn::Sequential())) {
    layer->push_back(PreActBlock(in_planes, out_planes, stride));
    for (int64_t i = 1; i < blocks; i++) layer->push_back(PreActBlock(out_planes, out_planes, /*stride=*/1));
}

torch::Tensor WideResNetStageImpl::forward(torch::Tensor x, torch::Tensor *input_preact) {
    const size_t n = layer->size();
    for (size_t i = 0; i < n; i++) x = layer->at<PreActBlockImpl>(i).forward(x, i == 0 ? input_preact : nullptr);
    return x;
}

WideResNetImpl::WideResNetImpl(int64_t depth, int64_t widen_factor, int64_t in_channels, int64_t num_classes)
    : conv1(register_module(
          "conv1", nn::Conv2d(nn::Conv2dOptions(in_channels, 16, /*kernel_size=*/3).padding(1).bias(false)))),
      block1(register_module("block1",
                             WideResNetStage(blocks_per_stage(depth), 16, 16 * widen_factor, /*stride=*/1))),
      block2(register_module("block2", WideResNetStage(blocks_per_stage(depth), 16 * widen_factor,
                                                       32 * widen_factor, /*stride=*/2))),
      block3(register_module("block3", WideResNetStage(blocks_per_stage(depth), 32 * widen_factor,
                                                       64 * widen_factor, /*stride=*/2))),
      bn1(register_module("bn1", nn::BatchNorm2d(64 * widen_factor))),
      fc(register_module("fc", nn::Linear(64 * widen_factor, num_classes))) {
    if (widen_factor < 1)
        throw std::invalid_argument("WideResNet: widen_factor is " + std::to_string(widen_factor) +
                                    "; expected >= 1");
    // RepDistiller's init: conv ~ N(0, 2 / (k*k*out)), Linear bias 0.
    torch::NoGradGuard no_grad;
    for (auto &m : modules(/*include_self=*/false)) {
        if (auto *conv = m->as<nn::Conv2d>()) {
            const auto &k = conv->options.kernel_size();
            conv->weight.normal_(0.0, std::sqrt(2.0 / double(k->at(0) * k->at(1) * conv->options.out_channels())));
        } else if (auto *linear = m->as<nn::Linear>()) {
            linear->bias.zero_();
        }
    }
}

torch::Tensor WideResNetImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs WideResNetImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = conv1(x);
    record_stage(out, request, x, x);  // mdistiller lists f0 in preact_feats too
    x = block1(x);
    if (request.feats) out.feats.push_back(x);
    // A stage's pre-activation is the BN that follows it: the next stage's first bn1 ...
    torch::Tensor preact;
    torch::Tensor *keep_preact = request.preact_feats ? &preact : nullptr;
    for (WideResNetStage *stage : {&block2, &block3}) {
        x = (*stage)->forward(std::move(x), keep_preact);
        if (request.preact_feats) out.preact_feats.push_back(preact);
        if (request.feats) out.feats.push_back(x);
    }
    // ... and, for the last stage, the final bn1.
    x = bn1(x);
    if (request.preact_feats) out.preact_feats.push_back(x);
    x = torch::adaptive_avg_pool2d(torch::relu(x), {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = fc(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> WideResNetImpl::preact_bn_affine() {
    // mdistiller wrn.py get_bn_before_relu: block2's and block3's first bn1, then the final bn1;
    // each is exactly the tap (the BN that follows the stage). f0 (the stem conv): none.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (WideResNetStage *stage : {&block2, &block3}) {
        const auto &bn = (*stage)->layer->at<PreActBlockImpl>(0).bn1;
        out.emplace_back(bn->weight, bn->bias);
    }
    out.emplace_back(bn1->weight, bn1->bias);
    return out;
}

}  // namespace dtokd
