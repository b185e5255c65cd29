// See model_factory.h. The registry is one table: adding a model is one line.
#include "model_factory.h"

#include <array>
#include <functional>
#include <stdexcept>

#include "mobilenet_v2_cifar.h"
#include "resnet50_cifar.h"
#include "resnet_cifar.h"
#include "shufflenet_v1.h"
#include "shufflenet_v2.h"
#include "small_cnn.h"
#include "vgg_cifar.h"
#include "wide_resnet.h"

namespace dtokd {
namespace {

using Builder = std::function<std::shared_ptr<ClassifierImpl>(int64_t in_channels, int64_t num_classes)>;

Builder resnet_cifar(int64_t depth, std::array<int64_t, 4> filters) {
    return [=](int64_t in, int64_t classes) { return std::make_shared<ResNetCifarImpl>(depth, filters, in, classes); };
}

Builder wide_resnet(int64_t depth, int64_t widen_factor) {
    return [=](int64_t in, int64_t classes) {
        return std::make_shared<WideResNetImpl>(depth, widen_factor, in, classes);
    };
}

Builder vgg_cifar(int depth) {
    return [=](int64_t in, int64_t classes) {
        return std::make_shared<VggCifarImpl>(vgg_cifar_blocks(depth), in, classes);
    };
}

template <typename Impl>
Builder plain() {
    return [](int64_t in, int64_t classes) { return std::make_shared<Impl>(in, classes); };
}

const std::vector<std::pair<std::string, Builder>> &registry() {
    static const std::vector<std::pair<std::string, Builder>> table = {
        {"cnn_small", plain<CnnSmallImpl>()},
        {"cnn_large", plain<CnnLargeImpl>()},
        {"resnet8", resnet_cifar(8, {16, 16, 32, 64})},
        {"resnet14", resnet_cifar(14, {16, 16, 32, 64})},
        {"resnet20", resnet_cifar(20, {16, 16, 32, 64})},
        {"resnet32", resnet_cifar(32, {16, 16, 32, 64})},
        {"resnet44", resnet_cifar(44, {16, 16, 32, 64})},
        {"resnet56", resnet_cifar(56, {16, 16, 32, 64})},
        {"resnet110", resnet_cifar(110, {16, 16, 32, 64})},
        {"resnet8x4", resnet_cifar(8, {32, 64, 128, 256})},
        {"resnet32x4", resnet_cifar(32, {32, 64, 128, 256})},
        {"wrn_16_1", wide_resnet(16, 1)},
        {"wrn_16_2", wide_resnet(16, 2)},
        {"wrn_40_1", wide_resnet(40, 1)},
        {"wrn_40_2", wide_resnet(40, 2)},
        {"vgg8", vgg_cifar(8)},
        {"vgg11", vgg_cifar(11)},
        {"vgg13", vgg_cifar(13)},
        {"mobile_half",
         [](int64_t in, int64_t classes) {
             return std::make_shared<MobileNetV2CifarImpl>(/*expansion=*/6, /*width_mult=*/0.5, in, classes);
         }},
        {"shufflev1",
         [](int64_t in, int64_t classes) {
             return std::make_shared<ShuffleNetV1Impl>(std::array<int64_t, 3>{240, 480, 960},
                                                       std::array<int64_t, 3>{4, 8, 4}, /*groups=*/3, in, classes);
         }},
        {"shufflev2",
         [](int64_t in, int64_t classes) {
             return std::make_shared<ShuffleNetV2Impl>(std::array<int64_t, 4>{116, 232, 464, 1024},
                                                       std::array<int64_t, 3>{3, 7, 3}, in, classes);
         }},
        {"resnet50", plain<ResNet50CifarImpl>()},
    };
    return table;
}

std::string joined_names() {
    std::string out;
    for (const auto &entry : registry()) out += (out.empty() ? "" : ", ") + entry.first;
    return out;
}

}  // namespace

std::shared_ptr<ClassifierImpl> make_model(const std::string &name, int in_channels, int num_classes) {
    if (in_channels < 1 || num_classes < 1)
        throw std::invalid_argument("make_model('" + name + "'): in_channels " + std::to_string(in_channels) +
                                    ", num_classes " + std::to_string(num_classes) + "; expected both >= 1");
    for (const auto &entry : registry())
        if (entry.first == name) return entry.second(in_channels, num_classes);
    throw std::invalid_argument("make_model: unknown model '" + name + "'; known models: " + joined_names());
}

std::vector<std::string> model_names() {
    std::vector<std::string> names;
    for (const auto &entry : registry()) names.push_back(entry.first);
    return names;
}

}  // namespace dtokd
