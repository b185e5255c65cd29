// The parameter-free KD objectives (runtime/{dkd,dist,at,pkt,rkd}_objective.cpp) against
// PyTorch implementations of the reference code's formulas (tests/python/
// kd_methods_reference.py), value and gradients w.r.t. the student inputs the loss reads,
// in float64: on the tap shapes of resnet32x4 -> resnet8x4 and of pairs with other
// channel counts, spatial sizes and stage counts (taken from the models themselves),
// a batch of 1, all-zero inputs and identical student and teacher. Also: the split terms
// sum to the combined objectives, the warmup ramp per epoch, logit_grad is autograd's
// dL/dz, the prepare() errors, and one policy step of dto-logit / dto over these objectives.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "flat_arena.h"
#include "fused_optimizer.h"
#include "model_factory.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "torch_reference.h"
#include "tradeoff_policy.h"

namespace {

using namespace dtokd_test;
constexpr double kTol = 1e-5;
const std::vector<std::string> kLogitNames = {"dkd", "dkd_tckd", "dkd_nckd", "dist", "dist_inter", "dist_intra"};
const std::vector<std::string> kPooledNames = {"pkt", "rkd", "rkd_distance", "rkd_angle"};

// The feats and pooled shapes of a zoo model for a batch of `batch` CIFAR images.
struct TapShapes {
    std::vector<std::vector<int64_t>> feats;
    std::vector<int64_t> pooled;
};
TapShapes tap_shapes(const std::string &model, int64_t batch) {
    static std::map<std::string, TapShapes> cache;  // shapes of batch 1
    if (!cache.count(model)) {
        auto net = dtokd::make_model(model, 3, 100);
        net->eval();
        torch::NoGradGuard no_grad;
        dtokd::FeatureRequest r;
        r.feats = r.pooled = true;
        const dtokd::ModelOutputs out = net->forward_features(torch::zeros({1, 3, 32, 32}), r);
        TapShapes s;
        for (const auto &f : out.feats) s.feats.push_back(f.sizes().vec());
        s.pooled = out.pooled.sizes().vec();
        cache[model] = s;
    }
    TapShapes s = cache.at(model);
    for (auto &f : s.feats) f[0] = batch;
    s.pooled[0] = batch;
    return s;
}

// One test case: student and teacher inputs (float64), labels and the epoch.
struct Case {
    std::string id;
    int64_t classes = 100;
    int epoch = 0;
    torch::Tensor zs, zt, labels;
    std::vector<torch::Tensor> fs, ft;
    torch::Tensor ps, pt;
    bool pkt_safe_norm = false;  // compare pkt to the torch.norm form (dtokd's deviation at zero rows)
};

torch::Tensor post_relu(const std::vector<int64_t> &shape) { return torch::relu(torch::randn(shape, torch::kDouble)); }

Case random_case(const std::string &id, const std::string &teacher, const std::string &student, int64_t batch,
                 int epoch) {
    Case c;
    c.id = id;
    c.epoch = epoch;
    c.zs = 3 * torch::randn({batch, c.classes}, torch::kDouble);
    c.zt = 3 * torch::randn({batch, c.classes}, torch::kDouble);
    c.labels = torch::randint(0, c.classes, {batch}, torch::kLong);
    const TapShapes s = tap_shapes(student, batch), t = tap_shapes(teacher, batch);
    for (const auto &shape : s.feats) c.fs.push_back(post_relu(shape));
    for (const auto &shape : t.feats) c.ft.push_back(post_relu(shape));
    c.ps = post_relu(s.pooled);
    c.pt = post_relu(t.pooled);
    return c;
}

dtokd::NetOutputs student_of(const Case &c) {
    dtokd::NetOutputs o;
    o.logits = c.zs.clone().requires_grad_(true);
    for (const auto &f : c.fs) o.feats.push_back(f.clone().requires_grad_(true));
    o.pooled = c.ps.clone().requires_grad_(true);
    return o;
}
dtokd::NetOutputs teacher_of(const Case &c) {
    dtokd::NetOutputs o;
    o.logits = c.zt;
    o.feats = c.ft;
    o.pooled = c.pt;
    return o;
}

// An objective's value on a case and its gradients w.r.t. the student inputs:
// logit_grad for logit-level objectives, autograd through loss_tensor otherwise.
struct Result {
    double loss = 0;
    torch::Tensor grad_zs, grad_ps;
    std::vector<torch::Tensor> grad_fs;
};
Result run(const std::string &name, const Case &c, const dtokd::ObjectiveOptions &options = {}) {
    auto obj = dtokd::make_objective(name, options);
    const dtokd::NetOutputs s = student_of(c), t = teacher_of(c);
    obj->prepare(s, t);
    const dtokd::ObjectiveValue v = obj->evaluate({s, t, c.labels, torch::Tensor(), nullptr, torch::Tensor(), c.epoch, true});
    Result r;
    r.loss = v.loss;
    if (obj->logits_only()) {
        EXPECT_TRUE(v.logit_grad.defined()) << name;
        EXPECT_FALSE(v.loss_tensor.defined()) << name << ": logit-level objectives return no graph";
        r.grad_zs = v.logit_grad;
        return r;
    }
    EXPECT_TRUE(v.loss_tensor.defined() && v.loss_tensor.requires_grad()) << name;
    EXPECT_NEAR(v.loss_tensor.item<double>(), v.loss, 0.0) << name;
    std::vector<torch::Tensor> leaves = s.feats;
    leaves.push_back(s.pooled);
    leaves.push_back(s.logits);
    std::vector<torch::Tensor> g = torch::autograd::grad({v.loss_tensor}, leaves, {}, false, false, /*allow_unused=*/true);
    for (size_t i = 0; i < g.size(); i++)
        if (!g[i].defined()) g[i] = torch::zeros_like(leaves[i]);
    r.grad_fs.assign(g.begin(), g.begin() + int64_t(s.feats.size()));
    r.grad_ps = g[s.feats.size()];
    EXPECT_EQ(g.back().abs().max().item<double>(), 0.0) << name << ": a feature objective does not read the logits";
    return r;
}

// All cases in one Python call.
TensorDict reference(const std::vector<Case> &cases, const dtokd::ObjectiveOptions &o = {}) {
    TensorDict in;
    in["params"] = torch::tensor({o.temperature, o.dkd_alpha, o.dkd_beta, o.dist_beta, o.dist_gamma, o.at_p,
                                  o.rkd_distance_weight, o.rkd_angle_weight, double(o.warmup_epochs)},
                                 torch::kDouble);
    for (const Case &c : cases) {
        in[c.id + ".epoch"] = torch::tensor({double(c.epoch)}, torch::kDouble);
        in[c.id + ".zs"] = c.zs;
        in[c.id + ".zt"] = c.zt;
        in[c.id + ".labels"] = c.labels;
        for (size_t i = 0; i < c.fs.size(); i++) in[c.id + ".fs" + std::to_string(i)] = c.fs[i];
        for (size_t i = 0; i < c.ft.size(); i++) in[c.id + ".ft" + std::to_string(i)] = c.ft[i];
        in[c.id + ".ps"] = c.ps;
        in[c.id + ".pt"] = c.pt;
        in[c.id + ".pkt_safe_norm"] = torch::tensor({c.pkt_safe_norm ? 1.0 : 0.0}, torch::kDouble);
    }
    return run_torch_reference("kd_methods_reference.py", "evaluate", in);
}

bool all_finite(const torch::Tensor &t) { return torch::isfinite(t).all().item<bool>(); }

// The largest relative error of one objective on one case (value and every gradient),
// recorded in `worst` per "<name> <what>"; `floor` > 0 bounds the scale from below for
// values that are 0 in exact arithmetic (identical student and teacher).
double worst_error(const std::string &name, const Case &c, const TensorDict &ref, std::map<std::string, double> &worst,
                   double floor = 0) {
    const Result r = run(name, c);
    const std::string key = c.id + "." + name + ".";
    auto err = [&](const torch::Tensor &got, const torch::Tensor &want) {
        if (floor <= 0) return relative_error(got, want);
        return (got - want).abs().max().item<double>() / std::max(floor, want.abs().max().item<double>());
    };
    auto note = [&](const std::string &what, double e) {
        worst[name + " " + what] = std::max(worst[name + " " + what], e);
        EXPECT_LE(e, kTol) << c.id << " " << name << " " << what;
        return e;
    };
    double e = note("value", err(torch::tensor(r.loss, torch::kDouble), ref.at(key + "loss")));
    EXPECT_TRUE(std::isfinite(r.loss)) << c.id << " " << name;
    if (r.grad_zs.defined()) {
        EXPECT_TRUE(all_finite(r.grad_zs)) << c.id << " " << name;
        e = std::max(e, note("grad logits", err(r.grad_zs, ref.at(key + "grad_zs"))));
    } else if (name == "at") {
        for (size_t i = 0; i < r.grad_fs.size(); i++) {
            EXPECT_TRUE(all_finite(r.grad_fs[i])) << c.id << " " << name << " f" << i;
            e = std::max(e, note("grad feats", err(r.grad_fs[i], ref.at(key + "grad_fs" + std::to_string(i)))));
        }
    } else {
        EXPECT_TRUE(all_finite(r.grad_ps)) << c.id << " " << name;
        e = std::max(e, note("grad pooled", err(r.grad_ps, ref.at(key + "grad_ps"))));
    }
    return e;
}

void report(const std::map<std::string, double> &worst) {
    for (const auto &[k, v] : worst) {
        std::string prop = k;
        std::replace(prop.begin(), prop.end(), ' ', '_');
        testing::Test::RecordProperty("max_rel_err_" + prop, c10::str(v));
        std::cout << "  max relative error " << k << ": " << v << "\n";
    }
}

}  // namespace

// Every objective vs the reference formulas on real tap shapes: resnet32x4 -> resnet8x4
// (equal shapes), wrn_40_2 -> shufflev1 (other channels, student maps half the size:
// AT pools the teacher) and vgg13 -> wrn_16_2 (5 vs 4 feats: AT pairs the first three
// stages; other pooled widths), each at a different epoch of the DKD ramp.
TEST(KdMethods, MatchReferenceOnModelShapes) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(0);
    const std::vector<Case> cases = {random_case("res", "resnet32x4", "resnet8x4", 6, 0),
                                     random_case("wrn", "wrn_40_2", "shufflev1", 5, 9),
                                     random_case("vgg", "vgg13", "wrn_16_2", 4, 30)};
    ASSERT_NE(cases[1].fs[1].size(2), cases[1].ft[1].size(2)) << "the AT pooling path needs other spatial sizes";
    ASSERT_NE(cases[2].fs.size(), cases[2].ft.size()) << "the AT pairing needs other stage counts";
    const TensorDict ref = reference(cases);
    std::map<std::string, double> worst;
    for (const Case &c : cases) {
        for (const auto &n : kLogitNames) worst_error(n, c, ref, worst);
        worst_error("at", c, ref, worst);
        for (const auto &n : kPooledNames) worst_error(n, c, ref, worst);
    }
    report(worst);
    // The comparison can fail: a perturbed student changes the value beyond the tolerance.
    Case moved = cases[0];
    moved.zs = moved.zs * 1.001;
    EXPECT_GT(relative_error(torch::tensor(run("dkd", moved).loss, torch::kDouble), ref.at("res.dkd.loss")), kTol);
}

// Edge cases: a batch of 1, all-zero student inputs (logits, features, pooled; the
// teacher random, and both zero), identical student and teacher.
TEST(KdMethods, EdgeCasesAreFiniteAndMatchReference) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(1);
    Case one = random_case("one", "resnet32x4", "resnet8x4", 1, 3);
    Case zero = random_case("zero", "wrn_40_2", "shufflev1", 4, 19);
    zero.zs.zero_();
    for (auto &f : zero.fs) f.zero_();
    zero.ps.zero_();
    zero.pkt_safe_norm = true;
    Case zero_ref = zero;  // the reference's own PKT formula there: NaN gradient (why dtokd deviates)
    zero_ref.id = "zeroref";
    zero_ref.pkt_safe_norm = false;
    Case both_zero = zero;
    both_zero.id = "bothzero";
    both_zero.zt.zero_();
    for (auto &f : both_zero.ft) f.zero_();
    both_zero.pt.zero_();
    Case same = random_case("same", "resnet8x4", "resnet8x4", 5, 40);
    same.zt = same.zs.clone();
    same.ft = same.fs;
    same.pt = same.ps.clone();
    // Repeated samples: coincident embeddings within a batch (RKD's angles from the Gram
    // matrix must give the reference's 0 there, see rkd_objective.cpp).
    Case dup = random_case("dup", "resnet32x4", "resnet8x4", 6, 0);
    dup.ps[4] = dup.ps[1];
    dup.pt[3] = dup.pt[2];
    dup.pt[5] = dup.pt[2];
    const TensorDict ref = reference({one, zero, zero_ref, both_zero, same, dup});
    std::map<std::string, double> worst;
    worst_error("pkt", dup, ref, worst);
    worst_error("rkd_distance", dup, ref, worst);
    // The angle term: the same value. The reference normalizes the zero difference of a
    // repeated student row by eps = 1e-12, so its gradient there is ~1e12 times the rest;
    // dtokd's is 0 along coincident pairs (the deviation in rkd_objective.cpp). Every
    // other row's gradient is the reference's.
    const torch::Tensor others = torch::tensor({0, 2, 3, 5}, torch::kLong), repeated = torch::tensor({1, 4}, torch::kLong);
    for (const std::string n : {"rkd_angle", "rkd"}) {
        const Result r = run(n, dup);
        const torch::Tensor ref_grad = ref.at("dup." + n + ".grad_ps");
        EXPECT_LE(relative_error(torch::tensor(r.loss, torch::kDouble), ref.at("dup." + n + ".loss")), kTol) << n;
        EXPECT_TRUE(all_finite(r.grad_ps)) << n;
        EXPECT_LE(relative_error(r.grad_ps.index_select(0, others), ref_grad.index_select(0, others)), kTol) << n;
        EXPECT_GT(ref_grad.index_select(0, repeated).abs().max().item<double>(),
                  1e6 * r.grad_ps.abs().max().item<double>())
            << n << ": the reference's gradient at repeated rows explodes; if not, revisit the deviation";
    }

    // Batch of 1: everything but RKD's distance term as in the reference.
    for (const auto &n : kLogitNames) worst_error(n, one, ref, worst);
    worst_error("at", one, ref, worst);
    worst_error("pkt", one, ref, worst);
    worst_error("rkd_angle", one, ref, worst);
    EXPECT_TRUE(std::isnan(ref.at("one.rkd_distance.loss").item<double>()))
        << "the reference's mean over no pairs is NaN (the deviation documented in rkd_objective.cpp)";
    for (const std::string n : {"rkd_distance", "rkd"}) {
        const Result r = run(n, one);
        EXPECT_EQ(r.loss, n == "rkd" ? run("rkd_angle", one).loss : 0.0) << n;
        EXPECT_TRUE(all_finite(r.grad_ps)) << n;
        if (n == "rkd_distance") {
            EXPECT_EQ(r.grad_ps.abs().max().item<double>(), 0.0);
        }
    }
    // DIST's intra term with one sample: correlation 0 (the 1e-8), intra = tau^2.
    EXPECT_NEAR(run("dist_intra", one).loss, 16.0, 1e-12);

    // All-zero student inputs (PKT against the torch.norm form, see pkt_objective.cpp).
    for (const Case *c : {&zero, &both_zero}) {
        for (const auto &n : kLogitNames) worst_error(n, *c, ref, worst);
        worst_error("at", *c, ref, worst);
        for (const auto &n : kPooledNames) worst_error(n, *c, ref, worst);
    }
    EXPECT_NEAR(ref.at("zeroref.pkt.loss").item<double>(), ref.at("zero.pkt.loss").item<double>(),
                1e-12 * std::abs(ref.at("zero.pkt.loss").item<double>()));
    EXPECT_FALSE(all_finite(ref.at("zeroref.pkt.grad_ps")))
        << "the reference's sqrt(sum f^2) gives a NaN gradient at zero rows; if not, drop the deviation";

    // Identical student and teacher: every loss 0 up to rounding (DIST: 1 - correlation 1
    // up to the 1e-8; compared with an absolute floor since the exact value is 0).
    for (const auto &n : kLogitNames) worst_error(n, same, ref, worst, 1e-6);
    worst_error("at", same, ref, worst, 1e-6);
    for (const auto &n : kPooledNames) worst_error(n, same, ref, worst, 1e-6);
    for (const std::string n : {"dkd", "at", "pkt", "rkd"}) EXPECT_NEAR(run(n, same).loss, 0.0, 1e-12) << n;
    report(worst);
}

// Training runs in float32: RKD's angle term from the Gram matrix (float64 inside) stays
// within float32 rounding of the float64 value at a training shape (cnn_small's 784-wide
// embeddings, batch 64), loss and gradient.
TEST(KdMethods, RkdAnglesInFloat32MatchFloat64) {
    torch::manual_seed(3);
    Case c = random_case("f32", "resnet8x4", "resnet8x4", 64, 0);
    c.ps = post_relu({64, 784});
    c.pt = post_relu({64, 128});
    const Result exact = run("rkd_angle", c);
    Case f = c;
    f.ps = c.ps.to(torch::kFloat);
    f.pt = c.pt.to(torch::kFloat);
    const Result single = run("rkd_angle", f);
    EXPECT_NEAR(single.loss, exact.loss, 1e-5 * exact.loss);
    const double scale = exact.grad_ps.abs().max().item<double>();
    ASSERT_GT(scale, 0.0);
    EXPECT_LE((single.grad_ps.to(torch::kDouble) - exact.grad_ps).abs().max().item<double>(), 1e-4 * scale);
}

// The split terms add up to the combined objective (value and gradient) under the
// registry's default weights and others.
TEST(KdMethods, SplitTermsSumToTheCombinedObjective) {
    torch::manual_seed(2);
    const Case c = random_case("split", "wrn_40_2", "shufflev1", 5, 4);
    dtokd::ObjectiveOptions o;
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1) {
            o.dkd_alpha = 0.7, o.dkd_beta = 3.0, o.dist_beta = 2.0, o.dist_gamma = 0.5;
            o.rkd_distance_weight = 3.0, o.rkd_angle_weight = 7.0, o.temperature = 2.5;
        }
        for (const auto &[whole, a, b] : std::vector<std::array<std::string, 3>>{
                 {"dkd", "dkd_tckd", "dkd_nckd"}, {"dist", "dist_inter", "dist_intra"},
                 {"rkd", "rkd_distance", "rkd_angle"}}) {
            const Result w = run(whole, c, o), ra = run(a, c, o), rb = run(b, c, o);
            EXPECT_GT(ra.loss, 0) << a;
            EXPECT_GT(rb.loss, 0) << b;
            EXPECT_NEAR(w.loss, ra.loss + rb.loss, 1e-12 * w.loss) << whole;
            const torch::Tensor gw = w.grad_zs.defined() ? w.grad_zs : w.grad_ps;
            const torch::Tensor gs = w.grad_zs.defined() ? ra.grad_zs + rb.grad_zs : ra.grad_ps + rb.grad_ps;
            EXPECT_LE(relative_error(gs, gw), 1e-12) << whole;
        }
    }
}

// DKD's ramp: factor min((epoch + 1) / warmup_epochs, 1) on value and gradient; no ramp at warmup 0.
TEST(KdMethods, DkdWarmupPerEpoch) {
    torch::manual_seed(3);
    Case c = random_case("warm", "resnet32x4", "resnet8x4", 4, 19);
    const Result full = run("dkd", c);  // epoch 19: factor 1
    for (const std::string n : {"dkd", "dkd_tckd", "dkd_nckd"}) {
        c.epoch = 19;
        const Result base = run(n, c);
        for (const auto &[epoch, factor] :
             std::vector<std::pair<int, double>>{{0, 1.0 / 20}, {9, 0.5}, {18, 0.95}, {25, 1.0}}) {
            c.epoch = epoch;
            const Result r = run(n, c);
            EXPECT_NEAR(r.loss, factor * base.loss, 1e-12 * base.loss) << n << " epoch " << epoch;
            EXPECT_LE(relative_error(r.grad_zs, factor * base.grad_zs), 1e-12) << n << " epoch " << epoch;
        }
    }
    dtokd::ObjectiveOptions no_ramp;
    no_ramp.warmup_epochs = 0;
    c.epoch = 0;
    EXPECT_NEAR(run("dkd", c, no_ramp).loss, full.loss, 1e-12 * full.loss);
    EXPECT_GT(full.loss, 0);
}

// logit_grad is autograd's dL/dz: backward from the logits through a linear map gives
// the same weight gradient as autograd through an independent loss expression (the
// DIST formula written out here), also when evaluated inside a no-grad scope (reevaluate()).
TEST(KdMethods, LogitGradIsAutogradThroughTheLogits) {
    torch::manual_seed(4);
    const torch::Tensor x = torch::randn({6, 8}, torch::kDouble);
    const torch::Tensor w = torch::randn({8, 10}, torch::kDouble).requires_grad_(true);
    const torch::Tensor zt = torch::randn({6, 10}, torch::kDouble), labels = torch::randint(0, 10, {6}, torch::kLong);
    dtokd::NetOutputs s, t;
    s.logits = x.mm(w);
    t.logits = zt;
    auto dist = dtokd::make_objective("dist");
    dist->prepare(s, t);
    const dtokd::ObjectiveValue v = dist->evaluate({s, t, labels, torch::Tensor(), nullptr, torch::Tensor(), 0, true});
    torch::autograd::backward({s.logits}, {v.logit_grad});
    // DIST written out: 16 (1 - mean pearson rows) + 16 (1 - mean pearson columns).
    auto pearson_gap = [](const torch::Tensor &a, const torch::Tensor &b) {
        const torch::Tensor ac = a - a.mean(1, true), bc = b - b.mean(1, true);
        return 1 - ((ac * bc).sum(1) / (ac.norm(2, 1) * bc.norm(2, 1) + 1e-8)).mean();
    };
    const torch::Tensor w2 = w.detach().clone().requires_grad_(true);
    const torch::Tensor ys = torch::softmax(x.mm(w2) / 4, 1), yt = torch::softmax(zt / 4, 1);
    const torch::Tensor loss = 16 * pearson_gap(ys, yt) + 16 * pearson_gap(ys.t(), yt.t());
    loss.backward();
    EXPECT_NEAR(v.loss, loss.item<double>(), 1e-12 * loss.item<double>());
    EXPECT_LE(relative_error(w.grad(), w2.grad()), 1e-10);
    {
        torch::NoGradGuard no_grad;
        const dtokd::ObjectiveValue again = dist->evaluate({s, t, labels, torch::Tensor(), nullptr, torch::Tensor(), 0, true});
        EXPECT_EQ(again.loss, v.loss);
        EXPECT_LE(relative_error(again.logit_grad, v.logit_grad), 0.0);
    }
}

// Taps and bad input: what each reads, and one std::invalid_argument from prepare() naming the objective.
TEST(KdMethods, TapsAndPrepareErrors) {
    for (const auto &n : kLogitNames) {
        auto o = dtokd::make_objective(n);
        EXPECT_TRUE(o->logits_only()) << n;
        EXPECT_FALSE(o->student_taps().any() || o->teacher_taps().any()) << n;
    }
    for (const std::string n : {"at", "pkt", "rkd", "rkd_distance", "rkd_angle"}) {
        auto o = dtokd::make_objective(n);
        EXPECT_FALSE(o->logits_only()) << n;
        const bool feats = n == "at";
        for (const dtokd::TapRequest &t : {o->student_taps(), o->teacher_taps()}) {
            EXPECT_EQ(t.feats, feats) << n;
            EXPECT_EQ(t.pooled, !feats) << n;
            EXPECT_FALSE(t.preact_feats) << n;
        }
    }
    auto expect_error = [](const std::string &name, const dtokd::NetOutputs &s, const dtokd::NetOutputs &t,
                           const std::string &mentions) {
        try {
            dtokd::make_objective(name)->prepare(s, t);
            ADD_FAILURE() << name << ": expected std::invalid_argument mentioning '" << mentions << "'";
        } catch (const std::invalid_argument &e) {
            const std::string what = e.what();
            EXPECT_EQ(what.rfind(name, 0), 0u) << "the message starts with the objective's name: " << what;
            EXPECT_NE(what.find(mentions), std::string::npos) << what;
        }
    };
    dtokd::NetOutputs s, t;
    s.logits = torch::randn({4, 2});
    t.logits = torch::randn({4, 2});
    for (const std::string n : {"dkd", "dkd_tckd", "dkd_nckd"}) expect_error(n, s, t, "at least 3");
    t.logits = torch::randn({4, 5});
    expect_error("dist", s, t, "teacher logits");
    s.logits = torch::randn({4, 5});
    s.feats = {torch::rand({4, 8, 8, 8}), torch::rand({4, 8, 4, 4})};
    expect_error("at", s, t, "teacher");  // a teacher without features
    t.feats = {torch::rand({4, 8, 8, 8})};
    expect_error("at", s, t, "at least 2");  // a teacher with the stem only
    t.feats.push_back(torch::rand({4, 8, 4, 4}));
    EXPECT_NO_THROW(dtokd::make_objective("at")->prepare(s, t));
    for (const std::string n : {"pkt", "rkd", "rkd_distance", "rkd_angle"}) expect_error(n, s, t, "student's pooled");
    s.pooled = torch::rand({4, 8});
    for (const std::string n : {"pkt", "rkd"}) expect_error(n, s, t, "teacher's pooled");
    t.pooled = torch::rand({4, 3});
    for (const std::string n : {"pkt", "rkd"}) EXPECT_NO_THROW(dtokd::make_objective(n)->prepare(s, t)) << n;
}

namespace {
// A student with two stages and a pooled embedding (f0 [B,4,8,8], f1 [B,6,4,4], pooled [B,6], 5 classes).
struct TwoStageImpl : torch::nn::Module {
    TwoStageImpl()
        : stem(register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).padding(1)))),
          stage(register_module("stage", torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 6, 3).padding(1).stride(2)))),
          fc(register_module("fc", torch::nn::Linear(6, 5))) {}
    dtokd::NetOutputs forward(const torch::Tensor &x) {
        dtokd::NetOutputs out;
        const torch::Tensor f0 = torch::relu(stem(x)), f1 = torch::relu(stage(f0));
        out.feats = {f0, f1};
        out.pooled = f1.mean({2, 3});
        out.logits = fc(out.pooled);
        return out;
    }
    torch::nn::Conv2d stem, stage;
    torch::nn::Linear fc;
};
TORCH_MODULE(TwoStage);

dtokd::StepStats one_policy_step(const std::string &method, const std::vector<std::string> &names) {
    torch::manual_seed(5);
    TwoStage net;
    const torch::Tensor x = torch::randn({8, 3, 8, 8});
    const torch::Tensor labels = torch::randint(0, 5, {8}, torch::kLong);
    dtokd::NetOutputs teacher;  // other channels and a larger map than the student's f1 (AT pools it)
    teacher.logits = 2 * torch::randn({8, 5});
    teacher.feats = {torch::relu(torch::randn({8, 5, 8, 8})), torch::relu(torch::randn({8, 9, 8, 8}))};
    teacher.pooled = torch::relu(torch::randn({8, 9}));
    auto list = dtokd::make_objective_list(names);
    dtokd::OptimizerConfig oc;
    oc.sgd.lr = 0.1;
    oc.sgd.momentum = 0.9;
    list->prepare(net->forward(x), teacher, oc);
    dtokd::PolicyConfig pc;
    pc.method = method;
    auto policy = dtokd::make_policy(pc);
    dtokd::FlatArena arena(*net, policy->gradient_arenas(list->size()));
    dtokd::FusedOptimizer optimizer(arena.params(), oc, dtokd::KernelBackend::halide);
    const torch::Tensor before = arena.params().clone();
    dtokd::BatchTargets targets;
    targets.labels = labels;
    dtokd::ObjectiveBatch batch(*list, [&] { return net->forward(x); }, *net, teacher, targets,
                                dtokd::KdLossOptions{4.0, 0.0}, dtokd::KernelBackend::halide);
    dtokd::PolicyContext ctx{arena, optimizer, dtokd::KernelBackend::halide};
    const dtokd::StepStats s = policy->step(batch, ctx, 0);
    EXPECT_TRUE(all_finite(arena.params())) << method;
    EXPECT_GT((arena.params() - before).abs().max().item<double>(), 0.0) << method << ": the step moves the student";
    return s;
}
}  // namespace

// The objectives under the DTO policies: dto-logit over the logit-level ones (their
// logit_grad is the policy's input), dto over the feature ones; finite, pi on the simplex.
TEST(KdMethods, PoliciesStepOverTheNewObjectives) {
    const std::vector<std::pair<std::string, std::vector<std::string>>> runs = {
        {"dto-logit", {"ce", "dkd_tckd", "dkd_nckd"}},
        {"dto-logit", {"ce", "dist"}},
        {"dto", {"ce", "at"}},
        {"dto", {"ce", "rkd_distance", "rkd_angle"}},
        {"dto", {"ce", "pkt", "dist_inter", "dist_intra"}},
    };
    for (const auto &[method, names] : runs) {
        const dtokd::StepStats s = one_policy_step(method, names);
        const std::string what = method + " over " + c10::Join(",", names);
        ASSERT_FALSE(s.skipped) << what << ": " << s.skip_reason;
        ASSERT_EQ(s.objectives, int(names.size())) << what;
        double sum = 0;
        for (size_t k = 0; k < names.size(); k++) {
            EXPECT_TRUE(std::isfinite(s.loss[k]) && s.loss[k] > 0) << what << " " << names[k] << " " << s.loss[k];
            EXPECT_GE(s.pi[k], -1e-12) << what << " " << names[k];
            sum += s.pi[k];
        }
        EXPECT_NEAR(sum, 1.0, 1e-6) << what;
    }
}
