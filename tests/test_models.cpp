// models/ (make_model and the zoo): parameter counts of the 100-class CIFAR
// variants against RepDistiller's PyTorch code and the published figures, output
// shapes for 3x32x32 and 1x28x28 inputs, gradient reach, checkpoint key names,
// the factory's errors, and the feature taps of forward_features (shapes from each
// architecture's definition, relu(preact) == feat, logits equal to forward()).
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_factory.h"
#include "vgg_cifar.h"  // vgg_cifar_blocks: the VGG widths the taps are checked against

namespace {

int64_t count_parameters(torch::nn::Module &module) {
    int64_t total = 0;
    for (const auto &p : module.parameters(/*recurse=*/true)) total += p.numel();
    return total;
}

struct ZooCount {
    const char *name;
    // sum(p.numel() for p in model.parameters()) of RepDistiller's models/*.py with
    // num_classes=100 (python3-torch 1.13; resnet.py, wrn.py, vgg.py *_bn,
    // mobilenetv2.py mobile_half, ShuffleNetv1.py, ShuffleNetv2.py, resnetv2.py ResNet50).
    int64_t reference;
    // The zoo's published size in millions, as printed (decimals digits), or < 0 where none is used.
    double published_millions;
    int decimals;
};

// resnet14: the commonly quoted 0.17M is the 10-class size truncated (175,258);
// at 100 classes RepDistiller's resnet14 has 181,108, so no published figure is checked.
const ZooCount kZooCounts[] = {
    {"resnet8", 83892, 0.08, 2},         {"resnet14", 181108, -1, 0},
    {"resnet20", 278324, 0.278, 3},      {"resnet32", 472756, 0.47, 2},
    {"resnet44", 667188, 0.67, 2},       {"resnet56", 861620, 0.86, 2},
    {"resnet110", 1736564, 1.73, 2},     {"resnet8x4", 1233540, 1.23, 2},
    {"resnet32x4", 7433860, 7.43, 2},    {"wrn_16_1", 180916, 0.18, 2},
    {"wrn_16_2", 703284, 0.70, 2},       {"wrn_40_1", 569780, 0.57, 2},
    {"wrn_40_2", 2255156, 2.26, 2},      {"vgg8", 3965028, 3.96, 2},
    {"vgg11", 9277284, -1, 0},           {"vgg13", 9462180, 9.46, 2},
    {"mobile_half", 812836, 0.81, 2},    {"shufflev1", 949258, 0.95, 2},
    {"shufflev2", 1355528, 1.36, 2},     {"resnet50", 23705252, 23.71, 2},
};

class ZooParameterCount : public ::testing::TestWithParam<ZooCount> {};

TEST_P(ZooParameterCount, MatchesRepDistillerAndPublished) {
    const ZooCount &c = GetParam();
    auto model = dtokd::make_model(c.name, /*in_channels=*/3, /*num_classes=*/100);
    const int64_t count = count_parameters(*model);
    EXPECT_EQ(count, c.reference) << c.name << ": parameter count differs from RepDistiller's";
    if (c.published_millions > 0) {
        // Within 1%, or within the rounding of the printed figure (0.08M is 0.075M..0.085M).
        const double tolerance = std::max(0.01 * c.published_millions, 0.5 * std::pow(10.0, -c.decimals));
        EXPECT_NEAR(count / 1e6, c.published_millions, tolerance) << c.name << ": " << count << " parameters";
    }
}

INSTANTIATE_TEST_SUITE_P(Models, ZooParameterCount, ::testing::ValuesIn(kZooCounts),
                         [](const auto &info) { return std::string(info.param.name); });

// Two conv(3x3)+BN stages and the linear head(s), counted by hand for 1 channel, 10 classes.
TEST(ModelsSmallCnn, ParameterCountsMatchTheirLayers) {
    // conv 1*8*9+8, BN 2*8, conv 8*16*9+16, BN 2*16, linear 16*49*10+10
    EXPECT_EQ(count_parameters(*dtokd::make_model("cnn_small", 1, 10)), 80 + 16 + 1168 + 32 + 7850);
    // conv 1*32*9+32, BN 2*32, conv 32*64*9+64, BN 2*64, linear 64*49*128+128, linear 128*10+10
    EXPECT_EQ(count_parameters(*dtokd::make_model("cnn_large", 1, 10)), 320 + 64 + 18496 + 128 + 401536 + 1290);
}

struct InputShape {
    int64_t channels, size, classes;
};

class ZooForward : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooForward, LogitShapeForCifarAndFashionMnistInputs) {
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    for (const InputShape s : {InputShape{3, 32, 100}, InputShape{1, 28, 10}}) {
        auto model = dtokd::make_model(GetParam(), int(s.channels), int(s.classes));
        model->eval();
        const torch::Tensor logits = model->forward(torch::randn({2, s.channels, s.size, s.size}));
        EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, s.classes}))
            << GetParam() << " on " << s.channels << "x" << s.size << "x" << s.size;
        EXPECT_TRUE(logits.isfinite().all().item<bool>()) << GetParam();
    }
}

// In training mode every parameter must receive a gradient: a registered but
// unused submodule (or a forward that skips one) would leave it undefined.
TEST_P(ZooForward, EveryParameterGetsAGradient) {
    torch::manual_seed(0);
    auto model = dtokd::make_model(GetParam(), /*in_channels=*/1, /*num_classes=*/10);
    model->train();
    model->forward(torch::randn({2, 1, 28, 28})).square().sum().backward();
    for (const auto &p : model->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << GetParam() << ": no gradient for " << p.key();
        EXPECT_TRUE(p.value().grad().isfinite().all().item<bool>()) << GetParam() << ": " << p.key();
    }
}

INSTANTIATE_TEST_SUITE_P(Models, ZooForward, ::testing::ValuesIn(dtokd::model_names()),
                         [](const auto &info) { return info.param; });

// The zoo promises RepDistiller's state_dict keys (so its checkpoints load by name).
TEST(ModelsCheckpointKeys, MatchRepDistillerNames) {
    const std::pair<const char *, const char *> cases[] = {
        {"resnet8x4", "layer2.0.downsample.1.running_var"},
        {"resnet32", "layer3.4.bn2.weight"},
        {"wrn_40_2", "block2.layer.0.convShortcut.weight"},
        {"vgg13", "block4.3.weight"},
        {"vgg13", "classifier.bias"},
        {"mobile_half", "blocks.3.1.conv.6.weight"},
        {"mobile_half", "classifier.0.weight"},
        {"shufflev1", "layer2.7.bn3.running_mean"},
        {"shufflev2", "layer1.0.conv5.weight"},
        {"resnet50", "layer4.0.shortcut.0.weight"},
        {"resnet50", "linear.weight"},
    };
    for (const auto &[name, key] : cases) {
        auto model = dtokd::make_model(name, 3, 100);
        std::set<std::string> keys;
        for (const auto &p : model->named_parameters()) keys.insert(p.key());
        for (const auto &b : model->named_buffers()) keys.insert(b.key());
        EXPECT_TRUE(keys.count(key)) << name << " has no '" << key << "'";
    }
}

TEST(ModelsFactory, NamesAreTheZoo) {
    const std::vector<std::string> expected = {
        "cnn_small", "cnn_large", "resnet8",  "resnet14", "resnet20",    "resnet32",  "resnet44",  "resnet56",
        "resnet110", "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1",  "wrn_40_2",  "vgg8",
        "vgg11",     "vgg13",     "mobile_half", "shufflev1", "shufflev2", "resnet50"};
    EXPECT_EQ(dtokd::model_names(), expected);
    // Every CIFAR zoo name has a reference count above.
    for (const std::string &name : dtokd::model_names()) {
        if (name.rfind("cnn_", 0) == 0) continue;
        EXPECT_TRUE(std::any_of(std::begin(kZooCounts), std::end(kZooCounts),
                                [&](const ZooCount &c) { return name == c.name; }))
            << name << " has no parameter-count case";
    }
}

TEST(ModelsFactory, UnknownNameListsKnownNames) {
    try {
        dtokd::make_model("resnet9000", 3, 10);
        FAIL() << "make_model accepted an unknown name";
    } catch (const std::invalid_argument &e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("resnet9000"), std::string::npos) << message;
        for (const std::string &name : dtokd::model_names())
            EXPECT_NE(message.find(name), std::string::npos) << "'" << name << "' missing from: " << message;
    }
}

TEST(ModelsFactory, RejectsNonPositiveSizes) {
    EXPECT_THROW(dtokd::make_model("resnet8", 0, 10), std::invalid_argument);
    EXPECT_THROW(dtokd::make_model("resnet8", 3, 0), std::invalid_argument);
}

}  // namespace

namespace {

// The small CNNs pool without argmax indices when no gradient is recorded; the values
// must equal LibTorch's max_pool2d path (taken when gradients are recorded), odd sizes too.
TEST(ModelsSmallCnn, NoGradPoolingGivesTheSameLogits) {
    torch::manual_seed(3);
    for (const std::string name : {"cnn_small", "cnn_large"}) {
        for (const int64_t side : {28, 29, 32}) {
            auto model = dtokd::make_model(name, 1, 10);
            model->eval();  // BN running stats, no dropout: both passes see the same function
            const torch::Tensor x = torch::randn({5, 1, side, side});
            const torch::Tensor with_grad = model->forward(x);
            ASSERT_TRUE(with_grad.requires_grad());
            torch::Tensor without;
            {
                torch::NoGradGuard no_grad;
                without = model->forward(x);
            }
            EXPECT_FALSE(without.requires_grad());
            EXPECT_TRUE(torch::equal(with_grad.detach(), without))
                << name << " " << side << "x" << side << ": max |diff| "
                << (with_grad.detach() - without).abs().max().item<float>();
        }
    }
}

}  // namespace

namespace {

// What a zoo model's definition says about its taps, for an input of side `side`:
// the channel width of f0..fS, the downsamplings between the input and each (one
// character per halving: 'c' a stride-2 3x3 conv or 3x3/pad-1 pool, ceil(n/2); 'f'
// a 2x2 max pool, floor(n/2)), and the width of the pooled embedding.
struct TapSpec {
    std::vector<int64_t> channels;
    std::vector<std::string> halvings;
    int64_t pooled;
};

int64_t side_after(int64_t side, const std::string &halvings) {
    for (char h : halvings) side = h == 'c' ? (side + 1) / 2 : side / 2;
    return side;
}

// The widths below restate model_factory.cpp's constructor arguments (RepDistiller's
// definitions); the downsampling patterns restate each family's forward.
TapSpec resnet_spec(std::array<int64_t, 4> filters) {  // stem, three stages (strides 1, 2, 2)
    return {{filters[0], filters[1], filters[2], filters[3]}, {"", "", "c", "cc"}, filters[3]};
}
TapSpec wrn_spec(int64_t k) {  // conv1 (16), three stages 16k, 32k, 64k (strides 1, 2, 2)
    return {{16, 16 * k, 32 * k, 64 * k}, {"", "", "c", "cc"}, 64 * k};
}
TapSpec vgg_spec(int depth) {  // five blocks; max pools before blocks 1, 2, 3 (block 4 too only at 64x64)
    TapSpec t;
    for (const auto &b : dtokd::vgg_cifar_blocks(depth)) t.channels.push_back(b.back());
    t.halvings = {"", "f", "ff", "fff", "fff"};
    t.pooled = t.channels.back();
    return t;
}

TapSpec tap_spec(const std::string &name) {
    if (name == "cnn_small") return {{8, 16}, {"", "f"}, 16 * 7 * 7};  // fc reads the flattened 7x7 grid
    if (name == "cnn_large") return {{32, 64}, {"", "f"}, 128};        // fc2 reads the 128-wide hidden layer
    for (int depth : {8, 14, 20, 32, 44, 56, 110})
        if (name == "resnet" + std::to_string(depth)) return resnet_spec({16, 16, 32, 64});
    if (name == "resnet8x4" || name == "resnet32x4") return resnet_spec({32, 64, 128, 256});
    if (name == "wrn_16_1" || name == "wrn_40_1") return wrn_spec(1);
    if (name == "wrn_16_2" || name == "wrn_40_2") return wrn_spec(2);
    for (int depth : {8, 11, 13})
        if (name == "vgg" + std::to_string(depth)) return vgg_spec(depth);
    if (name == "mobile_half") {
        // width 0.5: stem int(32 * 0.5), then stages 1, 2, 4, 6 at int(c * 0.5) for c = 24, 32, 96, 320;
        // stride 2 in the stem and in stages 2, 3, 5; the 1x1 head keeps 1280 for width <= 1.
        const double w = 0.5;
        return {{int64_t(32 * w), int64_t(24 * w), int64_t(32 * w), int64_t(96 * w), int64_t(320 * w)},
                {"c", "c", "cc", "ccc", "cccc"},
                1280};
    }
    if (name == "shufflev1") return {{24, 240, 480, 960}, {"", "c", "cc", "ccc"}, 960};
    if (name == "shufflev2") return {{24, 116, 232, 464}, {"", "c", "cc", "ccc"}, 1024};
    if (name == "resnet50") return {{64, 4 * 64, 4 * 128, 4 * 256, 4 * 512}, {"", "", "c", "cc", "ccc"}, 4 * 512};
    throw std::invalid_argument("no tap spec for '" + name + "'");
}

constexpr dtokd::FeatureRequest kAllTaps{/*feats=*/true, /*preact_feats=*/true, /*pooled=*/true};

class ZooFeatures : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooFeatures, TapShapesFollowTheArchitecture) {
    const TapSpec spec = tap_spec(GetParam());
    ASSERT_EQ(spec.channels.size(), spec.halvings.size());
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    for (const InputShape s : {InputShape{3, 32, 100}, InputShape{1, 28, 10}}) {
        const std::string where = GetParam() + " on " + std::to_string(s.channels) + "x" + std::to_string(s.size);
        auto model = dtokd::make_model(GetParam(), int(s.channels), int(s.classes));
        model->eval();
        const dtokd::ModelOutputs out =
            model->forward_features(torch::randn({2, s.channels, s.size, s.size}), kAllTaps);
        EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, s.classes})) << where;
        ASSERT_EQ(out.feats.size(), spec.channels.size()) << where;
        ASSERT_EQ(out.preact_feats.size(), spec.channels.size()) << where;
        for (size_t i = 0; i < spec.channels.size(); i++) {
            const int64_t side = side_after(s.size, spec.halvings[i]);
            const std::vector<int64_t> expected{2, spec.channels[i], side, side};
            EXPECT_EQ(out.feats[i].sizes(), expected) << where << ": feats[" << i << "]";
            EXPECT_EQ(out.preact_feats[i].sizes(), expected) << where << ": preact_feats[" << i << "]";
        }
        EXPECT_EQ(out.pooled.sizes(), (std::vector<int64_t>{2, spec.pooled})) << where << ": pooled";
    }
}

// Exempt from relu(preact) == feat, by the reference convention (mdistiller):
//   wrn_*:       pre-activation blocks end in an addition, so feats are raw stage sums and
//                preact_feats[i] (i >= 1) is the BN that follows stage i (checked below instead);
//   mobile_half: stage outputs are linear bottlenecks with no ReLU; preact_feats are the same tensors.
// Everywhere, index 0 is f0 in both lists (for the small CNNs, which have no stem, f1's BN output).
bool relu_of_preact_is_feat(const std::string &name) {
    return name.rfind("wrn_", 0) != 0 && name != "mobile_half";
}

TEST_P(ZooFeatures, PreactFeatsAreTheFeatsBeforeTheirReLU) {
    const std::string name = GetParam();
    torch::manual_seed(1);
    auto model = dtokd::make_model(name, 3, 100);
    for (const bool training : {true, false}) {
        model->train(training);
        const dtokd::ModelOutputs out = model->forward_features(torch::randn({3, 3, 32, 32}), kAllTaps);
        ASSERT_EQ(out.feats.size(), out.preact_feats.size());
        const std::string where = name + (training ? " (train)" : " (eval)");
        for (size_t i = 0; i < out.feats.size(); i++) {
            const torch::Tensor feat = out.feats[i].detach(), preact = out.preact_feats[i].detach();
            if (relu_of_preact_is_feat(name)) {
                EXPECT_TRUE(torch::equal(torch::relu(preact), feat)) << where << ": stage " << i;
                if (i > 0 || name.rfind("cnn_", 0) == 0) {  // a real pre-activation has negative entries
                    EXPECT_LT(preact.min().item<float>(), 0.f) << where << ": stage " << i;
                }
            } else if (name == "mobile_half" || i == 0) {
                EXPECT_TRUE(torch::equal(preact, feat)) << where << ": stage " << i;
            } else {
                // WRN: preact of stage i is bn1 of the next stage's first block, or the final bn1;
                // in eval mode that BN, applied again to feats[i], gives it exactly.
                if (training) continue;  // batch statistics: a second call would move running stats
                const std::string bn = i < 3 ? "block" + std::to_string(i + 1) + ".layer.0.bn1" : "bn1";
                auto *module = model->named_modules()[bn]->as<torch::nn::BatchNorm2d>();
                ASSERT_NE(module, nullptr) << bn;
                torch::NoGradGuard no_grad;
                EXPECT_TRUE(torch::equal(module->forward(feat), preact)) << where << ": stage " << i << " vs " << bn;
            }
        }
        EXPECT_TRUE(torch::equal(out.pooled.detach(), out.pooled.detach().clamp_min(0))) << where << ": pooled";
    }
}

TEST_P(ZooFeatures, LogitsEqualForwardBitwise) {
    torch::manual_seed(2);
    auto model = dtokd::make_model(GetParam(), 1, 10);
    model->eval();
    const torch::Tensor x = torch::randn({4, 1, 28, 28});
    for (const bool grad : {false, true}) {
        torch::AutoGradMode mode(grad);
        const torch::Tensor logits = model->forward(x);
        EXPECT_TRUE(torch::equal(model->forward_features(x, {}).logits, logits)) << GetParam() << " grad " << grad;
        EXPECT_TRUE(torch::equal(model->forward_features(x, kAllTaps).logits, logits))
            << GetParam() << " grad " << grad;
    }
}

TEST_P(ZooFeatures, OnlyRequestedTapsAreFilled) {
    torch::manual_seed(3);
    auto model = dtokd::make_model(GetParam(), 1, 10);
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 1, 28, 28});
    for (int mask = 0; mask < 8; mask++) {
        const dtokd::FeatureRequest request{bool(mask & 1), bool(mask & 2), bool(mask & 4)};
        const dtokd::ModelOutputs out = model->forward_features(x, request);
        EXPECT_TRUE(out.logits.defined());
        EXPECT_EQ(out.feats.empty(), !request.feats) << GetParam() << " mask " << mask;
        EXPECT_EQ(out.preact_feats.empty(), !request.preact_feats) << GetParam() << " mask " << mask;
        EXPECT_EQ(out.pooled.defined(), request.pooled) << GetParam() << " mask " << mask;
    }
}

INSTANTIATE_TEST_SUITE_P(Models, ZooFeatures, ::testing::ValuesIn(dtokd::model_names()),
                         [](const auto &info) { return info.param; });

// The pooled embedding is what the last linear layer reads: that layer applied to it gives the logits.
TEST(ZooFeaturesPooled, IsTheInputOfTheLastLinearLayer) {
    torch::NoGradGuard no_grad;
    const std::pair<const char *, const char *> last_linear[] = {
        {"cnn_small", "fc"},     {"cnn_large", "fc2"},          {"resnet20", "fc"},        {"resnet8x4", "fc"},
        {"wrn_16_2", "fc"},      {"vgg8", "classifier"},        {"mobile_half", "classifier.0"},
        {"shufflev1", "linear"}, {"shufflev2", "linear"},       {"resnet50", "linear"}};
    for (const auto &[name, linear] : last_linear) {
        torch::manual_seed(4);
        auto model = dtokd::make_model(name, 3, 100);
        model->eval();
        const dtokd::ModelOutputs out = model->forward_features(torch::randn({2, 3, 32, 32}), kAllTaps);
        auto *fc = model->named_modules()[linear]->as<torch::nn::Linear>();
        ASSERT_NE(fc, nullptr) << name << "." << linear;
        EXPECT_TRUE(torch::equal(fc->forward(out.pooled), out.logits)) << name;
    }
}

}  // namespace
