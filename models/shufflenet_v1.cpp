// See shufflenet_v1.h. Unit layout follows RepDistiller models/ShuffleNetv1.py,
// including its ReLU after the depthwise conv and ungrouped first 1x1 conv when
// the unit's input is the 24-channel stem.
#include "shufflenet_v1.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

struct ShuffleUnitImpl : nn::Module {
    ShuffleUnitImpl(int64_t in_planes, int64_t out_planes, int64_t stride, int64_t groups)
        : stride(stride),
          first_groups(in_planes == 24 ? 1 : groups),
          conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in_planes, out_planes / 4, /*kernel_size=*/1)
                                                        .groups(first_groups)
                                                        .bias(false)))),
          bn1(register_module("bn1", nn::BatchNorm2d(out_planes / 4))),
          conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out_planes / 4, out_planes / 4,
                                                                      /*kernel_size=*/3)
                                                        .stride(stride)
                                                        .padding(1)
                                                        .groups(out_planes / 4)
                                                        .bias(false)))),
          bn2(register_module("bn2", nn::BatchNorm2d(out_planes / 4))),
          conv3(register_module("conv3", nn::Conv2d(nn::Conv2dOptions(out_planes / 4, out_planes, /*kernel_size=*/1)
                                                        .groups(groups)
                                                        .bias(false)))),
          bn3(register_module("bn3", nn::BatchNorm2d(out_planes))) {}

    // `preact`, when given, receives the unit's output before its final ReLU.
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *preact = nullptr) {
        torch::Tensor out = torch::relu(bn1(conv1(x)));
        out = shuffle_channels(out, first_groups);
        out = torch::relu(bn2(conv2(out)));
        out = bn3(conv3(out));
        if (stride == 2) {
            torch::Tensor shortcut =
                torch::avg_pool2d(x, /*kernel_size=*/{3, 3}, /*stride=*/{2, 2}, /*padding=*/{1, 1});
            out = torch::cat({out, shortcut}, /*dim=*/1);
        } else {
            out = out + x;
        }
        if (preact) *preact = out;
        return torch::relu(out);
    }

    int64_t stride, first_groups;
    nn::Conv2d conv1;
    nn::BatchNorm2d bn1;
    nn::Conv2d conv2;
    nn::BatchNorm2d bn2;
    nn::Conv2d conv3;
    nn::BatchNorm2d bn3;
};
TORCH_MODULE(ShuffleUnit);

// The first unit of a stage concatenates its input, so its branch only makes out - in channels.
nn::Sequential make_stage(int64_t in_planes, int64_t out_planes, int64_t units, int64_t groups) {
    if (units < 1 || groups < 1 || out_planes <= in_planes || (out_planes - in_planes) % (4 * groups) != 0 ||
        out_planes % (4 * groups) != 0)
        throw std::invalid_argument("ShuffleNetV1: stage " + std::to_string(in_planes) + " -> " +
                                    std::to_string(out_planes) + " channels, " + std::to_string(units) +
                                    " units, groups " + std::to_string(groups) +
                                    "; expected units >= 1 and widths that 4 * groups divides");
    nn::Sequential stage;
    stage->push_back(ShuffleUnit(in_planes, out_planes - in_planes, /*stride=*/2, groups));
    for (int64_t i = 1; i < units; i++) stage->push_back(ShuffleUnit(out_planes, out_planes, /*stride=*/1, groups));
    return stage;
}

// The stage's units in order; `preact`, when given, receives the last unit's pre-ReLU output.
torch::Tensor run_stage(nn::Sequential &stage, torch::Tensor x, torch::Tensor *preact) {
    const size_t n = stage->size();
    for (size_t i = 0; i < n; i++) x = stage->at<ShuffleUnitImpl>(i).forward(x, i + 1 == n ? preact : nullptr);
    return x;
}

}  // namespace

torch::Tensor shuffle_channels(const torch::Tensor &x, int64_t groups) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    return x.view({n, groups, c / groups, h, w}).permute({0, 2, 1, 3, 4}).reshape({n, c, h, w});
}

ShuffleNetV1Impl::ShuffleNetV1Impl(std::array<int64_t, 3> stage_widths, std::array<int64_t, 3> stage_units,
                                   int64_t groups, int64_t in_channels, int64_t num_classes)
    : conv1(register_module("conv1",
                            nn::Conv2d(nn::Conv2dOptions(in_channels, 24, /*kernel_size=*/1).bias(false)))),
      bn1(register_module("bn1", nn::BatchNorm2d(24))),
      layer1(register_module("layer1", make_stage(24, stage_widths[0], stage_units[0], groups))),
      layer2(register_module("layer2", make_stage(stage_widths[0], stage_widths[1], stage_units[1], groups))),
      layer3(register_module("layer3", make_stage(stage_widths[1], stage_widths[2], stage_units[2], groups))),
      linear(register_module("linear", nn::Linear(stage_widths[2], num_classes))) {
    // RepDistiller keeps PyTorch's default initialisation for this family.
}

torch::Tensor ShuffleNetV1Impl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs ShuffleNetV1Impl::forward_features(torch::Tensor x, const FeatureRequest &request) {
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
    out.logits = linear(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> ShuffleNetV1Impl::preact_bn_affine() {
    // mdistiller ShuffleNetv1.py: get_bn_before_relu raises (no "Overhaul" teacher); none for any entry.
    return std::vector<std::pair<torch::Tensor, torch::Tensor>>(4);
}

}  // namespace dtokd
