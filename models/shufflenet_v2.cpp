// See shufflenet_v2.h. Unit layout follows RepDistiller models/ShuffleNetv2.py:
// the basic unit splits channels in half and transforms the second half; the
// down unit runs both branches on the full input and concatenates them.
#include "shufflenet_v2.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "shufflenet_v1.h"  // shuffle_channels

namespace dtokd {
namespace {

namespace nn = torch::nn;

nn::Conv2d pointwise(int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, /*kernel_size=*/1).bias(false));
}

nn::Conv2d depthwise(int64_t channels, int64_t stride) {
    return nn::Conv2d(nn::Conv2dOptions(channels, channels, /*kernel_size=*/3)
                          .stride(stride)
                          .padding(1)
                          .groups(channels)
                          .bias(false));
}

struct BasicUnitImpl : nn::Module {
    explicit BasicUnitImpl(int64_t channels)
        : half(channels / 2),
          conv1(register_module("conv1", pointwise(half, half))),
          bn1(register_module("bn1", nn::BatchNorm2d(half))),
          conv2(register_module("conv2", depthwise(half, /*stride=*/1))),
          bn2(register_module("bn2", nn::BatchNorm2d(half))),
          conv3(register_module("conv3", pointwise(half, half))),
          bn3(register_module("bn3", nn::BatchNorm2d(half))) {}

    // `preact`, when given, receives the output with the branch's final ReLU left off.
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *preact = nullptr) {
        torch::Tensor kept = x.narrow(/*dim=*/1, /*start=*/0, /*length=*/half);
        torch::Tensor branch = x.narrow(/*dim=*/1, /*start=*/half, /*length=*/x.size(1) - half);
        branch = torch::relu(bn1(conv1(branch)));
        branch = bn2(conv2(branch));
        branch = bn3(conv3(branch));
        if (preact) *preact = shuffle_channels(torch::cat({kept, branch}, /*dim=*/1), /*groups=*/2);
        branch = torch::relu(branch);
        return shuffle_channels(torch::cat({kept, branch}, /*dim=*/1), /*groups=*/2);
    }

    int64_t half;
    nn::Conv2d conv1;
    nn::BatchNorm2d bn1;
    nn::Conv2d conv2;
    nn::BatchNorm2d bn2;
    nn::Conv2d conv3;
    nn::BatchNorm2d bn3;
};
TORCH_MODULE(BasicUnit);

struct DownUnitImpl : nn::Module {
    DownUnitImpl(int64_t in, int64_t out)
        : conv1(register_module("conv1", depthwise(in, /*stride=*/2))),
          bn1(register_module("bn1", nn::BatchNorm2d(in))),
          conv2(register_module("conv2", pointwise(in, out / 2))),
          bn2(register_module("bn2", nn::BatchNorm2d(out / 2))),
          conv3(register_module("conv3", pointwise(in, out / 2))),
          bn3(register_module("bn3", nn::BatchNorm2d(out / 2))),
          conv4(register_module("conv4", depthwise(out / 2, /*stride=*/2))),
          bn4(register_module("bn4", nn::BatchNorm2d(out / 2))),
          conv5(register_module("conv5", pointwise(out / 2, out / 2))),
          bn5(register_module("bn5", nn::BatchNorm2d(out / 2))) {}

    // `preact`, when given, receives the output with both branches' final ReLUs left off.
    torch::Tensor forward(const torch::Tensor &x, torch::Tensor *preact = nullptr) {
        torch::Tensor left = bn2(conv2(bn1(conv1(x))));
        const torch::Tensor left_preact = preact ? left : torch::Tensor();
        left = torch::relu(left);
        torch::Tensor right = torch::relu(bn3(conv3(x)));
        right = bn5(conv5(bn4(conv4(right))));
        if (preact) *preact = shuffle_channels(torch::cat({left_preact, right}, /*dim=*/1), /*groups=*/2);
        right = torch::relu(right);
        return shuffle_channels(torch::cat({left, right}, /*dim=*/1), /*groups=*/2);
    }

    nn::Conv2d conv1;
    nn::BatchNorm2d bn1;
    nn::Conv2d conv2;
    nn::BatchNorm2d bn2;
    nn::Conv2d conv3;
    nn::BatchNorm2d bn3;
    nn::Conv2d conv4;
    nn::BatchNorm2d bn4;
    nn::Conv2d conv5;
    nn::BatchNorm2d bn5;
};
TORCH_MODULE(DownUnit);

nn::Sequential make_stage(int64_t in, int64_t out, int64_t units) {
    if (units < 0 || out < 2 || out % 2 != 0)
        throw std::invalid_argument("ShuffleNetV2: stage " + std::to_string(in) + " -> " + std::to_string(out) +
                                    " channels with " + std::to_string(units) +
                                    " basic units; expected an even width >= 2 and units >= 0");
    nn::Sequential stage;
    stage->push_back(DownUnit(in, out));
    for (int64_t i = 0; i < units; i++) stage->push_back(BasicUnit(out));
    return stage;
}

// One down unit, then basic units; `preact`, when given, receives the last unit's pre-ReLU output.
torch::Tensor run_stage(nn::Sequential &stage, torch::Tensor x, torch::Tensor *preact) {
    const size_t n = stage->size();
    x = stage->at<DownUnitImpl>(0).forward(x, n == 1 ? preact : nullptr);
    for (size_t i = 1; i < n; i++) x = stage->at<BasicUnitImpl>(i).forward(x, i + 1 == n ? preact : nullptr);
    return x;
}

}  // namespace

ShuffleNetV2Impl::ShuffleNetV2Impl(std::array<int64_t, 4> widths, std::array<int64_t, 3> stage_units,
                                   int64_t in_channels, int64_t num_classes)
    : conv1(register_module("conv1", pointwise(in_channels, 24))),
      bn1(register_module("bn1", nn::BatchNorm2d(24))),
      layer1(register_module("layer1", make_stage(24, widths[0], stage_units[0]))),
      layer2(register_module("layer2", make_stage(widths[0], widths[1], stage_units[1]))),
      layer3(register_module("layer3", make_stage(widths[1], widths[2], stage_units[2]))),
      conv2(register_module("conv2", pointwise(widths[2], widths[3]))),
      bn2(register_module("bn2", nn::BatchNorm2d(widths[3]))),
      linear(register_module("linear", nn::Linear(widths[3], num_classes))) {
    // RepDistiller keeps PyTorch's default initialisation for this family.
}

torch::Tensor ShuffleNetV2Impl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs ShuffleNetV2Impl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    x = torch::relu(bn1(conv1(x)));
    record_stage(out, request, x, x);  // mdistiller lists the post-ReLU stem in preact_feats too
    torch::Tensor preact;
    torch::Tensor *keep_preact = request.preact_feats ? &preact : nullptr;
    for (nn::Sequential *stage : {&layer1, &layer2, &layer3}) {
        x = run_stage(*stage, std::move(x), keep_preact);
        record_stage(out, request, x, preact);
    }
    x = torch::relu(bn2(conv2(x)));
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = linear(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> ShuffleNetV2Impl::preact_bn_affine() {
    // mdistiller ShuffleNetv2.py: get_bn_before_relu raises (no "Overhaul" teacher); none for any entry.
    return std::vector<std::pair<torch::Tensor, torch::Tensor>>(4);
}

}  // namespace dtokd
