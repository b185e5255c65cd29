// dtokd::FlatArena (runtime/flat_arena.h) on a small Conv2d + BatchNorm2d + Linear
// module: parameters keep their values and become views at their slots, buffers
// and frozen parameters stay out, backward writes the routed gradient arena (vs
// torch::autograd::grad on an untouched copy of the module), and the views
// survive optimizer steps, train/eval switches, a checkpoint round trip
// (torch::load replaces storage; rebind() re-adopts it) and arena.to().
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "flat_arena.h"
#include "fused_optimizer.h"

namespace {

struct ArenaNetImpl : torch::nn::Module {
    ArenaNetImpl()
        : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, /*kernel_size=*/3)
                                                             .padding(1)))),
          bn(register_module("bn", torch::nn::BatchNorm2d(4))),
          fc(register_module("fc", torch::nn::Linear(4 * 5 * 5, 6))),
          head(register_module("head", torch::nn::Linear(6, 3))) {}

    torch::Tensor forward(const torch::Tensor &x) {
        torch::Tensor h = torch::relu(bn(conv(x)));
        h = torch::tanh(fc(h.flatten(1)));
        return head(h);
    }

    torch::nn::Conv2d conv;
    torch::nn::BatchNorm2d bn;
    torch::nn::Linear fc, head;
};
TORCH_MODULE(ArenaNet);

// Two nets with identical parameters and buffers; `freeze` turns off fc.bias.
ArenaNet make_net(bool freeze) {
    torch::manual_seed(1234);
    ArenaNet net;
    if (freeze) net->fc->bias.requires_grad_(false);
    return net;
}

std::vector<torch::Tensor> trainable(ArenaNet &net) {
    std::vector<torch::Tensor> out;
    for (auto &p : net->parameters())
        if (p.requires_grad()) out.push_back(p);
    return out;
}

torch::Tensor loss_of(ArenaNet &net, const torch::Tensor &x, const torch::Tensor &y) {
    return torch::nn::functional::cross_entropy(net->forward(x), y) + 0.1 * net->forward(x).pow(2).mean();
}

std::pair<torch::Tensor, torch::Tensor> batch(int seed) {
    torch::manual_seed(seed);
    return {torch::randn({6, 3, 5, 5}), torch::randint(0, 3, {6}, torch::kLong)};
}

// Flat gradients of `loss` w.r.t. `params`, in order, from autograd (no .grad touched).
torch::Tensor flat_autograd_grad(const torch::Tensor &loss, const std::vector<torch::Tensor> &params) {
    std::vector<torch::Tensor> flat;
    for (const auto &g : torch::autograd::grad({loss}, params)) flat.push_back(g.reshape({-1}));
    return torch::cat(flat);
}

bool points_into(const torch::Tensor &t, const torch::Tensor &arena) {
    const auto *p = static_cast<const char *>(t.data_ptr());
    const auto *lo = static_cast<const char *>(arena.data_ptr());
    return p >= lo && p < lo + arena.numel() * int64_t(sizeof(float));
}

void expect_module_matches_arena(ArenaNet &net, dtokd::FlatArena &arena) {
    auto params = net->named_parameters();
    for (const auto &slot : arena.slots()) {
        const torch::Tensor p = params[slot.name];
        EXPECT_TRUE(torch::equal(p, arena.params().narrow(0, slot.offset, slot.numel).view(slot.shape)))
            << slot.name;
    }
}

std::string temp_path(const std::string &stem) {
    static std::atomic<int> counter{0};
    return (std::filesystem::temp_directory_path() /
            (stem + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".pt"))
        .string();
}

}  // namespace

TEST(FlatArena, AdoptsTrainableParametersAsViews) {
    ArenaNet net = make_net(/*freeze=*/true);
    std::map<std::string, torch::Tensor> before;
    for (const auto &item : net->named_parameters()) before[item.key()] = item.value().detach().clone();
    const torch::Tensor frozen_ptr_owner = net->fc->bias;
    const void *frozen_ptr = frozen_ptr_owner.data_ptr();

    dtokd::FlatArena arena(*net, /*gradient_arenas=*/2);
    EXPECT_EQ(arena.gradient_arenas(), 2);

    int64_t expected_numel = 0;
    for (const auto &p : trainable(net)) expected_numel += p.numel();
    EXPECT_EQ(arena.numel(), expected_numel);
    EXPECT_EQ(arena.params().numel(), expected_numel);
    EXPECT_EQ(arena.gradients(0).numel(), expected_numel);
    EXPECT_EQ(arena.gradients(1).numel(), expected_numel);

    // One slot per trainable parameter, in order, packed without gaps.
    const auto named = net->named_parameters();
    int64_t offset = 0;
    size_t slot_index = 0;
    for (const auto &item : named) {
        const torch::Tensor &p = item.value();
        EXPECT_TRUE(torch::equal(p, before[item.key()])) << item.key() << " changed value";
        if (!p.requires_grad()) {
            EXPECT_EQ(item.key(), "fc.bias");
            EXPECT_FALSE(points_into(p, arena.params())) << "frozen " << item.key() << " is in the arena";
            EXPECT_EQ(p.data_ptr(), frozen_ptr) << "frozen " << item.key() << " was moved";
            continue;
        }
        ASSERT_LT(slot_index, arena.slots().size());
        const auto &slot = arena.slots()[slot_index++];
        EXPECT_EQ(slot.name, item.key());
        EXPECT_EQ(slot.offset, offset);
        EXPECT_EQ(slot.numel, p.numel());
        EXPECT_EQ(slot.shape, p.sizes().vec());
        EXPECT_EQ(p.data_ptr(), static_cast<void *>(arena.params().data_ptr<float>() + slot.offset)) << item.key();
        EXPECT_TRUE(p.is_contiguous()) << item.key();
        offset += p.numel();
    }
    EXPECT_EQ(slot_index, arena.slots().size());
    EXPECT_EQ(offset, arena.numel());

    // BatchNorm running statistics are buffers: they stay outside.
    for (const auto &b : net->named_buffers()) {
        if (b.value().numel() == 0) continue;
        EXPECT_FALSE(points_into(b.value(), arena.params())) << b.key();
    }

    // Writes go both ways: the arena is the storage.
    arena.params().narrow(0, 0, 1).fill_(42.0f);
    EXPECT_EQ(net->conv->weight.view({-1})[0].item<float>(), 42.0f);
    {
        torch::NoGradGuard no_grad;
        net->head->bias.fill_(-3.0f);
    }
    const auto &last = arena.slots().back();
    EXPECT_EQ(last.name, "head.bias");
    EXPECT_TRUE(torch::all(arena.params().narrow(0, last.offset, last.numel) == -3.0f).item<bool>());
    std::string why;
    EXPECT_TRUE(arena.views_intact(&why)) << why;
}

TEST(FlatArena, RoutedBackwardMatchesAutogradOnUntouchedCopy) {
    ArenaNet net = make_net(/*freeze=*/true), ref = make_net(/*freeze=*/true);
    dtokd::FlatArena arena(*net, /*gradient_arenas=*/2);
    const std::vector<torch::Tensor> ref_params = trainable(ref);
    const auto [x1, y1] = batch(1);
    const auto [x2, y2] = batch(2);

    arena.route_gradients_to(0);
    loss_of(net, x1, y1).backward();
    const torch::Tensor expect0 = flat_autograd_grad(loss_of(ref, x1, y1), ref_params);
    ASSERT_EQ(expect0.numel(), arena.numel());
    EXPECT_TRUE(torch::allclose(arena.gradients(0), expect0, /*rtol=*/1e-6, /*atol=*/1e-6))
        << "max diff " << (arena.gradients(0) - expect0).abs().max().item<double>();
    EXPECT_GT(expect0.abs().max().item<double>(), 1e-3);  // a real gradient, not zeros
    EXPECT_FALSE(net->fc->bias.grad().defined()) << "a frozen parameter got a gradient";
    std::string why;
    EXPECT_TRUE(arena.views_intact(&why)) << why;
    const torch::Tensor arena0_after_first = arena.gradients(0).clone();

    arena.route_gradients_to(1);
    loss_of(net, x2, y2).backward();
    const torch::Tensor expect1 = flat_autograd_grad(loss_of(ref, x2, y2), ref_params);
    EXPECT_TRUE(torch::allclose(arena.gradients(1), expect1, 1e-6, 1e-6))
        << "max diff " << (arena.gradients(1) - expect1).abs().max().item<double>();
    EXPECT_TRUE(torch::equal(arena.gradients(0), arena0_after_first)) << "second backward touched arena 0";
    EXPECT_FALSE(torch::allclose(expect0, expect1)) << "the two batches must give different gradients";
    for (const auto &p : trainable(net)) EXPECT_TRUE(points_into(p.grad(), arena.gradients(1)));
    EXPECT_TRUE(arena.views_intact(&why)) << why;

    // Routing back zeroes the arena, so the next backward is not accumulated on top.
    arena.route_gradients_to(0);
    EXPECT_EQ(arena.gradients(0).abs().max().item<float>(), 0.0f);
    loss_of(net, x2, y2).backward();
    EXPECT_TRUE(torch::allclose(arena.gradients(0), expect1, 1e-6, 1e-6));
}

TEST(FlatArena, ViewsIntactDetectsABrokenView) {
    ArenaNet net = make_net(/*freeze=*/false);
    dtokd::FlatArena arena(*net, 1);
    arena.route_gradients_to(0);
    std::string why;
    ASSERT_TRUE(arena.views_intact(&why)) << why;
    net->fc->weight.mutable_grad() = torch::zeros_like(net->fc->weight);
    EXPECT_FALSE(arena.views_intact(&why));
    EXPECT_NE(why.find("fc.weight"), std::string::npos) << why;
    arena.route_gradients_to(0);
    EXPECT_TRUE(arena.views_intact(&why)) << why;
    {
        torch::NoGradGuard no_grad;
        net->bn->weight.set_data(net->bn->weight.clone());
    }
    EXPECT_FALSE(arena.views_intact(&why));
    EXPECT_NE(why.find("bn.weight"), std::string::npos) << why;
    arena.rebind();
    EXPECT_TRUE(arena.views_intact(&why)) << why;
}

TEST(FlatArena, ViewsSurviveOptimizerStepsAndModeSwitches) {
    for (const char *kind : {"sgd", "adamw"}) {
        for (auto backend : {dtokd::KernelBackend::halide, dtokd::KernelBackend::torch}) {
            SCOPED_TRACE(std::string(kind) + " / " + dtokd::to_string(backend));
            ArenaNet net = make_net(/*freeze=*/true);
            dtokd::FlatArena arena(*net, 1);
            dtokd::OptimizerConfig cfg;
            cfg.kind = kind;
            cfg.sgd.lr = 0.1;
            cfg.adamw.lr = 0.01;
            dtokd::FusedOptimizer opt(arena.params(), cfg, backend);
            const auto [x, y] = batch(3);
            for (int step = 0; step < 2; step++) {
                net->train();
                arena.route_gradients_to(0);
                loss_of(net, x, y).backward();
                const torch::Tensor before = arena.params().clone();
                opt.step(arena.params(), dtokd::single_direction(arena.gradients(0)));
                std::string why;
                EXPECT_TRUE(arena.views_intact(&why)) << why;
                EXPECT_FALSE(torch::equal(arena.params(), before)) << "the step did nothing";
                expect_module_matches_arena(net, arena);
                net->eval();
                EXPECT_TRUE(arena.views_intact(&why)) << why;
                torch::NoGradGuard no_grad;
                // The module computes with the updated values (its forward reads the arena).
                const torch::Tensor out = net->forward(x);
                EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
            }
        }
    }
}

TEST(FlatArena, CheckpointRoundTripThenRebind) {
    ArenaNet net = make_net(/*freeze=*/true);
    dtokd::FlatArena arena(*net, 2);
    arena.route_gradients_to(1);
    const std::string path = temp_path("dtokd_flat_arena");
    torch::save(net, path);
    const torch::Tensor saved = arena.params().clone();
    std::map<std::string, torch::Tensor> saved_by_name;
    for (const auto &item : net->named_parameters()) saved_by_name[item.key()] = item.value().detach().clone();

    // Move away from the checkpoint, then load it back.
    arena.params().add_(1.0f);
    ASSERT_FALSE(torch::equal(arena.params(), saved));
    torch::load(net, path);
    std::filesystem::remove(path);

    std::string why;
    const bool intact_after_load = arena.views_intact(&why);
    // LibTorch's InputArchive uses Tensor::set_ on a same-device load, which swaps
    // the parameter's storage for the loaded one: the views are gone until rebind().
    EXPECT_FALSE(intact_after_load) << "torch::load kept the arena views (LibTorch changed?)";
    if (!intact_after_load) {
        EXPECT_NE(why.find("no longer views the arena"), std::string::npos) << why;
    }
    for (const auto &item : net->named_parameters())
        EXPECT_TRUE(torch::equal(item.value(), saved_by_name[item.key()])) << item.key() << " not loaded";

    arena.rebind();
    EXPECT_TRUE(arena.views_intact(&why)) << why;
    EXPECT_TRUE(torch::equal(arena.params(), saved)) << "the arena did not adopt the loaded values";
    expect_module_matches_arena(net, arena);
    for (const auto &item : net->named_parameters()) {
        if (item.value().requires_grad()) {
            EXPECT_TRUE(points_into(item.value().grad(), arena.gradients(1))) << item.key();
        }
    }

    // Training continues on the arena after the rebind.
    const auto [x, y] = batch(4);
    arena.route_gradients_to(0);
    loss_of(net, x, y).backward();
    EXPECT_GT(arena.gradients(0).abs().max().item<float>(), 0.0f);
}

TEST(FlatArena, ToSameDeviceKeepsViewsAndValues) {
    ArenaNet net = make_net(/*freeze=*/false);
    dtokd::FlatArena arena(*net, 1);
    arena.route_gradients_to(0);
    const torch::Tensor before = arena.params().clone();
    arena.to(torch::kCPU);
    std::string why;
    EXPECT_TRUE(arena.views_intact(&why)) << why;
    EXPECT_TRUE(torch::equal(arena.params(), before));
    expect_module_matches_arena(net, arena);
}

TEST(FlatArena, ToCudaMovesParametersAndGradients) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    ArenaNet net = make_net(/*freeze=*/false);
    dtokd::FlatArena arena(*net, 2);
    const torch::Tensor before = arena.params().clone();
    arena.to(torch::Device(torch::kCUDA, 0));
    std::string why;
    EXPECT_TRUE(arena.views_intact(&why)) << why;
    EXPECT_TRUE(arena.params().is_cuda());
    EXPECT_TRUE(arena.gradients(1).is_cuda());
    for (const auto &p : net->parameters()) EXPECT_TRUE(p.is_cuda());
    EXPECT_TRUE(torch::equal(arena.params().cpu(), before));
}

TEST(FlatArena, RejectsBadGradientArenaCounts) {
    ArenaNet net = make_net(/*freeze=*/false);
    EXPECT_THROW((dtokd::FlatArena{*net, 9}), std::invalid_argument);
    EXPECT_THROW((dtokd::FlatArena{*net, 0}), std::invalid_argument);
    try {
        dtokd::FlatArena arena(*net, 9);
        FAIL() << "no exception";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("9"), std::string::npos) << e.what();
    }
}
