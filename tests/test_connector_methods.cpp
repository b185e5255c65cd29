// The objectives with trainable connectors (ofd, reviewkd, fitnet) vs PyTorch implementations
// of mdistiller's formulas (tests/python/connector_methods_reference.py) that receive the C++
// modules' parameter values: the loss and its gradients w.r.t. every student tap read and every
// module parameter, in float64, on the tap shapes of real zoo pairs (resnet32x4 -> resnet8x4 and
// pairs with other channel counts, sizes and stage counts) and edge cases (batch 1, all-zero
// features, identical student and teacher, OFD margins on both sides of Phi(-m/s) = 0.001 and at
// |gamma| = 0). Also: the zoo's preact BatchNorms line up with preact_feats; prepare()'s errors;
// one `dto` step over {ce, ofd} and {ce, reviewkd} through ObjectiveBatch.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cuda_tagged_archive.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "model_factory.h"
#include "net_taps.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "torch_reference.h"
#include "tradeoff_policy.h"

namespace {

using namespace dtokd_test;
using dtokd::NetOutputs;
constexpr double kTol = 1e-5;

// The taps of zoo model `name` for a batch of `batch` 3x32x32 images (eval mode, float32).
dtokd::ModelOutputs zoo_taps(const std::string &name, int64_t batch) {
    torch::manual_seed(0);
    auto model = dtokd::make_model(name, 3, 100);
    model->eval();
    torch::NoGradGuard no_grad;
    return model->forward_features(torch::randn({batch, 3, 32, 32}), {true, true, true});
}

// Random float64 taps with the real shapes of `name`: post-ReLU feats and pooled, signed preact_feats.
NetOutputs random_taps(const std::string &name, int64_t batch, bool zero = false) {
    const dtokd::ModelOutputs real = zoo_taps(name, batch);
    auto like = [zero](const torch::Tensor &t, bool relu) {
        if (zero) return torch::zeros(t.sizes(), torch::kDouble);
        const torch::Tensor r = torch::randn(t.sizes(), torch::kDouble);
        return relu ? torch::relu(r) : r;
    };
    NetOutputs out;
    out.logits = torch::randn({batch, 100}, torch::kDouble);
    for (const auto &f : real.feats) out.feats.push_back(like(f, true));
    for (const auto &f : real.preact_feats) out.preact_feats.push_back(like(f, false));
    out.pooled = like(real.pooled, true);
    return out;
}

// The student's taps as leaves that record gradients.
NetOutputs with_grad(NetOutputs s) {
    for (auto &f : s.feats) f = f.detach().clone().requires_grad_(true);
    for (auto &f : s.preact_feats) f = f.detach().clone().requires_grad_(true);
    s.pooled = s.pooled.detach().clone().requires_grad_(true);
    return s;
}

// Teacher BN (weight, bias) per preact entry, undefined for the stem: random, plus channels that hit
// each margin branch: m/s = 4 (Phi = 3e-5 <= 0.001: -3s), m/s = 3 (Phi = 0.00135: the formula),
// s = 0 (the limit min(m, 0)), and a negative weight (|s|).
std::vector<std::pair<torch::Tensor, torch::Tensor>> teacher_bns(const NetOutputs &t) {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (size_t i = 1; i < t.preact_feats.size(); i++) {
        const int64_t c = t.preact_feats[i].size(1);
        torch::Tensor w = torch::rand({c}, torch::kDouble) + 0.5, b = torch::randn({c}, torch::kDouble);
        b[0] = 4.0 * w[0].item<double>();
        b[1] = 3.0 * w[1].item<double>();
        w[2] = 0.0;
        b[2] = -0.3;
        w[3] = -w[3];
        out.emplace_back(w.to(torch::kFloat), b.to(torch::kFloat));
    }
    return out;
}

// Module parameters moved off their defaults (BN affine 1 / 0), so their gradients are tested
// at a generic point.
void perturb(torch::nn::Module &m) {
    torch::NoGradGuard no_grad;
    for (auto &p : m.named_parameters())
        if (p.key().find("weight") != std::string::npos && p.value().dim() == 1)
            p.value().uniform_(0.5, 1.5);
        else if (p.key().find("bias") != std::string::npos)
            p.value().normal_(0.0, 0.2);
}

struct Case {
    std::string label;
    NetOutputs s, t;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> teacher_bns;  // OFD's margins
    dtokd::ObjectiveOptions options;
    int epoch = 0;
    std::unique_ptr<dtokd::Objective> objective;
};

// What a method's test reads from a case into the Python dict, and the student taps to compare.
using TapMap = std::map<std::string, torch::Tensor>;

struct Errors {
    std::map<std::string, double> max;  // per compared quantity kind
    void add(const std::string &kind, double e) { max[kind] = std::max(max[kind], e); }
};

// Runs every case through its objective (backward from the loss), then the Python reference once,
// and checks the loss and every gradient; returns the largest relative error per kind.
Errors compare(const std::string &method, std::vector<Case> &cases,
               const std::function<TapMap(const Case &)> &student_taps,
               const std::function<TapMap(const Case &)> &other_inputs) {
    TensorDict in{{"cases", torch::tensor(int64_t(cases.size()))}};
    std::vector<double> losses;
    std::vector<TapMap> taps;
    for (size_t k = 0; k < cases.size(); k++) {
        Case &c = cases[k];
        const std::string p = std::to_string(k) + ".";
        taps.push_back(student_taps(c));
        for (const auto &[n, v] : taps.back()) in[p + n] = v.detach();
        for (const auto &[n, v] : other_inputs(c)) in[p + n] = v.detach();
        for (const auto &np : c.objective->module()->named_parameters()) in[p + "p." + np.key()] = np.value().detach();
        const dtokd::ObjectiveValue v =
            c.objective->evaluate({c.s, c.t, torch::Tensor(), torch::Tensor(), nullptr, torch::Tensor(), c.epoch});
        EXPECT_TRUE(std::isfinite(v.loss)) << c.label;
        EXPECT_EQ(v.loss, v.loss_tensor.item<double>());
        v.loss_tensor.backward();
        losses.push_back(v.loss);
    }
    const TensorDict ref = run_torch_reference("connector_methods_reference.py", method, in);
    Errors errors;
    for (size_t k = 0; k < cases.size(); k++) {
        Case &c = cases[k];
        const std::string p = std::to_string(k) + ".";
        const double e_loss = relative_error(torch::tensor(losses[k], torch::kDouble), ref.at(p + "loss"));
        EXPECT_LE(e_loss, kTol) << c.label << ": loss " << losses[k] << " vs " << ref.at(p + "loss").item<double>();
        errors.add("loss", e_loss);
        for (const auto &[n, leaf] : taps[k]) {
            const torch::Tensor g = leaf.grad().defined() ? leaf.grad() : torch::zeros_like(leaf);
            const torch::Tensor want = ref.at(p + "grad." + n);
            const double e = relative_error(g, want);
            EXPECT_LE(e, kTol) << c.label << ": d loss / d student " << n;
            errors.add("grad student taps", e);
            if (want.abs().max().item<double>() > 0) {
                EXPECT_GT(g.abs().max().item<double>(), 0) << c.label << n;
            }
        }
        for (const auto &np : c.objective->module()->named_parameters()) {
            const torch::Tensor g = np.value().grad();
            EXPECT_TRUE(g.defined()) << c.label << ": no gradient for " << np.key();
            if (!g.defined()) continue;
            const double e = relative_error(g, ref.at(p + "grad.p." + np.key()));
            EXPECT_LE(e, kTol) << c.label << ": d loss / d " << np.key();
            errors.add("grad module params", e);
        }
        if (method == "ofd")
            for (const auto &nb : c.objective->module()->named_buffers()) {
                if (nb.key().rfind("margin_", 0) != 0) continue;
                const std::string i = nb.key().substr(std::string("margin_").size());
                const double e = relative_error(nb.value(), ref.at(p + "margin" + i));
                EXPECT_LE(e, 1e-6) << c.label << ": " << nb.key();  // float32 values (the reference's)
                errors.add("margins", e);
            }
    }
    return errors;
}

void report(const std::string &method, const Errors &errors) {
    for (const auto &[kind, e] : errors.max) {
        std::printf("%s max relative error, %s: %.3g\n", method.c_str(), kind.c_str(), e);
        ::testing::Test::RecordProperty(method + " " + kind, c10::str(e));
    }
}

// A case on the real tap shapes of teacher `t_name` -> student `s_name`.
Case make_case(const std::string &method, const std::string &t_name, const std::string &s_name, int64_t batch,
               const std::string &edge = "", int epoch = 30) {
    Case c;
    c.epoch = epoch;
    c.label = t_name + " -> " + s_name + " batch " + std::to_string(batch) + (edge.empty() ? "" : " " + edge);
    c.t = random_taps(t_name, batch, edge == "zero");
    c.s = edge == "identical" ? c.t : random_taps(s_name, batch, edge == "zero");
    if (edge == "identical" && method == "reviewkd") c.s.feats = c.t.preact_feats;  // student reads feats
    if (edge == "identical" && method == "fitnet") c.s.feats = c.t.feats;
    c.s = with_grad(c.s);
    dtokd::PrepareContext context;
    c.teacher_bns = teacher_bns(c.t);
    context.teacher_preact_bn = c.teacher_bns;
    c.objective = dtokd::make_objective(method, c.options);
    c.objective->prepare(c.s, c.t, context);
    c.objective->module()->to(torch::kDouble);
    if (edge != "default-init") perturb(*c.objective->module());
    return c;
}

TapMap indexed(const std::vector<torch::Tensor> &list, const std::string &prefix, size_t from = 1) {
    TapMap out;
    for (size_t i = from; i < list.size(); i++) out[prefix + std::to_string(i - from)] = list[i];
    return out;
}

}  // namespace

TEST(ConnectorMethods, OfdMatchesPyTorch) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(1);
    std::vector<Case> cases;
    cases.push_back(make_case("ofd", "resnet32x4", "resnet8x4", 4));
    cases.push_back(make_case("ofd", "wrn_40_2", "shufflev2", 3));  // other channels, student maps half the size
    cases.push_back(make_case("ofd", "vgg13", "resnet8x4", 2));     // 4 teacher stages vs 3: the last 3 of each
    cases.push_back(make_case("ofd", "wrn_40_2", "wrn_16_1", 2, "default-init"));
    cases.push_back(make_case("ofd", "resnet8x4", "resnet8x4", 1));
    cases.push_back(make_case("ofd", "resnet8x4", "resnet8x4", 2, "identical"));
    cases.push_back(make_case("ofd", "resnet32x4", "resnet8x4", 2, "zero"));
    // The connectors: Conv1x1 (no bias) + BN per stage, s_C -> t_C (vgg13's last three stages).
    const auto params = cases[2].objective->module()->named_parameters();
    EXPECT_EQ(params.size(), 9u);
    EXPECT_EQ(params["connectors.0.0.weight"].sizes().vec(), (std::vector<int64_t>{256, 64, 1, 1}));
    EXPECT_EQ(params["connectors.2.1.weight"].sizes().vec(), (std::vector<int64_t>{512}));
    EXPECT_TRUE(cases[0].objective->teacher_train_mode()) << "the reference keeps the teacher's BN in train mode";
    const Errors e = compare(
        "ofd", cases, [](const Case &c) { return indexed(c.s.preact_feats, "s"); },
        [](const Case &c) {
            TapMap m = indexed(c.t.preact_feats, "t");
            for (size_t i = 1; i < c.teacher_bns.size(); i++) {
                m["tw" + std::to_string(i - 1)] = c.teacher_bns[i].first.to(torch::kDouble);
                m["tb" + std::to_string(i - 1)] = c.teacher_bns[i].second.to(torch::kDouble);
            }
            return m;
        });
    report("ofd", e);
}

TEST(ConnectorMethods, ReviewKdMatchesPyTorch) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(2);
    std::vector<Case> cases;
    cases.push_back(make_case("reviewkd", "resnet32x4", "resnet8x4", 2, "", /*epoch=*/0));  // warmup 1/20
    cases.push_back(make_case("reviewkd", "resnet32x4", "shufflev2", 2));  // the reference's shufflev2 pair
    cases.push_back(make_case("reviewkd", "vgg13", "vgg8", 2));            // 5 levels
    cases.push_back(make_case("reviewkd", "vgg13", "resnet8x4", 2, "", /*epoch=*/7));  // 5 teacher levels vs 4
    cases.push_back(make_case("reviewkd", "wrn_40_2", "wrn_16_1", 3, "default-init"));
    cases.push_back(make_case("reviewkd", "resnet8x4", "resnet8x4", 2, "identical"));
    cases.push_back(make_case("reviewkd", "resnet32x4", "resnet8x4", 2, "zero"));
    // The reference's configuration for resnet32x4 -> resnet8x4: mid 256, in = out = [64, 128, 256, 256],
    // deepest first in the module (abfs.0 = the pooled level, without attention).
    auto params = cases[0].objective->module()->named_parameters();
    EXPECT_EQ(params["abfs.0.conv1.0.weight"].sizes().vec(), (std::vector<int64_t>{256, 256, 1, 1}));
    EXPECT_FALSE(params.contains("abfs.0.att_conv.0.weight"));
    EXPECT_EQ(params["abfs.3.conv1.0.weight"].sizes().vec(), (std::vector<int64_t>{256, 64, 1, 1}));
    EXPECT_EQ(params["abfs.3.conv2.0.weight"].sizes().vec(), (std::vector<int64_t>{64, 256, 3, 3}));
    EXPECT_EQ(params["abfs.3.att_conv.0.weight"].sizes().vec(), (std::vector<int64_t>{2, 512, 1, 1}));
    EXPECT_EQ(params.size(), 4u * 6 + 3 * 2);
    // shufflev2: mid = min(512, 1024).
    params = cases[1].objective->module()->named_parameters();
    EXPECT_EQ(params["abfs.1.conv1.0.weight"].sizes().vec(), (std::vector<int64_t>{512, 464, 1, 1}));
    const Errors e = compare(
        "reviewkd", cases,
        [](const Case &c) {
            TapMap m = indexed(c.s.feats, "s");
            m["sp"] = c.s.pooled;
            return m;
        },
        [](const Case &c) {
            TapMap m = indexed(c.t.preact_feats, "t");
            m["tp"] = c.t.pooled;
            m["epoch"] = torch::tensor(double(c.epoch));
            m["warmup"] = torch::tensor(double(c.options.warmup_epochs));
            return m;
        });
    report("reviewkd", e);
}

TEST(ConnectorMethods, FitNetMatchesPyTorch) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(3);
    std::vector<Case> cases;
    cases.push_back(make_case("fitnet", "resnet32x4", "resnet8x4", 4));  // 1x1 conv
    cases.push_back(make_case("fitnet", "wrn_40_2", "shufflev2", 2));    // 2 s_H = t_H: ConvTranspose 4x4
    cases.push_back(make_case("fitnet", "vgg13", "resnet8x4", 2));       // s_H = 2 t_H: Conv 3x3 stride 2
    cases.push_back(make_case("fitnet", "vgg13", "vgg8", 1));
    cases.push_back(make_case("fitnet", "wrn_40_2", "wrn_16_1", 2, "default-init"));
    cases.push_back(make_case("fitnet", "resnet8x4", "resnet8x4", 2, "identical"));
    cases.push_back(make_case("fitnet", "resnet32x4", "resnet8x4", 2, "zero"));
    EXPECT_EQ(cases[1].objective->module()->named_parameters()["conv.weight"].sizes().vec(),
              (std::vector<int64_t>{232, 64, 4, 4}));
    EXPECT_EQ(cases[2].objective->module()->named_parameters()["conv.weight"].sizes().vec(),
              (std::vector<int64_t>{256, 128, 3, 3}));
    const Errors e = compare(
        "fitnet", cases, [](const Case &c) { return TapMap{{"s", c.s.feats[2]}}; },
        [](const Case &c) { return TapMap{{"t", c.t.feats[2]}}; });
    report("fitnet", e);
}

// preact_bn_affine() lines up with preact_feats for every zoo family: shifting the named BN's bias
// by delta shifts the tap by exactly delta (the BN output enters the tap additively); where the tap
// IS the BN output (wrn, vgg, the small CNNs, MobileNetV2's last stage), zeroing the BN's weight
// leaves the tap constant at the bias. ResNet (bn2 / bn3 + shortcut) and MobileNetV2's residual
// stages 1, 2, 4 take the reference's get_bn_before_relu pick, a BN before the residual add, so the
// tap is that BN's output plus the shortcut, not the BN output itself. ShuffleNets: none (the
// reference raises for them), stems: none.
TEST(PreactBatchNorm, LinesUpWithPreactFeats) {
    for (const std::string &name : dtokd::model_names()) {
        SCOPED_TRACE(name);
        torch::manual_seed(5);
        auto model = dtokd::make_model(name, 3, 10);
        model->eval();
        torch::NoGradGuard no_grad;
        const torch::Tensor x = torch::randn({2, 3, 32, 32});
        auto taps = [&] { return model->forward_features(x, {false, true, false}).preact_feats; };
        const std::vector<torch::Tensor> before = taps();
        const auto bns = model->preact_bn_affine();
        ASSERT_EQ(bns.size(), before.size());
        const bool shuffle = name.rfind("shuffle", 0) == 0, cnn = name.rfind("cnn", 0) == 0;
        if (!cnn) {
            EXPECT_FALSE(bns[0].first.defined()) << "the stem entry has no BN before a ReLU";
        }
        for (size_t i = cnn ? 0 : 1; i < bns.size(); i++) {
            SCOPED_TRACE("preact_feats[" + std::to_string(i) + "]");
            auto [w, b] = bns[i];
            if (shuffle) {
                EXPECT_FALSE(w.defined());
                continue;
            }
            ASSERT_TRUE(w.defined() && b.defined());
            const int64_t c = before[i].size(1);
            ASSERT_EQ(w.numel(), c);
            ASSERT_EQ(b.numel(), c);
            const torch::Tensor b0 = b.clone(), w0 = w.clone();
            const torch::Tensor delta = torch::randn({c});
            b.add_(delta);
            const torch::Tensor shifted = taps()[i];
            const double scale = std::max(1.0, before[i].abs().max().item<double>());
            EXPECT_LE((shifted - before[i] - delta.view({1, c, 1, 1})).abs().max().item<double>(), 1e-5 * scale);
            w.zero_();
            const torch::Tensor flat = taps()[i];
            const bool exact = (flat - b.view({1, c, 1, 1})).abs().max().item<double>() < 1e-5;
            const bool residual = name.rfind("resnet", 0) == 0 || (name == "mobile_half" && i < 4);
            EXPECT_EQ(exact, !residual);
            b.copy_(b0);
            w.copy_(w0);
        }
        EXPECT_TRUE(taps().back().equal(before.back())) << "parameters restored";
    }
}

// prepare()'s errors: one std::invalid_argument naming the objective, the net and what is expected.
TEST(ConnectorMethods, PrepareErrors) {
    auto expect_error = [](const std::string &method, const NetOutputs &s, const NetOutputs &t,
                           const dtokd::PrepareContext &context, const std::vector<std::string> &words) {
        try {
            dtokd::make_objective(method)->prepare(s, t, context);
            ADD_FAILURE() << method << ": expected std::invalid_argument containing " << words.front();
        } catch (const std::invalid_argument &e) {
            for (const auto &w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
        }
    };
    const NetOutputs s = random_taps("resnet8x4", 2), t = random_taps("resnet32x4", 2);
    dtokd::PrepareContext named;
    named.teacher_name = "teacher.pt";
    // OFD: a teacher that gives no BatchNorms (TorchScript), one without a BN before a used tap (ShuffleNet).
    expect_error("ofd", s, t, named, {"ofd", "teacher 'teacher.pt'", "BatchNorm", "0"});
    dtokd::PrepareContext shuffle = named;
    shuffle.teacher_preact_bn.resize(4);
    expect_error("ofd", s, random_taps("shufflev2", 2), shuffle, {"ofd", "teacher 'teacher.pt'", "preact_feats[1]"});
    NetOutputs stem_only = s;
    stem_only.preact_feats.resize(1);
    expect_error("ofd", stem_only, t, {}, {"ofd", "student", "preact_feats", "at least 2"});
    // ReviewKD: no pooled embedding, a level larger than the shallower one.
    NetOutputs no_pool = s;
    no_pool.pooled = torch::Tensor();
    expect_error("reviewkd", no_pool, t, {}, {"reviewkd", "student", "pooled"});
    NetOutputs growing = t;
    std::swap(growing.preact_feats[1], growing.preact_feats[3]);
    expect_error("reviewkd", s, growing, named, {"reviewkd", "teacher 'teacher.pt'", "no ABF chain"});
    NetOutputs flat = s;
    flat.feats[2] = flat.feats[2].flatten(1);
    expect_error("reviewkd", flat, t, {}, {"reviewkd", "feats[2]", "[batch, channels, height, width]"});
}

// One `dto` step over {ce, ofd} and {ce, reviewkd} with zoo networks through ObjectiveBatch:
// finite losses and weights, the student and the objective's modules move, and the modules'
// parameters (and OFD's margins) are in ObjectiveList::named_state().
class ConnectorPolicyStep : public ::testing::TestWithParam<std::string> {};

TEST_P(ConnectorPolicyStep, DtoStepMovesStudentAndModules) {
    const std::string method = GetParam();
    torch::manual_seed(7);
    auto student = dtokd::make_model("resnet8", 3, 10), teacher = dtokd::make_model("resnet14", 3, 10);
    const torch::Tensor x = torch::randn({4, 3, 32, 32}), labels = torch::randint(0, 10, {4}, torch::kLong);
    auto list = dtokd::make_objective_list({"ce", method});
    const dtokd::FeatureRequest s_req = dtokd::to_feature_request(list->student_taps());
    auto forward = [&] { return dtokd::to_net_outputs(student->forward_features(x, s_req)); };
    NetOutputs t_out;
    dtokd::OptimizerConfig oc;
    oc.sgd.lr = 0.1;
    oc.sgd.momentum = 0.9;
    oc.sgd.weight_decay = 5e-4;
    {
        torch::NoGradGuard no_grad;
        teacher->train(method == "ofd");  // the reference's teacher BN mode for each
        t_out = dtokd::to_net_outputs(teacher->forward_features(x, dtokd::to_feature_request(list->teacher_taps())));
        student->eval();
        dtokd::PrepareContext context;
        context.teacher_preact_bn = teacher->preact_bn_affine();
        list->prepare(forward(), t_out, context, oc);
        student->train();
    }
    dtokd::PolicyConfig pc;
    pc.method = "dto";
    auto policy = dtokd::make_policy(pc);
    dtokd::FlatArena arena(*student, policy->gradient_arenas(list->size()));
    dtokd::FusedOptimizer optimizer(arena.params(), oc, dtokd::KernelBackend::halide);
    dtokd::PolicyContext ctx{arena, optimizer, dtokd::KernelBackend::halide};

    std::vector<torch::Tensor> module_before;
    for (const auto &p : list->at(1).module()->parameters()) module_before.push_back(p.detach().clone());
    const torch::Tensor theta_before = arena.params().detach().clone();
    dtokd::BatchTargets targets;
    targets.labels = labels;
    targets.epoch = 3;
    dtokd::ObjectiveBatch batch(*list, forward, *student, t_out, targets, dtokd::KdLossOptions{4.0, 0.0},
                                dtokd::KernelBackend::halide);
    const dtokd::StepStats s = policy->step(batch, ctx, 0);
    ASSERT_FALSE(s.skipped) << s.skip_reason;
    ASSERT_EQ(s.objectives, 2);
    for (int k = 0; k < 2; k++) {
        EXPECT_TRUE(std::isfinite(s.loss[size_t(k)]) && s.loss[size_t(k)] > 0) << k;
        EXPECT_TRUE(std::isfinite(s.pi[size_t(k)])) << k;
    }
    EXPECT_NEAR(s.pi[0] + s.pi[1], 1.0, 1e-9);
    EXPECT_TRUE(torch::isfinite(arena.params()).all().item<bool>());
    EXPECT_GT((arena.params() - theta_before).abs().max().item<double>(), 0) << "the student moved";
    size_t i = 0, moved = 0;
    for (const auto &p : list->at(1).module()->parameters()) {
        EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
        moved += !p.detach().equal(module_before[i++]);
    }
    EXPECT_EQ(moved, module_before.size()) << "every module parameter moved";
    std::vector<std::string> names;
    for (const auto &[n, v] : list->named_state()) names.push_back(n);
    const std::vector<std::string> expected =
        method == "ofd" ? std::vector<std::string>{"ofd.connectors.0.0.weight", "ofd.connectors.2.1.bias", "ofd.margin_0",
                                                   "ofd.margin_2", "ofd.connectors.1.1.running_mean"}
                        : std::vector<std::string>{"reviewkd.abfs.0.conv1.0.weight", "reviewkd.abfs.3.att_conv.0.bias",
                                                   "reviewkd.abfs.3.conv2.1.running_var"};
    for (const auto &n : expected) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;

    // The modules' optimizer blob as a CUDA run would have saved it (momentum tagged cuda:0)
    // loads here (map_location: the parameters' device) and gives back this step's state.
    const at::Tensor blob = list->optimizer_state();
    const std::string tagged =
        retag_archive_to_cuda(std::string(reinterpret_cast<const char *>(blob.data_ptr<uint8_t>()), size_t(blob.numel())));
    list->step_modules({1.0, 1.0});  // changes the momentum, so the load below must restore it
    ASSERT_FALSE(torch::equal(list->optimizer_state(), blob));
    at::Tensor tagged_blob = at::empty({int64_t(tagged.size())}, at::kByte);
    std::memcpy(tagged_blob.data_ptr<uint8_t>(), tagged.data(), tagged.size());
    list->load_optimizer_state(tagged_blob);
    EXPECT_TRUE(torch::equal(list->optimizer_state(), blob));
}

INSTANTIATE_TEST_SUITE_P(Methods, ConnectorPolicyStep, ::testing::Values("ofd", "reviewkd"));
