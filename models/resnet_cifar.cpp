// See resnet_cifar.h. Block layout follows RepDistiller models/resnet.py: the
// first block of a stage owns the 1x1 projection ("downsample") whenever the
// stride or the width changes.
#include "resnet_cifar.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in_planes, int64_t out_planes, int64_t stride) {
    return nn::Conv2d(
        nn::Conv2dOptions(in_planes, out_planes, /*kernel_size=*/3).stride(stride).padding(1).bias(false));
}

struct BasicBlockImpl : nn::Module {
    BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
        : conv1(register_module("conv1", conv3x3(in_planes, planes, stride))),
          bn1(register_module("bn1", nn::BatchNorm2d(planes))),
          conv2(register_module("conv2", conv3x3(planes, planes, /*stride=*/1))),
          bn2(register_module("bn2", nn::BatchNorm2d(planes))) {
        if (stride != 1 || in_planes != planes)
            downsample = register_module(
                "downsample",
                nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_planes, planes, /*kernel_size=*/1)
                                              .stride(stride)
                                              .bias(false)),
                               nn::BatchNorm2d(planes)));
    }

    // `preact`, when given, receives the sum before the block's final ReLU. Without it the
    // last line is the expression it always was (same temporaries, freed in the same order).
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *preact = nullptr) {
        torch::Tensor out = torch::relu(bn1(conv1(x)));
        out = bn2(conv2(out));
        if (!preact) return torch::relu(out + (downsample ? downsample->forward(x) : x));
        *preact = out + (downsample ? downsample->forward(x) : x);
        return torch::relu(*preact);
    }

    nn::Conv2d conv1;
    nn::BatchNorm2d bn1;
    nn::Conv2d conv2;
    nn::BatchNorm2d bn2;
    nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

nn::Sequential make_stage(int64_t in_planes, int64_t planes, int64_t blocks, int64_t stride) {
    nn::Sequential stage;
    stage->push_back(BasicBlock(in_planes, planes, stride));
    for (int64_t i = 1; i < blocks; i++) stage->push_back(BasicBlock(planes, planes, /*stride=*/1));
    return stage;
}

// The stage's blocks in order; `preact`, when given, receives the last block's pre-ReLU sum.
torch::Tensor run_stage(nn::Sequential &stage, torch::Tensor x, torch::Tensor *preact) {
    const size_t n = stage->size();
    for (size_t i = 0; i < n; i++) x = stage->at<BasicBlockImpl>(i).forward(x, i + 1 == n ? preact : nullptr);
    return x;
}

int64_t blocks_per_stage(int64_t depth) {
    if (depth < 8 || (depth - 2) % 6 != 0)
        throw std::invalid_argument("ResNetCifar: depth is " + std::to_string(depth) +
                                    "; expected 6n + 2 with n >= 1 (8, 14, 20, 32, ...)");
    return (depth - 2) / 6;
}

}  // namespace

ResNetCifarImpl::ResNetCifarImpl(int64_t depth, std::array<int64_t, 4> filters, int64_t in_channels,
                                 int64_t num_classes)
    : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in_channels, filters[0], /*kernel_size=*/3)
                                                    .padding(1)
                                                    .bias(false)))),
      bn1(register_module("bn1", nn::BatchNorm2d(filters[0]))),
      layer1(register_module("layer1", make_stage(filters[0], filters[1], blocks_per_stage(depth), /*stride=*/1))),
      layer2(register_module("layer2", make_stage(filters[1], filters[2], blocks_per_stage(depth), /*stride=*/2))),
      layer3(register_module("layer3", make_stage(filters[2], filters[3], blocks_per_stage(depth), /*stride=*/2))),
      fc(register_module("fc", nn::Linear(filters[3], num_classes))) {
    // RepDistiller's init: Kaiming normal (fan_out) convolutions; BatchNorm and Linear keep the defaults.
    for (auto &m : modules(/*include_self=*/false))
        if (auto *conv = m->as<nn::Conv2d>())
            nn::init::kaiming_normal_(conv->weight, /*a=*/0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor ResNetCifarImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs ResNetCifarImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = torch::relu(bn1(conv1(x)));
    record_stage(out, request, x, x);  // mdistiller lists the post-ReLU stem in preact_feats too
    torch::Tensor preact;
    torch::Tensor *keep_preact = request.preact_feats ? &preact : nullptr;
    for (nn::Sequential *stage : {&layer1, &layer2, &layer3}) {
        x = run_stage(*stage, std::move(x), keep_preact);
        record_stage(out, request, x, preact);
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = fc(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> ResNetCifarImpl::preact_bn_affine() {
    // mdistiller resnet.py get_bn_before_relu: each stage's last block's bn2. The tap is bn2's output
    // plus the shortcut, so this BN is the reference's pick, not exactly the tap. f0 (post-ReLU stem): none.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (nn::Sequential *stage : {&layer1, &layer2, &layer3}) {
        const auto &bn = (*stage)->at<BasicBlockImpl>((*stage)->size() - 1).bn2;
        out.emplace_back(bn->weight, bn->bias);
    }
    return out;
}

}  // namespace dtokd
