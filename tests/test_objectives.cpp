// N-objective trade-offs through the objective registry (runtime/objective_*.h)
// against plain LibTorch: one step of every policy over (kd, ce, fitnet) on a tiny
// conv student, where fitnet owns a regressor, vs autograd::grad per objective, the
// Gram by hand in float64, the min-norm point by projected gradient descent on the
// simplex (independent of the solver), and SGD written out; the registry's ce / kd /
// fitnet values vs PyTorch's functional losses; fitnet's regressor shapes and errors;
// dto-amortized converging to the known pi* of three objectives with constant
// log-gradients.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd_objectives.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "tiny_conv.h"
#include "tradeoff_policy.h"

namespace {

namespace F = torch::nn::functional;
using dtokd::KernelBackend;
constexpr double kT = 4.0;


struct Data {
    torch::Tensor x, labels, teacher_logits, teacher_feat;
};
Data make_data() {
    torch::manual_seed(11);
    Data d;
    d.x = torch::randn({8, 2, 4, 4});
    d.labels = torch::randint(0, 3, {8}, torch::kLong);
    d.teacher_logits = torch::randn({8, 3}) + 3 * F::one_hot((d.labels + 1) % 3, 3).to(torch::kFloat);
    d.teacher_feat = torch::relu(torch::randn({8, 4, 4, 4}));
    return d;
}

torch::Tensor flat_double(const std::vector<torch::Tensor> &ts) {
    std::vector<torch::Tensor> parts;
    for (const auto &t : ts) parts.push_back(t.detach().reshape({-1}).to(torch::kDouble));
    return torch::cat(parts);
}

// argmin_{pi in simplex} pi^T G pi by projected gradient descent (float64, many
// iterations, plain loops): an independent reference for the solver.
std::vector<double> simplex_min_reference(const torch::Tensor &gram_t) {
    const size_t n = size_t(gram_t.size(0));
    const torch::Tensor gd = gram_t.to(torch::kDouble).contiguous();
    std::vector<double> g(gd.data_ptr<double>(), gd.data_ptr<double>() + n * n), pi(n, 1.0 / double(n));
    double bound = 0;  // the largest row sum of |G| bounds the largest eigenvalue
    for (size_t k = 0; k < n; k++) {
        double row = 0;
        for (size_t l = 0; l < n; l++) row += std::abs(g[k * n + l]);
        bound = std::max(bound, row);
    }
    const double step = 0.5 / std::max(bound, 1e-300);
    std::vector<double> v(n), u(n);
    for (int it = 0; it < 200000; it++) {
        for (size_t k = 0; k < n; k++) {
            double grad = 0;
            for (size_t l = 0; l < n; l++) grad += 2 * g[k * n + l] * pi[l];
            v[k] = pi[k] - step * grad;
        }
        u = v;  // Euclidean projection onto the simplex (sort-based)
        std::sort(u.begin(), u.end(), std::greater<double>());
        double css = 0, theta = 0;
        for (size_t j = 0; j < n; j++) {
            css += u[j];
            if (u[j] - (css - 1) / double(j + 1) > 0) theta = (css - 1) / double(j + 1);
        }
        for (size_t k = 0; k < n; k++) pi[k] = std::max(0.0, v[k] - theta);
    }
    return pi;
}

struct Rig {
    TinyConv net;
    Data data = make_data();
    std::unique_ptr<dtokd::ObjectiveList> list;
    std::unique_ptr<dtokd::TradeoffPolicy> policy;
    std::unique_ptr<dtokd::FlatArena> arena;
    std::unique_ptr<dtokd::FusedOptimizer> optimizer;
    dtokd::OptimizerConfig oc;

    Rig(const dtokd::PolicyConfig &pc, const std::vector<std::string> &names) {
        torch::manual_seed(3);
        net = TinyConv();
        list = dtokd::make_objective_list(names);
        oc.sgd.lr = 0.1;
        oc.sgd.momentum = 0.9;
        oc.sgd.weight_decay = 5e-4;
        torch::manual_seed(4);
        list->prepare(net->forward(data.x), teacher(), oc);
        policy = dtokd::make_policy(pc);
        arena = std::make_unique<dtokd::FlatArena>(*net, policy->gradient_arenas(list->size()));
        optimizer = std::make_unique<dtokd::FusedOptimizer>(arena->params(), oc, KernelBackend::halide);
    }
    dtokd::NetOutputs teacher() const {
        dtokd::NetOutputs t;
        t.logits = data.teacher_logits;
        t.feats = {data.teacher_feat};
        return t;
    }
    dtokd::StepStats step(KernelBackend backend) {
        dtokd::ObjectiveBatch batch(
            *list, [this] { return net->forward(data.x); }, *net, teacher(), {data.labels, torch::Tensor()},
            dtokd::KdLossOptions{kT, 0.0}, backend);
        dtokd::PolicyContext ctx{*arena, *optimizer, backend};
        return policy->step(batch, ctx, 0);
    }
};

// The reference: the same student and regressor as plain tensors, every loss in
// PyTorch functional form, gradients by autograd::grad.
struct Reference {
    std::vector<torch::Tensor> theta, phi;  // student (conv w, b, fc w, b); regressor (conv w, b, bn w, b)
    std::vector<std::string> names;
    const Data &data;

    Reference(Rig &rig) : data(rig.data) {
        for (const auto &p : rig.net->parameters()) theta.push_back(p.detach().clone().requires_grad_(true));
        if (torch::nn::Module *m = rig.list->at(rig.list->size() - 1).module())
            for (const auto &p : m->parameters()) phi.push_back(p.detach().clone().requires_grad_(true));
        names = rig.list->names();
    }
    std::vector<torch::Tensor> losses() const {
        const torch::Tensor f = torch::relu(F::conv2d(data.x, theta[0], F::Conv2dFuncOptions().bias(theta[1]).padding(1)));
        const torch::Tensor z = F::linear(f.mean({2, 3}), theta[2], theta[3]);
        std::vector<torch::Tensor> out;
        for (const auto &n : names) {
            if (n == "ce") out.push_back(F::cross_entropy(z, data.labels));
            if (n == "kd")
                out.push_back(kT * kT * F::kl_div(torch::log_softmax(z / kT, 1), torch::softmax(data.teacher_logits / kT, 1),
                                                  F::KLDivFuncOptions().reduction(torch::kBatchMean)));
            if (n == "fitnet") {
                // ConvReg for equal spatial sizes: Conv 1x1 with bias, BatchNorm (batch statistics), ReLU.
                const torch::Tensor r = F::conv2d(f, phi[0], F::Conv2dFuncOptions().bias(phi[1]));
                const torch::Tensor bn = F::batch_norm(r, torch::Tensor(), torch::Tensor(),
                                                       F::BatchNormFuncOptions().weight(phi[2]).bias(phi[3]).training(true));
                out.push_back(F::mse_loss(torch::relu(bn), data.teacher_feat));
            }
        }
        return out;
    }
};

double max_abs(const torch::Tensor &a, const torch::Tensor &b) { return (a - b).abs().max().item<double>(); }

class ObjectivePolicyTest : public ::testing::TestWithParam<std::string> {};

}  // namespace

// One step of every policy over (kd, ce, fitnet) vs the reference.
TEST_P(ObjectivePolicyTest, ThreeObjectivesWithARegressorMatchAutograd) {
    const std::string method = GetParam();
    dtokd::PolicyConfig pc;
    pc.method = method;
    if (method == "sum") pc.weights = {0.9, 0.1, 100.0};
    Rig rig(pc, {"kd", "ce", "fitnet"});
    Reference ref(rig);
    ASSERT_EQ(ref.phi.size(), 4u) << "fitnet's regressor: conv weight, bias, BN weight, bias";
    const double lr = 0.1, wd = 5e-4;

    const std::vector<torch::Tensor> L = ref.losses();
    std::vector<double> Lv;
    std::vector<torch::Tensor> grads;  // dL_k/dtheta, float64
    for (size_t k = 0; k < L.size(); k++) {
        Lv.push_back(L[k].item<double>());
        std::vector<torch::Tensor> g = torch::autograd::grad({L[k]}, ref.theta, {}, /*retain_graph=*/true, false,
                                                              /*allow_unused=*/true);
        for (size_t i = 0; i < g.size(); i++)  // fitnet does not reach the classifier
            if (!g[i].defined()) g[i] = torch::zeros_like(ref.theta[i]);
        grads.push_back(flat_double(g));
    }
    // The regressor's own gradient dL_fitnet/dphi.
    const torch::Tensor gphi = flat_double(torch::autograd::grad({L[2]}, ref.phi, {}, true));

    std::vector<double> pi;
    torch::Tensor direction;
    double phi_scale = 1.0;  // the regressor steps along phi_scale * dL_fitnet/dphi
    if (method == "sum") {
        pi = pc.weights;
        direction = pi[0] * grads[0] + pi[1] * grads[1] + pi[2] * grads[2];
        phi_scale = pi[2];
    } else if (method == "dto-amortized") {
        pi = {1.0 / 3, 1.0 / 3, 1.0 / 3};  // softmax(0)
        direction = torch::zeros_like(grads[0]);
        for (size_t k = 0; k < 3; k++) direction += pi[k] / Lv[k] * grads[k];
        phi_scale = 1.0 / Lv[2];  // grad log L_fitnet
    } else {  // dto
        torch::Tensor a = torch::stack({grads[0] / Lv[0], grads[1] / Lv[1], grads[2] / Lv[2]});
        const torch::Tensor gram = a.mm(a.t());
        pi = simplex_min_reference(gram);
        direction = torch::zeros_like(grads[0]);
        for (size_t k = 0; k < 3; k++) direction += pi[k] * a[int64_t(k)];
        phi_scale = 1.0 / Lv[2];
    }
    const torch::Tensor theta0 = flat_double(ref.theta), phi0 = flat_double(ref.phi);
    const torch::Tensor theta_next = theta0 - lr * (direction + wd * theta0);
    const torch::Tensor phi_next = phi0 - lr * (phi_scale * gphi + wd * phi0);

    const dtokd::StepStats s = rig.step(KernelBackend::halide);
    ASSERT_FALSE(s.skipped) << s.skip_reason;
    ASSERT_EQ(s.objectives, 3);
    for (int k = 0; k < 3; k++) {
        EXPECT_NEAR(s.loss[size_t(k)], Lv[size_t(k)], 1e-5 * Lv[size_t(k)]) << ref.names[size_t(k)];
        EXPECT_NEAR(s.pi[size_t(k)], pi[size_t(k)], 1e-6) << ref.names[size_t(k)];
    }
    if (method == "dto") {
        // The fixture has an interior optimum on at least two objectives, or the test proves little.
        EXPECT_GE(std::count_if(pi.begin(), pi.end(), [](double p) { return p > 1e-3; }), 2);
    }
    const double err = max_abs(rig.arena->params().to(torch::kDouble), theta_next);
    EXPECT_LE(err, 1e-5 * std::max(1.0, theta_next.abs().max().item<double>()));
    EXPECT_GT(max_abs(theta_next, theta0), 1e-3) << "the step must move the student";
    std::vector<torch::Tensor> phi_now;
    for (const auto &p : rig.list->at(2).module()->parameters()) phi_now.push_back(p);
    EXPECT_LE(max_abs(flat_double(phi_now), phi_next), 1e-5 * std::max(1.0, phi_next.abs().max().item<double>()));
    EXPECT_GT(max_abs(phi_next, phi0), 1e-4) << "the step must move the regressor";
}

INSTANTIATE_TEST_SUITE_P(Policies, ObjectivePolicyTest, ::testing::Values("sum", "dto", "dto-amortized"),
                         [](const ::testing::TestParamInfo<std::string> &info) {
                             std::string n = info.param;
                             std::replace(n.begin(), n.end(), '-', '_');
                             return n;
                         });

// dto-logit over an objective that is not a function of the logits: one clear error naming it.
TEST(ObjectivePolicies, DtoLogitRejectsAFeatureObjective) {
    dtokd::PolicyConfig pc;
    pc.method = "dto-logit";
    Rig rig(pc, {"kd", "ce", "fitnet"});
    try {
        rig.step(KernelBackend::halide);
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("'fitnet'"), std::string::npos) << e.what();
    }
}

// dto-logit with N = 3 logit objectives is not possible with the registry's two
// (ce, kd); the N-objective logit path is covered with N = 2 in test_tradeoff_policies.

// The registry's values vs PyTorch: ce (with label smoothing), kd, and fitnet's
// regressor for the three shape relations of the reference.
TEST(ObjectiveRegistry, LossesMatchPyTorch) {
    const Data d = make_data();
    TinyConv net;
    const dtokd::NetOutputs s = net->forward(d.x);
    dtokd::NetOutputs t;
    t.logits = d.teacher_logits;
    auto list = dtokd::make_objective_list({"ce", "kd"});
    dtokd::ObjectiveBatch batch(
        *list, [&] { return net->forward(d.x); }, *net, t, {d.labels, torch::Tensor()}, dtokd::KdLossOptions{kT, 0.1},
        KernelBackend::halide);
    const torch::Tensor z = s.logits.detach();
    const double ce = F::cross_entropy(z, d.labels, F::CrossEntropyFuncOptions().label_smoothing(0.1)).item<double>();
    const double kd = kT * kT *
                      F::kl_div(torch::log_softmax(z / kT, 1), torch::softmax(d.teacher_logits / kT, 1),
                                F::KLDivFuncOptions().reduction(torch::kBatchMean))
                          .item<double>();
    EXPECT_NEAR(batch.loss(0), ce, 1e-5 * ce);
    EXPECT_NEAR(batch.loss(1), kd, 1e-5 * kd);
    EXPECT_EQ(batch.name(0), "ce");
    EXPECT_TRUE(batch.output_grad(0).defined());
}

TEST(ObjectiveRegistry, FitNetRegressorShapes) {
    struct Case {
        std::vector<int64_t> s, t;
        std::vector<int64_t> weight;  // the regressor's conv weight shape
    };
    const std::vector<Case> cases = {
        {{2, 8, 16, 16}, {2, 12, 8, 8}, {12, 8, 3, 3}},   // s_H = 2 t_H: 3x3 stride 2
        {{2, 8, 8, 8}, {2, 12, 16, 16}, {8, 12, 4, 4}},   // 2 s_H = t_H: ConvTranspose 4x4 (weight [in, out, k, k])
        {{2, 8, 10, 10}, {2, 12, 8, 8}, {12, 8, 3, 3}},   // s_H >= t_H: kernel 1 + s_H - t_H
        {{2, 8, 8, 8}, {2, 12, 8, 8}, {12, 8, 1, 1}},     // equal: 1x1
    };
    for (const Case &c : cases) {
        auto fit = dtokd::make_objective("fitnet");
        dtokd::NetOutputs s, t;
        s.feats = {torch::randn(c.s)};
        t.feats = {torch::randn(c.t)};
        fit->prepare(s, t);
        const torch::Tensor w = fit->module()->named_parameters()["conv.weight"];
        EXPECT_EQ(w.sizes().vec(), c.weight) << c10::str(c.s) << " -> " << c10::str(c.t);
        s.logits = torch::zeros({2, 3});
        const dtokd::ObjectiveValue v = fit->evaluate({s, t, torch::Tensor(), torch::Tensor(), nullptr, {}, 0, true});
        EXPECT_EQ(v.loss_tensor.dim(), 0);
        EXPECT_TRUE(std::isfinite(v.loss));
    }
    // A student map smaller than the teacher's (not half of it): no regressor bridges them.
    auto fit = dtokd::make_objective("fitnet");
    dtokd::NetOutputs s, t;
    s.feats = {torch::randn({2, 8, 5, 5})};
    t.feats = {torch::randn({2, 8, 8, 8})};
    EXPECT_THROW(fit->prepare(s, t), std::invalid_argument);
    // A teacher without features: one clear error naming it.
    t.feats.clear();
    try {
        dtokd::make_objective("fitnet")->prepare(s, t);
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("teacher"), std::string::npos) << e.what();
    }
}

TEST(ObjectiveRegistry, UnknownAndDuplicateNames) {
    try {
        dtokd::make_objective("dkd_typo");
        FAIL();
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("'dkd_typo'"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("fitnet"), std::string::npos) << "lists the known names";
    }
    EXPECT_THROW(dtokd::make_objective_list({"kd", "kd"}), std::invalid_argument);
    EXPECT_THROW(dtokd::make_objective_list({}), std::invalid_argument);
}

namespace {
// L_k = exp(<c_k, x>): grad log L_k = c_k, constant; pi* is the min-norm point of {c_k}.
struct VectorParamImpl : torch::nn::Module {
    explicit VectorParamImpl(int64_t n) { x = register_parameter("x", torch::zeros({n})); }
    torch::Tensor x;
};
TORCH_MODULE(VectorParam);
}  // namespace

// dto-amortized with N = 3 converges to pi* of constant log-gradients (decay 0: FAMO's
// regularizer biases the fixed point toward uniform, docs/method.md); with
// reeval_every = K it re-evaluates (and learns pi) on every K-th step only, and still converges.
double amortized_mean_pi_error(int reeval_every, std::vector<double> *improve_finite = nullptr) {
    const torch::Tensor c = torch::tensor({{2.0f, 0.0f, 0.5f, 0.0f}, {-0.5f, 1.0f, 0.0f, 0.5f}, {0.0f, -0.5f, 1.0f, 0.2f}});
    const std::vector<double> want = simplex_min_reference(c.to(torch::kDouble).mm(c.to(torch::kDouble).t()));
    EXPECT_GE(std::count_if(want.begin(), want.end(), [](double p) { return p > 0.05; }), 3) << "interior pi*";
    VectorParam param(4);
    dtokd::PolicyConfig pc;
    pc.method = "dto-amortized";
    pc.amortized_decay = 0;
    pc.reeval_every = reeval_every;
    auto policy = dtokd::make_policy(pc);
    dtokd::FlatArena arena(*param, 1);
    dtokd::OptimizerConfig oc;
    oc.sgd.lr = 0.01;  // small: the losses stay far above eps over 400 K steps
    oc.sgd.momentum = 0;
    oc.sgd.weight_decay = 0;
    dtokd::FusedOptimizer opt(arena.params(), oc, KernelBackend::halide);
    dtokd::PolicyContext ctx{arena, opt, KernelBackend::halide};
    const int steps = 400 * reeval_every, tail = 50;
    double err = 0;
    for (int k = 0; k < steps; k++) {
        dtokd::AutogradObjectives obj([&] {
            std::vector<torch::Tensor> out;
            for (int64_t i = 0; i < 3; i++) out.push_back(torch::exp(torch::dot(c[i], param->x)));
            return out;
        });
        const dtokd::StepStats s = policy->step(obj, ctx, k);
        EXPECT_FALSE(s.skipped) << s.skip_reason;
        if (improve_finite) improve_finite->push_back(std::isfinite(s.improve[0]) ? 1.0 : 0.0);
        if (k >= steps - tail)
            for (size_t i = 0; i < 3; i++) err += std::abs(s.pi[i] - want[i]) / (3.0 * tail);

    }
    return err;
}

TEST(ObjectivePolicies, AmortizedConvergesToExactPiForThreeObjectives) {
    const double err = amortized_mean_pi_error(1);
    RecordProperty("mean_abs_pi_error_last50", c10::str(err));
    EXPECT_LT(err, 1e-3);
}

TEST(ObjectivePolicies, AmortizedReevaluatesEveryKthStep) {
    std::vector<double> reevaluated;
    const double err = amortized_mean_pi_error(4, &reevaluated);
    for (size_t k = 0; k < 12; k++) EXPECT_EQ(reevaluated[k], k % 4 == 0 ? 1.0 : 0.0) << "step " << k;
    RecordProperty("mean_abs_pi_error_last50_k4", c10::str(err));
    EXPECT_LT(err, 1e-3);
}
