// See shufflenet_v2.h. Unit layout follows RepDistiller models/ShuffleNetv2.py:
// the basic unit splits channels in half and transforms the second half; the
// down unit runs both branches on the full input and concatenates them.
#include "shufflenet_v2.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

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

    torch::Tensor forward(torch::Tensor x) {
        torch::Tensor kept = x.narrow(/*dim=*/1, /*start=*/0, /*length=*/half);
        torch::Tensor branch = x.narrow(/*dim=*/1, /*start=*/half, /*length=*/x.size(1) - half);
        branch = torch::relu(bn1(conv1(branch)));
        branch = bn2(conv2(branch));
        branch = torch::relu(bn3(conv3(branch)));
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

    torch::Tensor forward(torch::Tensor x) {
        torch::Tensor left = torch::relu(bn2(conv2(bn1(conv1(x)))));
        torch::Tensor right = torch::relu(bn3(conv3(x)));
        right = torch::relu(bn5(conv5(bn4(conv4(right)))));
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

torch::Tensor ShuffleNetV2Impl::forward(torch::Tensor x) {
    x = torch::relu(bn1(conv1(x)));
    x = layer3->forward(layer2->forward(layer1->forward(x)));
    x = torch::relu(bn2(conv2(x)));
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return linear(x);
}

}  // namespace dtokd
