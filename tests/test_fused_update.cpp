// dtokd::sgd_update / dtokd::adamw_update (runtime/kernels.h), the fused optimizer
// steps, on both back ends against torch::optim::SGD / torch::optim::AdamW. Each step
// draws fresh raw gradients; the reference parameter gets the combined direction
// g = clip (pi1 a/Ld + pi2 b/Lt) (or clip g_raw), formed in float64 and rounded once,
// as its .grad(); the kernel gets the raw gradients through dto_direction() /
// single_direction() and forms g itself, in registers. After 5 steps:
//   max |theta_ours - theta_ref| <= 1e-6 * max(1, max |theta_ref|)
// i.e. a few float32 ulps of theta: the kernel's g differs from the reference's by
// ~1 ulp per element, and lr times momentum-accumulated ulps of g stays well below that.
// FusedUpdateN does the same for N = 1..8 raw gradients (dto_direction over N objectives,
// g = clip sum_k pi_k g_k / L_k), with the same tolerance: the kernel's float sum of N
// terms is within ~N ulps of g, still far below it after lr and 5 steps.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "kernels.h"

namespace {

using dtokd::KernelBackend;

enum class Optimizer { sgd, sgd_nesterov, sgd_no_momentum, adamw, sgd_dampening };
enum class Gradients { dto, single };

const char *name(Optimizer o) {
    switch (o) {
    case Optimizer::sgd: return "sgd";
    case Optimizer::sgd_nesterov: return "sgd_nesterov";
    case Optimizer::sgd_no_momentum: return "sgd_momentum0";
    case Optimizer::sgd_dampening: return "sgd_dampening";
    case Optimizer::adamw: return "adamw";
    }
    return "?";
}

constexpr int kSteps = 5;
constexpr double kEps = 1e-8, kClip = 0.7;

dtokd::SgdOptions sgd_options(Optimizer o) {
    dtokd::SgdOptions s;
    s.lr = 0.05;
    s.momentum = o == Optimizer::sgd_no_momentum ? 0.0 : 0.9;
    s.dampening = o == Optimizer::sgd_dampening ? 0.3 : 0.0;
    s.weight_decay = 5e-4;
    s.nesterov = o == Optimizer::sgd_nesterov;
    return s;
}

dtokd::AdamWOptions adamw_options() {
    dtokd::AdamWOptions a;
    a.lr = 1e-3;
    a.weight_decay = 1e-2;
    return a;  // default betas (0.9, 0.999) and eps 1e-8, as torch::optim::AdamWOptions
}

std::unique_ptr<torch::optim::Optimizer> reference_optimizer(Optimizer o, const at::Tensor &param) {
    if (o == Optimizer::adamw) {
        const dtokd::AdamWOptions a = adamw_options();
        return std::make_unique<torch::optim::AdamW>(
            std::vector<at::Tensor>{param}, torch::optim::AdamWOptions(a.lr).weight_decay(a.weight_decay));
    }
    const dtokd::SgdOptions s = sgd_options(o);
    return std::make_unique<torch::optim::SGD>(std::vector<at::Tensor>{param},
                                               torch::optim::SGDOptions(s.lr)
                                                   .momentum(s.momentum)
                                                   .dampening(s.dampening)
                                                   .weight_decay(s.weight_decay)
                                                   .nesterov(s.nesterov));
}

using Param = std::tuple<KernelBackend, int64_t, Optimizer, Gradients>;

std::string param_name(const testing::TestParamInfo<Param> &info) {
    const auto &[backend, n, optimizer, gradients] = info.param;
    return std::string(dtokd::to_string(backend)) + "_N" + std::to_string(n) + "_" + name(optimizer) +
           (gradients == Gradients::dto ? "_dto" : "_single");
}

class FusedUpdate : public testing::TestWithParam<Param> {};

}  // namespace

TEST_P(FusedUpdate, MatchesTorchOptimAfterFiveSteps) {
    const auto &[backend, n, optimizer, gradients] = GetParam();
    torch::manual_seed(n * 10 + int(optimizer));

    const at::Tensor theta0 = torch::randn({n});
    at::Tensor theta = theta0.clone();
    at::Tensor state1 = torch::zeros({n}), state2 = torch::zeros({n});  // momentum buffer / (exp_avg, exp_avg_sq)
    const at::Tensor reference = theta0.clone().requires_grad_(true);
    const auto ref_optimizer = reference_optimizer(optimizer, reference);

    for (int step = 1; step <= kSteps; step++) {
        const at::Tensor a = 0.5 * torch::randn({n}), b = 2.0 * torch::randn({n});
        const double pi1 = torch::rand({1}).item<double>(), pi2 = 1 - pi1;
        const double loss_distill = 0.3 + 2.7 * torch::rand({1}).item<double>();
        const double loss_task = 0.3 + 2.7 * torch::rand({1}).item<double>();

        dtokd::Direction direction;
        at::Tensor g;
        if (gradients == Gradients::dto) {
            direction = dtokd::dto_direction(a, b, pi1, pi2, loss_distill, loss_task, kEps, kClip);
            g = kClip * (pi1 * a.to(torch::kDouble) / loss_distill + pi2 * b.to(torch::kDouble) / loss_task);
        } else {
            direction = dtokd::single_direction(b, kClip);
            g = kClip * b.to(torch::kDouble);
        }
        reference.mutable_grad() = g.to(torch::kFloat);
        ref_optimizer->step();

        if (optimizer == Optimizer::adamw)
            dtokd::adamw_update(theta, state1, state2, direction, adamw_options(), step, backend);
        else
            dtokd::sgd_update(theta, state1, direction, sgd_options(optimizer), /*first_step=*/step == 1, backend);
    }

    const at::Tensor want = reference.detach();
    const double max_ref = want.abs().max().item<double>();
    const double err = (theta - want).abs().max().item<double>(), tol = 1e-6 * std::max(1.0, max_ref);
    EXPECT_LE(err, tol) << "max |theta_ours - theta_ref| after " << kSteps << " steps";
    // The steps moved theta well beyond the tolerance, so a skipped update cannot pass.
    EXPECT_GT((want - theta0).abs().max().item<double>(), 10 * tol);
}

INSTANTIATE_TEST_SUITE_P(BackendSizeOptimizerGradients, FusedUpdate,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Values<int64_t>(1, 17, 4099, 1 << 20),
                                          testing::Values(Optimizer::sgd, Optimizer::sgd_nesterov,
                                                          Optimizer::sgd_no_momentum, Optimizer::adamw),
                                          testing::Values(Gradients::dto, Gradients::single)),
                         param_name);

namespace {
class FusedUpdateShapes : public testing::TestWithParam<KernelBackend> {};
}  // namespace

// Flat kernels update any contiguous shape in place: a [33, 31] weight matrix steps the
// same as its flat view would.
TEST_P(FusedUpdateShapes, MatrixParameterInPlace) {
    torch::manual_seed(99);
    at::Tensor theta = torch::randn({33, 31}), buf = torch::zeros({33, 31});
    const at::Tensor theta0 = theta.clone();
    const void *storage = theta.data_ptr();
    const at::Tensor a = torch::randn({33, 31}), b = torch::randn({33, 31});
    const dtokd::SgdOptions s = sgd_options(Optimizer::sgd);
    dtokd::sgd_update(theta, buf, dtokd::dto_direction(a, b, 0.25, 0.75, 2.0, 0.5, kEps, 1.0), s, true, GetParam());
    const at::Tensor d = (0.25 * a.to(torch::kDouble) / 2.0 + 0.75 * b.to(torch::kDouble) / 0.5) +
                         s.weight_decay * theta0.to(torch::kDouble);
    const at::Tensor want = theta0.to(torch::kDouble) - s.lr * d;  // first step: buf = d, theta -= lr * buf
    EXPECT_EQ(theta.data_ptr(), storage);
    EXPECT_EQ(theta.sizes(), (std::vector<int64_t>{33, 31}));
    EXPECT_LE((theta.to(torch::kDouble) - want).abs().max().item<double>(),
              1e-6 * std::max(1.0, want.abs().max().item<double>()));
    EXPECT_LE((buf.to(torch::kDouble) - d).abs().max().item<double>(), 1e-6 * d.abs().max().item<double>());
}

INSTANTIATE_TEST_SUITE_P(Backend, FusedUpdateShapes, testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const testing::TestParamInfo<KernelBackend> &info) {
                             return std::string(dtokd::to_string(info.param));
                         });

// ---------------------------------------------------------------------------------
// N = 1..8 raw gradients: the fused step forms g = clip sum_k pi_k g_k / L_k in registers.

namespace {

using ParamN = std::tuple<KernelBackend, int, int64_t, Optimizer>;  // back end, objectives, length, optimizer

std::string param_name_n(const testing::TestParamInfo<ParamN> &info) {
    const auto &[backend, objectives, n, optimizer] = info.param;
    return std::string(dtokd::to_string(backend)) + "_" + std::to_string(objectives) + "objectives_N" +
           std::to_string(n) + "_" + name(optimizer);
}

class FusedUpdateN : public testing::TestWithParam<ParamN> {};

}  // namespace

TEST_P(FusedUpdateN, MatchesTorchOptimAfterFiveSteps) {
    const auto &[backend, objectives, n, optimizer] = GetParam();
    torch::manual_seed(n * 100 + objectives * 10 + int(optimizer));

    const at::Tensor theta0 = torch::randn({n});
    at::Tensor theta = theta0.clone();
    at::Tensor state1 = torch::zeros({n}), state2 = torch::zeros({n});
    const at::Tensor reference = theta0.clone().requires_grad_(true);
    const auto ref_optimizer = reference_optimizer(optimizer, reference);

    for (int step = 1; step <= kSteps; step++) {
        std::vector<at::Tensor> grads;
        std::vector<const at::Tensor *> ptrs;
        std::vector<double> pi, losses;
        const at::Tensor weights = torch::rand({objectives}, torch::kDouble);
        for (int k = 0; k < objectives; k++) {
            grads.push_back(std::pow(2.0, k % 4 - 1) * torch::randn({n}));
            pi.push_back(weights[k].item<double>() / weights.sum().item<double>());
            losses.push_back(0.3 + 2.7 * torch::rand({1}).item<double>());
        }
        at::Tensor g = torch::zeros({n}, torch::kDouble);
        for (int k = 0; k < objectives; k++) {
            ptrs.push_back(&grads[size_t(k)]);
            g += pi[size_t(k)] * grads[size_t(k)].to(torch::kDouble) / losses[size_t(k)];
        }
        g *= kClip;
        const dtokd::Direction direction = dtokd::dto_direction(ptrs, pi, losses, kEps, kClip);
        ASSERT_EQ(direction.count, objectives);
        reference.mutable_grad() = g.to(torch::kFloat);
        ref_optimizer->step();

        if (optimizer == Optimizer::adamw)
            dtokd::adamw_update(theta, state1, state2, direction, adamw_options(), step, backend);
        else
            dtokd::sgd_update(theta, state1, direction, sgd_options(optimizer), /*first_step=*/step == 1, backend);
    }

    const at::Tensor want = reference.detach();
    const double max_ref = want.abs().max().item<double>();
    const double err = (theta - want).abs().max().item<double>(), tol = 1e-6 * std::max(1.0, max_ref);
    EXPECT_LE(err, tol) << "max |theta_ours - theta_ref| after " << kSteps << " steps";
    EXPECT_GT((want - theta0).abs().max().item<double>(), 10 * tol);
}

INSTANTIATE_TEST_SUITE_P(BackendCountSizeOptimizer, FusedUpdateN,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Range(1, dtokd::kMaxObjectives + 1),
                                          testing::Values<int64_t>(1, 17, 4099, 100003),
                                          testing::Values(Optimizer::sgd, Optimizer::sgd_nesterov,
                                                          Optimizer::sgd_dampening, Optimizer::adamw)),
                         param_name_n);
