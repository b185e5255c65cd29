// See mobilenet_v2_cifar.h. Layout follows RepDistiller models/mobilenetv2.py,
// including its quirks: the first stage (t = 1) keeps its 1x1 expand conv, channel
// counts truncate c * width, and the last width stays 1280 for width <= 1.
#include "mobilenet_v2_cifar.h"

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

nn::Sequential conv_bn_relu(int64_t in, int64_t out, int64_t kernel_size, int64_t stride) {
    return nn::Sequential(
        nn::Conv2d(nn::Conv2dOptions(in, out, kernel_size).stride(stride).padding(kernel_size / 2).bias(false)),
        nn::BatchNorm2d(out), nn::ReLU());
}

struct InvertedResidualImpl : nn::Module {
    InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expansion)
        : use_residual(stride == 1 && in == out),
          conv(register_module(
              "conv",
              nn::Sequential(
                  // pointwise expand
                  nn::Conv2d(nn::Conv2dOptions(in, in * expansion, /*kernel_size=*/1).bias(false)),
                  nn::BatchNorm2d(in * expansion), nn::ReLU(),
                  // depthwise
                  nn::Conv2d(nn::Conv2dOptions(in * expansion, in * expansion, /*kernel_size=*/3)
                                 .stride(stride)
                                 .padding(1)
                                 .groups(in * expansion)
                                 .bias(false)),
                  nn::BatchNorm2d(in * expansion), nn::ReLU(),
                  // pointwise linear
                  nn::Conv2d(nn::Conv2dOptions(in * expansion, out, /*kernel_size=*/1).bias(false)),
                  nn::BatchNorm2d(out)))) {}

    torch::Tensor forward(torch::Tensor x) { return use_residual ? x + conv->forward(x) : conv->forward(x); }

    bool use_residual;
    nn::Sequential conv;
};
TORCH_MODULE(InvertedResidual);

struct StageSetting {
    int64_t expansion, channels, repeats, stride;
};

int64_t scaled(int64_t channels, double width_mult) { return static_cast<int64_t>(channels * width_mult); }

nn::ModuleList make_stages(int64_t expansion, double width_mult) {
    if (expansion < 1 || !(width_mult > 0.0))
        throw std::invalid_argument("MobileNetV2Cifar: expansion " + std::to_string(expansion) + ", width " +
                                    std::to_string(width_mult) + "; expected expansion >= 1 and width > 0");
    const std::array<StageSetting, 7> settings{{{1, 16, 1, 1},
                                                {expansion, 24, 2, 1},
                                                {expansion, 32, 3, 2},
                                                {expansion, 64, 4, 2},
                                                {expansion, 96, 3, 1},
                                                {expansion, 160, 3, 2},
                                                {expansion, 320, 1, 1}}};
    nn::ModuleList stages;
    int64_t in = scaled(32, width_mult);
    for (const StageSetting &s : settings) {
        const int64_t out = scaled(s.channels, width_mult);
        nn::Sequential stage;
        for (int64_t i = 0; i < s.repeats; i++) {
            stage->push_back(InvertedResidual(in, out, i == 0 ? s.stride : 1, s.expansion));
            in = out;
        }
        stages->push_back(stage);
    }
    return stages;
}

// The stages (0-based) whose outputs mdistiller taps as f1..f4.
bool tapped_stage(size_t i) { return i == 1 || i == 2 || i == 4 || i == 6; }

int64_t last_channels(double width_mult) { return width_mult > 1.0 ? scaled(1280, width_mult) : 1280; }

}  // namespace

MobileNetV2CifarImpl::MobileNetV2CifarImpl(int64_t expansion, double width_mult, int64_t in_channels,
                                           int64_t num_classes)
    : conv1(register_module("conv1", conv_bn_relu(in_channels, scaled(32, width_mult), /*kernel_size=*/3,
                                                  /*stride=*/2))),
      blocks(register_module("blocks", make_stages(expansion, width_mult))),
      conv2(register_module("conv2", conv_bn_relu(scaled(320, width_mult), last_channels(width_mult),
                                                  /*kernel_size=*/1, /*stride=*/1))),
      classifier(register_module("classifier", nn::Sequential(nn::Linear(last_channels(width_mult), num_classes)))) {
    // RepDistiller's init: conv ~ N(0, 2 / (k*k*out)); Linear ~ N(0, 0.01) with zero bias.
    torch::NoGradGuard no_grad;
    for (auto &m : modules(/*include_self=*/false)) {
        if (auto *conv = m->as<nn::Conv2d>()) {
            const auto &k = conv->options.kernel_size();
            conv->weight.normal_(0.0, std::sqrt(2.0 / double(k->at(0) * k->at(1) * conv->options.out_channels())));
        } else if (auto *linear = m->as<nn::Linear>()) {
            linear->weight.normal_(0.0, 0.01);
            linear->bias.zero_();
        }
    }
}

torch::Tensor MobileNetV2CifarImpl::forward(torch::Tensor x) {
    return forward_features(std::move(x), {}).logits;
}

ModelOutputs MobileNetV2CifarImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = conv1->forward(x);
    record_stage(out, request, x, x);
    size_t i = 0;
    for (const auto &stage : *blocks) {
        x = stage->as<nn::Sequential>()->forward(x);
        if (tapped_stage(i++)) record_stage(out, request, x, x);  // linear bottleneck: no ReLU to undo
    }
    x = conv2->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = classifier->forward(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> MobileNetV2CifarImpl::preact_bn_affine() {
    // mdistiller mobilenetv2.py get_bn_before_relu: the last BN of the last block of stages 1, 2, 4
    // and 6. Where that block is residual (stages 1, 2, 4) the tap is the BN output plus the input,
    // so the BN is the reference's pick, not exactly the tap. f0 (post-ReLU stem): none.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (size_t i = 0; i < blocks->size(); i++) {
        if (!tapped_stage(i)) continue;
        auto &stage = *blocks[i]->as<nn::Sequential>();
        auto &conv = stage[stage.size() - 1]->as<InvertedResidualImpl>()->conv;
        const auto *bn = conv[conv->size() - 1]->as<nn::BatchNorm2dImpl>();
        out.emplace_back(bn->weight, bn->bias);
    }
    return out;
}

}  // namespace dtokd
