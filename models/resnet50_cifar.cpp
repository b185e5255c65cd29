// See resnet50_cifar.h. The stride sits on the Bottleneck's 3x3 conv; the
// projection shortcut appears whenever the stride or the width changes.
#include "resnet50_cifar.h"

#include <torch/torch.h>

#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

constexpr int64_t kExpansion = 4;

struct BottleneckImpl : nn::Module {
    BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride)
        : conv1(register_module("conv1",
                                nn::Conv2d(nn::Conv2dOptions(in_planes, planes, /*kernel_size=*/1).bias(false)))),
          bn1(register_module("bn1", nn::BatchNorm2d(planes))),
          conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(planes, planes, /*kernel_size=*/3)
                                                        .stride(stride)
                                                        .padding(1)
                                                        .bias(false)))),
          bn2(register_module("bn2", nn::BatchNorm2d(planes))),
          conv3(register_module(
              "conv3", nn::Conv2d(nn::Conv2dOptions(planes, kExpansion * planes, /*kernel_size=*/1).bias(false)))),
          bn3(register_module("bn3", nn::BatchNorm2d(kExpansion * planes))) {
        if (stride != 1 || in_planes != kExpansion * planes)
            shortcut = register_module(
                "shortcut", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_planes, kExpansion * planes,
                                                                        /*kernel_size=*/1)
                                                          .stride(stride)
                                                          .bias(false)),
                                           nn::BatchNorm2d(kExpansion * planes)));
    }

    // `preact`, when given, receives the sum before the block's final ReLU.
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *preact = nullptr) {
        torch::Tensor out = torch::relu(bn1(conv1(x)));
        out = torch::relu(bn2(conv2(out)));
        out = bn3(conv3(out)) + (shortcut ? shortcut->forward(x) : x);
        if (preact) *preact = out;
        return torch::relu(out);
    }

    nn::Conv2d conv1;
    nn::BatchNorm2d bn1;
    nn::Conv2d conv2;
    nn::BatchNorm2d bn2;
    nn::Conv2d conv3;
    nn::BatchNorm2d bn3;
    nn::Sequential shortcut{nullptr};
};
TORCH_MODULE(Bottleneck);

nn::Sequential make_stage(int64_t in_planes, int64_t planes, int64_t blocks, int64_t stride) {
    nn::Sequential stage;
    stage->push_back(Bottleneck(in_planes, planes, stride));
    for (int64_t i = 1; i < blocks; i++) stage->push_back(Bottleneck(kExpansion * planes, planes, /*stride=*/1));
    return stage;
}

// The stage's blocks in order; `preact`, when given, receives the last block's pre-ReLU sum.
torch::Tensor run_stage(nn::Sequential &stage, torch::Tensor x, torch::Tensor *preact) {
    const size_t n = stage->size();
    for (size_t i = 0; i < n; i++) x = stage->at<BottleneckImpl>(i).forward(x, i + 1 == n ? preact : nullptr);
    return x;
}

}  // namespace

ResNet50CifarImpl::ResNet50CifarImpl(int64_t in_channels, int64_t num_classes)
    : conv1(register_module(
          "conv1", nn::Conv2d(nn::Conv2dOptions(in_channels, 64, /*kernel_size=*/3).padding(1).bias(false)))),
      bn1(register_module("bn1", nn::BatchNorm2d(64))),
      layer1(register_module("layer1", make_stage(64, 64, /*blocks=*/3, /*stride=*/1))),
      layer2(register_module("layer2", make_stage(kExpansion * 64, 128, /*blocks=*/4, /*stride=*/2))),
      layer3(register_module("layer3", make_stage(kExpansion * 128, 256, /*blocks=*/6, /*stride=*/2))),
      layer4(register_module("layer4", make_stage(kExpansion * 256, 512, /*blocks=*/3, /*stride=*/2))),
      linear(register_module("linear", nn::Linear(kExpansion * 512, num_classes))) {
    // RepDistiller's init: Kaiming normal (fan_out) convolutions; BatchNorm and Linear keep the defaults.
    for (auto &m : modules(/*include_self=*/false))
        if (auto *conv = m->as<nn::Conv2d>())
            nn::init::kaiming_normal_(conv->weight, /*a=*/0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor ResNet50CifarImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs ResNet50CifarImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = torch::relu(bn1(conv1(x)));
    record_stage(out, request, x, x);  // mdistiller lists the post-ReLU stem in preact_feats too
    torch::Tensor preact;
    torch::Tensor *keep_preact = request.preact_feats ? &preact : nullptr;
    for (nn::Sequential *stage : {&layer1, &layer2, &layer3, &layer4}) {
        x = run_stage(*stage, std::move(x), keep_preact);
        record_stage(out, request, x, preact);
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = linear(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> ResNet50CifarImpl::preact_bn_affine() {
    // mdistiller resnetv2.py get_bn_before_relu: each stage's last Bottleneck's bn3. The tap is bn3's
    // output plus the shortcut, so this BN is the reference's pick, not exactly the tap. f0: none.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (nn::Sequential *stage : {&layer1, &layer2, &layer3, &layer4}) {
        const auto &bn = (*stage)->at<BottleneckImpl>((*stage)->size() - 1).bn3;
        out.emplace_back(bn->weight, bn->bias);
    }
    return out;
}

}  // namespace dtokd
