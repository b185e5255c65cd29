// runtime/crd_objective (`crd`) against tests/python/crd_reference.py, a PyTorch
// implementation written from the formula that receives the same embeds, memory banks,
// Z and contrast indices (float64, relative error <= 1e-5): the loss, its gradients
// w.r.t. the student's pooled feature and both embeds' parameters, the first-batch Z,
// the momentum memory update; the teacher's pooled feature gets no gradient and L_t does
// not reach the student (checked with the SAME tensor as both networks' pooled feature);
// update_state=false leaves memory and Z untouched; Z is frozen after the first batch;
// bad inputs fail with one clear std::invalid_argument; and the dtokd CLI distills with
// crd,ce under dto, dto-amortized and fixed weights on tiny CIFAR-100 files, storing the
// memory banks in the checkpoint, and rejects too many negatives before any run folder.
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include "model_factory.h"
#include "objective_registry.h"
#include "cli_runner.h"
#include "scratch_data.h"
#include "torch_reference.h"

namespace {

using namespace dtokd_test;
using dtokd::NetOutputs;
using dtokd::Objective;
using dtokd::ObjectiveInputs;
using dtokd::ObjectiveValue;

// Pooled-embedding width of a zoo model on a CIFAR-sized probe.
int64_t pooled_width(const std::string &model) {
    torch::NoGradGuard no_grad;
    auto m = dtokd::make_model(model, 3, 100);
    m->eval();
    dtokd::FeatureRequest r;
    r.pooled = true;
    return m->forward_features(torch::zeros({2, 3, 32, 32}), r).pooled.size(1);
}

struct Crd {
    std::unique_ptr<Objective> objective;
    torch::nn::Module *module = nullptr;
    torch::Tensor buffer(const std::string &name) { return module->named_buffers()[name]; }
    torch::Tensor param(const std::string &name) { return module->named_parameters()[name]; }
};

// A prepared crd objective in float64, from probe pooled features of widths s_dim / t_dim.
Crd make_crd(int64_t s_dim, int64_t t_dim, int64_t dim, int64_t k, int64_t n, double temperature = 0.07,
             double momentum = 0.5) {
    dtokd::ObjectiveOptions o;
    o.crd_dim = dim;
    o.crd_negatives = k;
    o.crd_temperature = temperature;
    o.crd_momentum = momentum;
    Crd c;
    c.objective = dtokd::make_objective("crd", o);
    NetOutputs s, t;
    s.pooled = torch::zeros({2, s_dim});
    t.pooled = torch::zeros({2, t_dim});
    dtokd::PrepareContext ctx;
    ctx.num_samples = n;
    ctx.num_classes = 100;
    c.objective->prepare(s, t, ctx);
    c.module = c.objective->module();
    c.module->to(torch::kDouble);
    return c;
}

ObjectiveValue evaluate(Crd &c, const NetOutputs &s, const NetOutputs &t, const torch::Tensor &idx,
                        bool update_state = true) {
    static const torch::Tensor none;
    const torch::Tensor labels = torch::zeros({s.pooled.size(0)}, torch::kLong);
    ObjectiveInputs in{s, t, labels, none, nullptr, idx, 0, update_state};
    return c.objective->evaluate(in);
}

// Own indices distinct (a batch never holds a sample twice), negatives anywhere in [0, N).
torch::Tensor random_indices(int64_t b, int64_t k, int64_t n) {
    const torch::Tensor own = torch::randperm(n, torch::kLong).narrow(0, 0, b).unsqueeze(1);
    return torch::cat({own, torch::randint(0, n, {b, k}, torch::kLong)}, 1);
}

struct Case {
    std::string name;
    int64_t b, s_dim, t_dim, dim, k, n;
    enum Kind { kRandom, kZeros, kIdentical } kind = kRandom;
    double z_s = -1, z_t = -1;  // stored Z before the batch (-1: this is the first batch)
    bool update_state = true;
};

const char *const kGradParams[] = {"embed_s.weight", "embed_s.bias", "embed_t.weight", "embed_t.bias"};

TEST(CrdObjective, MatchesPyTorchReference) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    const int64_t r8x4 = pooled_width("resnet8x4"), r32x4 = pooled_width("resnet32x4");
    const int64_t wrn40_2 = pooled_width("wrn_40_2"), wrn16_1 = pooled_width("wrn_16_1");
    ASSERT_EQ(r8x4, 256);
    ASSERT_EQ(r32x4, 256);
    const std::vector<Case> cases = {
        {"r32x4_r8x4_first_batch", 16, r8x4, r32x4, 128, 512, 3000},
        {"r32x4_r8x4_stored_z", 16, r8x4, r32x4, 128, 512, 3000, Case::kRandom, 2.5e3, 4.0e3},
        {"wrn40_2_wrn16_1", 12, wrn16_1, wrn40_2, 32, 200, 1000},
        {"batch_of_one", 1, r8x4, r32x4, 128, 64, 500},
        {"all_zero_features", 8, r8x4, r32x4, 128, 100, 800, Case::kZeros},
        {"identical_nets", 8, r8x4, r8x4, 128, 100, 800, Case::kIdentical},
        {"frozen_state", 8, r8x4, r32x4, 128, 100, 800, Case::kRandom, -1, -1, false},
        {"reference_k", 4, r8x4, r32x4, 128, 16384, 20000},
        // N > 16 (K + 1): scores from gathered rows instead of one GEMM over the bank.
        {"gather_path", 16, r8x4, r32x4, 128, 32, 3000},
        {"gather_path_frozen", 8, wrn16_1, wrn40_2, 64, 20, 800, Case::kRandom, -1, -1, false},
        {"gather_path_identical", 4, r8x4, r8x4, 128, 16, 1000, Case::kIdentical},
    };
    TensorDict inputs;
    std::map<std::string, TensorDict> got;
    for (const Case &c : cases) {
        torch::manual_seed(100 + int(got.size()));
        Crd crd = make_crd(c.s_dim, c.t_dim, c.dim, c.k, c.n);
        EXPECT_EQ(crd.objective->contrast_negatives(), c.k);
        torch::NoGradGuard no_grad;
        crd.buffer("z_s").fill_(c.z_s);
        crd.buffer("z_t").fill_(c.z_t);
        NetOutputs s, t;
        s.pooled = torch::relu(torch::randn({c.b, c.s_dim}, torch::kDouble));
        t.pooled = torch::relu(torch::randn({c.b, c.t_dim}, torch::kDouble));
        if (c.kind == Case::kZeros) {
            s.pooled.zero_();
            t.pooled.zero_();
        }
        if (c.kind == Case::kIdentical) {
            t.pooled = s.pooled;
            crd.param("embed_t.weight").copy_(crd.param("embed_s.weight"));
            crd.param("embed_t.bias").copy_(crd.param("embed_s.bias"));
            crd.buffer("memory_t").copy_(crd.buffer("memory_s"));
        }
        s.pooled.requires_grad_(true);
        if (c.kind != Case::kIdentical) t.pooled.requires_grad_(true);  // must get no gradient
        const torch::Tensor idx = random_indices(c.b, c.k, c.n);
        const std::string p = c.name + "/";
        inputs[p + "pooled_s"] = s.pooled;
        inputs[p + "pooled_t"] = t.pooled;
        for (const char *name : kGradParams) inputs[p + name] = crd.param(name).clone();
        for (const char *name : {"memory_s", "memory_t", "z_s", "z_t"}) inputs[p + name] = crd.buffer(name).clone();
        inputs[p + "idx"] = idx;
        inputs[p + "temperature"] = torch::tensor(0.07, torch::kDouble);
        inputs[p + "momentum"] = torch::tensor(0.5, torch::kDouble);
        inputs[p + "update_state"] = torch::tensor(int64_t(c.update_state));

        ObjectiveValue v;
        {
            at::AutoGradMode grad(true);
            v = evaluate(crd, s, t, idx, c.update_state);
            ASSERT_TRUE(v.loss_tensor.defined());
            ASSERT_FALSE(v.logit_grad.defined());
            v.loss_tensor.backward();
        }
        TensorDict &g = got[c.name];
        g["loss"] = v.loss_tensor.detach();
        EXPECT_DOUBLE_EQ(v.loss, v.loss_tensor.item<double>());
        EXPECT_TRUE(std::isfinite(v.loss)) << c.name;
        g["grad_pooled_s"] = s.pooled.grad();
        if (c.kind != Case::kIdentical) {
            EXPECT_FALSE(t.pooled.grad().defined() && t.pooled.grad().abs().max().item<double>() > 0)
                << c.name << ": the teacher's pooled feature got a gradient";
        }
        for (const char *name : kGradParams) g[std::string("grad_") + name] = crd.param(name).grad();
        for (const char *name : {"memory_s", "memory_t", "z_s", "z_t"}) g[name] = crd.buffer(name).clone();
        g["updated_rows"] = idx.select(1, 0).contiguous();
        if (!c.update_state) {
            for (const char *name : {"memory_s", "memory_t", "z_s", "z_t"})
                EXPECT_TRUE(torch::equal(g[name], inputs[p + name])) << c.name << ": " << name << " changed";
        }
    }
    const TensorDict ref = run_torch_reference("crd_reference.py", "crd", inputs);

    std::map<std::string, double> worst;
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        TensorDict &g = got[c.name];
        const std::string p = c.name + "/";
        auto check = [&](const std::string &what, const torch::Tensor &mine, const torch::Tensor &want) {
            ASSERT_TRUE(mine.defined()) << what;
            const double e = relative_error(mine, want);
            EXPECT_LE(e, 1e-5) << what;
            EXPECT_TRUE(torch::isfinite(mine).all().item<bool>()) << what;
            worst[what] = std::max(worst[what], e);
        };
        check("loss", g["loss"], ref.at(p + "loss"));
        check("grad pooled_s", g["grad_pooled_s"], ref.at(p + "grad_pooled_s"));
        for (const char *name : kGradParams) check(std::string("grad ") + name, g[std::string("grad_") + name],
                                                    ref.at(p + "grad_" + name));
        check("z_s", g["z_s"], ref.at(p + "z_s"));
        check("z_t", g["z_t"], ref.at(p + "z_t"));
        const torch::Tensor rows = g["updated_rows"];
        for (const char *m : {"memory_s", "memory_t"}) {
            check(std::string(m) + " (updated rows)", g[m].index_select(0, rows), ref.at(p + m).index_select(0, rows));
            check(m, g[m], ref.at(p + m));
        }
        // The measure can fail: L alone is not L_s (nor L_t).
        EXPECT_GT(relative_error(g["loss"], ref.at(p + "loss_s")), 1e-3);
    }
    std::cout << "[ crd vs PyTorch ] max relative error over " << cases.size() << " cases:\n";
    for (const auto &[what, e] : worst) std::cout << "    " << std::setw(28) << what << "  " << e << "\n";
}

// Z is set on the first batch and then frozen; the memory moves on every batch with
// update_state, and not at all without it (dto-amortized's re-evaluation).
TEST(CrdObjective, ZIsFrozenAfterTheFirstBatchAndReevaluationChangesNothing) {
    torch::manual_seed(7);
    Crd crd = make_crd(16, 24, 8, 20, 100);
    EXPECT_EQ(crd.buffer("z_s").item<double>(), -1);
    NetOutputs s, t;
    s.pooled = torch::randn({4, 16}, torch::kDouble);
    t.pooled = torch::randn({4, 24}, torch::kDouble);
    // Re-evaluation before any batch: nothing is stored, the loss is still finite.
    EXPECT_TRUE(std::isfinite(evaluate(crd, s, t, random_indices(4, 20, 100), false).loss));
    EXPECT_EQ(crd.buffer("z_s").item<double>(), -1);
    EXPECT_EQ(crd.buffer("z_t").item<double>(), -1);

    evaluate(crd, s, t, random_indices(4, 20, 100));
    const double z_s = crd.buffer("z_s").item<double>(), z_t = crd.buffer("z_t").item<double>();
    EXPECT_GT(z_s, 0);
    EXPECT_GT(z_t, 0);
    const torch::Tensor mem_s = crd.buffer("memory_s").clone(), mem_t = crd.buffer("memory_t").clone();
    const torch::Tensor idx = random_indices(4, 20, 100);
    const double frozen = evaluate(crd, s, t, idx, false).loss;
    EXPECT_TRUE(torch::equal(crd.buffer("memory_s"), mem_s));
    EXPECT_TRUE(torch::equal(crd.buffer("memory_t"), mem_t));
    const double live = evaluate(crd, s, t, idx, true).loss;
    EXPECT_EQ(frozen, live);  // same state in, same loss out
    EXPECT_FALSE(torch::equal(crd.buffer("memory_s"), mem_s));
    EXPECT_FALSE(torch::equal(crd.buffer("memory_t"), mem_t));
    EXPECT_EQ(crd.buffer("z_s").item<double>(), z_s);
    EXPECT_EQ(crd.buffer("z_t").item<double>(), z_t);
    // Only the batch's own rows moved, to unit norm.
    const torch::Tensor moved = (crd.buffer("memory_s") - mem_s).abs().sum(1).ne(0).nonzero().flatten();
    EXPECT_TRUE(torch::equal(std::get<0>(moved.sort()), std::get<0>(idx.select(1, 0).sort())));
    EXPECT_NEAR(crd.buffer("memory_s").index_select(0, moved).norm(2, 1).sub(1).abs().max().item<double>(), 0, 1e-12);
}

TEST(CrdObjective, BanksStartUniformAndFollowTheGlobalGenerator) {
    torch::manual_seed(3);
    Crd a = make_crd(8, 8, 48, 10, 2000);
    torch::manual_seed(3);
    Crd b = make_crd(8, 8, 48, 10, 2000);
    EXPECT_TRUE(torch::equal(a.buffer("memory_s"), b.buffer("memory_s")));
    EXPECT_TRUE(torch::equal(a.buffer("memory_t"), b.buffer("memory_t")));
    EXPECT_FALSE(torch::equal(a.buffer("memory_s"), a.buffer("memory_t")));
    const double s = 1.0 / std::sqrt(48.0 / 3.0);  // 0.25
    EXPECT_EQ(a.buffer("memory_s").sizes(), (at::IntArrayRef{2000, 48}));
    EXPECT_LE(a.buffer("memory_s").abs().max().item<double>(), s);
    EXPECT_GT(a.buffer("memory_s").abs().max().item<double>(), 0.99 * s);
    EXPECT_NEAR(a.buffer("memory_s").mean().item<double>(), 0, 0.01);
}

TEST(CrdObjective, BadInputsFailWithOneClearError) {
    dtokd::ObjectiveOptions o;
    o.crd_negatives = 10;
    NetOutputs s, t, none;
    s.pooled = torch::zeros({2, 8});
    t.pooled = torch::zeros({2, 6});
    dtokd::PrepareContext ctx;
    ctx.num_samples = 50;
    auto fresh = [&] { return dtokd::make_objective("crd", o); };
    EXPECT_EQ(fresh()->contrast_negatives(), 10);
    EXPECT_EQ(fresh()->name(), "crd");
    EXPECT_TRUE(fresh()->student_taps().pooled);
    EXPECT_TRUE(fresh()->teacher_taps().pooled);
    expect_error<std::invalid_argument>([&] { fresh()->prepare(s, t, dtokd::PrepareContext{}); },
                                        {"crd", "training set size", "0 samples"});
    expect_error<std::invalid_argument>([&] { fresh()->prepare(none, t, ctx); }, {"crd", "student's pooled", "none"});
    expect_error<std::invalid_argument>([&] { fresh()->prepare(s, none, ctx); }, {"crd", "teacher's pooled", "none"});
    dtokd::PrepareContext small = ctx;
    small.num_samples = 10;
    expect_error<std::invalid_argument>([&] { fresh()->prepare(s, t, small); }, {"crd", "K = 10", "K < 10"});
    for (auto [field, value, words] :
         std::vector<std::tuple<int, double, std::vector<std::string>>>{{0, 0.0, {"embedding size 0"}},
                                                                        {1, 0.0, {"temperature"}},
                                                                        {2, 1.0, {"momentum"}}}) {
        dtokd::ObjectiveOptions bad = o;
        if (field == 0) bad.crd_dim = 0;
        if (field == 1) bad.crd_temperature = value;
        if (field == 2) bad.crd_momentum = value;
        const std::string msg =
            expect_error<std::invalid_argument>([&] { dtokd::make_objective("crd", bad)->prepare(s, t, ctx); }, {"crd"});
        for (const auto &w : words) EXPECT_TRUE(contains(msg, w)) << msg;
    }

    auto obj = fresh();
    obj->prepare(s, t, ctx);
    const torch::Tensor labels = torch::zeros({2}, torch::kLong), undefined;
    auto eval_with = [&](const torch::Tensor &idx) {
        ObjectiveInputs in{s, t, labels, undefined, nullptr, idx, 0, true};
        obj->evaluate(in);
    };
    const std::string needs = "crd needs sample indices and K negatives per sample from the data loader";
    expect_error<std::invalid_argument>([&] { eval_with(undefined); }, {needs, "[2, 11]", "none"});
    expect_error<std::invalid_argument>([&] { eval_with(torch::zeros({2, 10}, torch::kLong)); },
                                        {needs, "[2, 11]", "[2, 10]"});
    expect_error<std::invalid_argument>([&] { eval_with(torch::zeros({3, 11}, torch::kLong)); }, {needs, "[3, 11]"});
    expect_error<std::invalid_argument>([&] { eval_with(torch::zeros({2, 11}, torch::kInt)); }, {needs, "Int"});
    expect_error<std::invalid_argument>([&] { eval_with(torch::full({2, 11}, 50, torch::kLong)); },
                                        {"crd", "[0, 50)", "50]"});
    EXPECT_NO_THROW(eval_with(torch::randint(0, 50, {2, 11}, torch::kLong)));
    // With the batch's sample indices given, column 0 must be them.
    const torch::Tensor own = torch::tensor({int64_t(3), int64_t(4)});
    const torch::Tensor idx = torch::randint(0, 50, {2, 11}, torch::kLong);
    idx.select(1, 0).copy_(own);
    ObjectiveInputs with_own{s, t, labels, own, nullptr, idx, 0, true};
    EXPECT_NO_THROW(obj->evaluate(with_own));
    const torch::Tensor other = own + 1;
    ObjectiveInputs wrong_own{s, t, labels, other, nullptr, idx, 0, true};
    expect_error<std::invalid_argument>([&] { obj->evaluate(wrong_own); }, {"crd", "column 0", "own index"});
}

// ---- the dtokd CLI on tiny CIFAR-100 files -------------------------------------------

// CIFAR-100 binary records: coarse label, fine label, 3072 pixels. Fine label i % 100,
// so every class has n / 100 samples and the other-class pool n - n / 100.
void write_cifar100(const std::string &path, int n, uint32_t seed) {
    const Bytes pixels = random_bytes(size_t(n) * 3072, seed);
    Bytes out;
    for (int i = 0; i < n; i++) {
        out.push_back(uint8_t(i % 20));
        out.push_back(uint8_t(i % 100));
        out.insert(out.end(), pixels.begin() + i * 3072, pixels.begin() + (i + 1) * 3072);
    }
    write_bytes(path, out);
}

TEST(CrdCli, DistillsWithCrdAndStoresTheMemoryBanks) {
    ScratchDir root("crd-cli");
    fs::create_directories(root / "data");
    write_cifar100(root / "data/train.bin", 300, 1);
    write_cifar100(root / "data/test.bin", 100, 2);
    const std::string data = "--dataset cifar100 --data " + quoted(root / "data") + " --epochs 1 --no-progress";
    const CliResult teacher = run_cli("train " + data + " --model cnn_small --max-steps 2 --batch-size 32 --out " +
                                      quoted(root / "teacher"));
    ASSERT_EQ(teacher.code, 0) << teacher.output;
    // resnet8 (pooled 64) from cnn_small (pooled 784): the embeds bridge different widths.
    const std::string distill = "distill " + data + " --model resnet8 --teacher " +
                                quoted(root / "teacher/checkpoint.pt") +
                                " --max-steps 3 --batch-size 16 --log-interval 1 --objectives crd,ce";
    for (const std::string method : {"dto --crd-negatives 32", "dto-amortized --crd-negatives 32",
                                     "sum --weights 0.8,1 --crd-negatives 64"}) {
        SCOPED_TRACE(method);
        const std::string out = root / ("run-" + method.substr(0, method.find(' ')));
        const CliResult r = run_cli(distill + " --method " + method + " --out " + quoted(out));
        ASSERT_EQ(r.code, 0) << r.output;
        const Bytes metrics_bytes = read_bytes(out + "/metrics.jsonl");
        const std::string metrics(metrics_bytes.begin(), metrics_bytes.end());
        int losses = 0;
        const std::regex loss_re(R"("loss_crd":([^,}]*))");
        for (auto it = std::sregex_iterator(metrics.begin(), metrics.end(), loss_re); it != std::sregex_iterator();
             ++it) {
            const std::string v = (*it)[1];
            EXPECT_TRUE(std::isfinite(std::strtod(v.c_str(), nullptr)) && v != "null") << v;
            losses++;
        }
        EXPECT_EQ(losses, 3) << metrics;
        const Bytes ckpt = read_bytes(out + "/checkpoint.pt");
        const std::string text(ckpt.begin(), ckpt.end());
        for (const char *key : {"objective/crd.memory_s", "objective/crd.memory_t", "objective/crd.z_s",
                                "objective/crd.z_t", "objective/crd.embed_s.weight", "objective/crd.embed_t.weight"})
            EXPECT_TRUE(contains(text, key)) << key;
    }
    // 300 samples, 3 per class: at most 297 negatives without replacement.
    struct Bad {
        std::string args;
        std::vector<std::string> words;
    };
    for (const Bad &bad : std::vector<Bad>{{"--crd-negatives 298", {"'crd'", "K = 298", "K <= 297"}},
                                           {"--crd-negatives 300", {"crd", "K = 300", "K < 300"}},
                                           {"--method dto-logit --crd-negatives 8", {"dto-logit", "'crd'"}}}) {
        SCOPED_TRACE(bad.args);
        const std::string out = root / "bad";
        const std::string method = contains(bad.args, "--method") ? "" : " --method dto";
        const CliResult r = run_cli(distill + method + " " + bad.args + " --out " + quoted(out));
        EXPECT_NE(r.code, 0) << r.output;
        for (const auto &w : bad.words) EXPECT_TRUE(contains(r.output, w)) << "no '" << w << "' in: " << r.output;
        EXPECT_FALSE(fs::exists(out));
        EXPECT_FALSE(fs::exists(out + ".partial"));
    }
}

}  // namespace
