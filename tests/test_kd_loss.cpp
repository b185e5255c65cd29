// dtokd::kd_loss (runtime/kernels.h) on both back ends against LibTorch autograd in
// float64: L_task = cross_entropy (optional label smoothing), L_distill = T^2 *
// kl_div(log_softmax(z_s/T), log_softmax(z_t/T), batchmean, log_target), and each
// loss's gradient w.r.t. the student logits from torch::autograd::grad. The float32
// inputs are converted to float64 for the reference, so the only error measured is
// the kernels' own float arithmetic.
//
// Tolerances. Losses: |err| <= 1e-5 |ref| (+1e-12, which only matters for C = 1 where
// both losses are exactly 0). Gradients: max |err| <= 1e-5 * bound, bound = 1/B for
// the task gradient and T/B for the distill gradient: every entry is (p - target)/B
// resp. T (q - p)/B with |p - target| <= 1, so this is a relative error of 1e-5 on
// the largest value an entry can take (tighter than 1e-5 absolute for every B > 1).
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

#include "kernels.h"

namespace {

namespace F = torch::nn::functional;
using dtokd::KernelBackend;

struct Reference {
    double task, distill;
    at::Tensor grad_task, grad_distill;  // float64
};

Reference reference_kd(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels, double t,
                       double s) {
    const at::Tensor zs = student.to(torch::kDouble).detach().requires_grad_(true);
    const at::Tensor zt = teacher.to(torch::kDouble);
    const at::Tensor y = labels.to(torch::kLong);
    const at::Tensor task = F::cross_entropy(zs, y, F::CrossEntropyFuncOptions().label_smoothing(s));
    const at::Tensor distill =
        t * t * F::kl_div(torch::log_softmax(zs / t, 1), torch::log_softmax(zt / t, 1),
                          F::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true));
    Reference r;
    r.task = task.item<double>();
    r.distill = distill.item<double>();
    r.grad_task = torch::autograd::grad({task}, {zs})[0];
    r.grad_distill = torch::autograd::grad({distill}, {zs})[0];
    return r;
}

struct Outputs {
    dtokd::KdLosses losses;
    at::Tensor grad_task, grad_distill;
};

// Gradient buffers start as NaN: every element must be overwritten.
Outputs run_kernel(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels, double t,
                   double s, KernelBackend backend) {
    Outputs o;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    o.grad_task = torch::full(student.sizes(), nan);
    o.grad_distill = torch::full(student.sizes(), nan);
    dtokd::KdLossOptions options;
    options.temperature = t;
    options.label_smoothing = s;
    o.losses = dtokd::kd_loss(student, teacher, labels, options, o.grad_task, o.grad_distill, backend);
    return o;
}

double max_abs_diff(const at::Tensor &got, const at::Tensor &want) {
    return (got.to(torch::kDouble) - want).abs().max().item<double>();
}

// Where the largest difference is, for the failure message.
std::string worst_entry(const at::Tensor &got, const at::Tensor &want) {
    const int64_t k = (got.to(torch::kDouble) - want).abs().flatten().argmax().item<int64_t>();
    const int64_t cols = want.size(1);
    std::ostringstream os;
    os.precision(17);
    os << " worst at [" << k / cols << ", " << k % cols << "]: " << got.flatten()[k].item<double>()
       << " vs reference " << want.flatten()[k].item<double>();
    return os.str();
}

void expect_matches_reference(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                              double t, double s, KernelBackend backend, const std::string &context) {
    const Outputs got = run_kernel(student, teacher, labels, t, s, backend);
    const Reference want = reference_kd(student, teacher, labels, t, s);
    const double batch = double(student.size(0));

    EXPECT_TRUE(std::isfinite(got.losses.task) && std::isfinite(got.losses.distill)) << context;
    EXPECT_TRUE(torch::isfinite(got.grad_task).all().item<bool>()) << context << ": non-finite grad_task";
    EXPECT_TRUE(torch::isfinite(got.grad_distill).all().item<bool>()) << context << ": non-finite grad_distill";

    EXPECT_LE(std::abs(got.losses.task - want.task), 1e-5 * std::abs(want.task) + 1e-12)
        << context << ": L_task " << got.losses.task << " vs reference " << want.task;
    EXPECT_LE(std::abs(got.losses.distill - want.distill), 1e-5 * std::abs(want.distill) + 1e-12)
        << context << ": L_distill " << got.losses.distill << " vs reference " << want.distill;
    EXPECT_LE(max_abs_diff(got.grad_task, want.grad_task), 1e-5 / batch)
        << context << ": grad_task (bound 1/B = " << 1 / batch << ")" << worst_entry(got.grad_task, want.grad_task);
    EXPECT_LE(max_abs_diff(got.grad_distill, want.grad_distill), 1e-5 * t / batch)
        << context << ": grad_distill (bound T/B = " << t / batch << ")"
        << worst_entry(got.grad_distill, want.grad_distill);
}

using Param = std::tuple<KernelBackend, std::pair<int64_t, int64_t>, double, double, torch::Dtype>;

std::string param_name(const testing::TestParamInfo<Param> &info) {
    const auto &[backend, shape, t, s, label_type] = info.param;
    std::ostringstream os;
    os << dtokd::to_string(backend) << "_B" << shape.first << "_C" << shape.second << "_T" << int(t) << "_ls"
       << (s == 0 ? "0" : "01") << (label_type == torch::kLong ? "_int64" : "_int32");
    return os.str();
}

class KdLoss : public testing::TestWithParam<Param> {
protected:
    KernelBackend backend() const { return std::get<0>(GetParam()); }
    int64_t batch() const { return std::get<1>(GetParam()).first; }
    int64_t classes() const { return std::get<1>(GetParam()).second; }
    double temperature() const { return std::get<2>(GetParam()); }
    double smoothing() const { return std::get<3>(GetParam()); }
    at::Tensor labels() const {
        return torch::randint(classes(), {batch()}, torch::TensorOptions().dtype(std::get<4>(GetParam())));
    }
    std::string context() const { return param_name({GetParam(), 0}); }
};

}  // namespace

TEST_P(KdLoss, MatchesAutogradInDouble) {
    torch::manual_seed(batch() * 1000 + classes());
    const at::Tensor student = 2.0 * torch::randn({batch(), classes()});
    const at::Tensor teacher = 3.0 * torch::randn({batch(), classes()});
    expect_matches_reference(student, teacher, labels(), temperature(), smoothing(), backend(), context());
}

// |z| up to 1e4: softmax saturates, naive exp overflows. Losses and gradients must stay
// finite and still match the float64 reference.
TEST_P(KdLoss, LargeLogits) {
    torch::manual_seed(batch() * 1000 + classes() + 1);
    at::Tensor student = torch::clamp(3000.0 * torch::randn({batch(), classes()}), -1e4, 1e4);
    at::Tensor teacher = torch::clamp(3000.0 * torch::randn({batch(), classes()}), -1e4, 1e4);
    // Both extremes present whatever the draw (the last write wins when C = 1).
    student[0][0] = 1e4;
    student[batch() - 1][classes() - 1] = -1e4;
    teacher[0][classes() - 1] = -1e4;
    expect_matches_reference(student, teacher, labels(), temperature(), smoothing(), backend(), context());
}

INSTANTIATE_TEST_SUITE_P(
    BackendShapeTemperatureSmoothingLabels, KdLoss,
    testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                     testing::Values(std::pair<int64_t, int64_t>{1, 1}, std::pair<int64_t, int64_t>{1, 10},
                                     std::pair<int64_t, int64_t>{7, 1}, std::pair<int64_t, int64_t>{128, 10},
                                     std::pair<int64_t, int64_t>{64, 100}, std::pair<int64_t, int64_t>{33, 1000}),
                     testing::Values(1.0, 4.0), testing::Values(0.0, 0.1),
                     testing::Values(torch::kLong, torch::kInt)),
    param_name);

namespace {
class KdLossCases : public testing::TestWithParam<KernelBackend> {};
}  // namespace

// Student equal to teacher: L_distill = 0 and its gradient is 0 (up to float rounding
// of softmax, bounded by the same 1e-5 * T/B).
TEST_P(KdLossCases, StudentEqualsTeacher) {
    torch::manual_seed(21);
    const at::Tensor z = torch::randn({16, 10});
    const at::Tensor labels = torch::randint(10, {16}, torch::kLong);
    const Outputs got = run_kernel(z, z, labels, 4.0, 0.0, GetParam());
    EXPECT_LE(std::abs(got.losses.distill), 1e-6);
    EXPECT_LE(got.grad_distill.abs().max().item<double>(), 1e-5 * 4.0 / 16);
    expect_matches_reference(z, z, labels, 4.0, 0.0, GetParam(), "student == teacher");
}

// Rows of the gradients sum to 0 (softmax minus a distribution), and the task gradient
// at the label is (p_y - (1 - s) - s/C)/B < 0: checks the layout (row = sample).
TEST_P(KdLossCases, GradientRowsSumToZeroAndLabelEntryIsNegative) {
    torch::manual_seed(22);
    const int64_t b = 9, c = 37;
    const at::Tensor student = torch::randn({b, c}), teacher = torch::randn({b, c});
    const at::Tensor labels = torch::randint(c, {b}, torch::kInt);
    const Outputs got = run_kernel(student, teacher, labels, 2.0, 0.1, GetParam());
    EXPECT_LE(got.grad_task.sum(1).abs().max().item<double>(), 1e-6 / b);
    EXPECT_LE(got.grad_distill.sum(1).abs().max().item<double>(), 1e-6 * 2.0 / b);
    const at::Tensor at_label = got.grad_task.gather(1, labels.to(torch::kLong).unsqueeze(1));
    EXPECT_TRUE((at_label < 0).all().item<bool>());
    expect_matches_reference(student, teacher, labels, 2.0, 0.1, GetParam(), "9 x 37, T=2, ls=0.1");
}

INSTANTIATE_TEST_SUITE_P(Backend, KdLossCases, testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const testing::TestParamInfo<KernelBackend> &info) {
                             return std::string(dtokd::to_string(info.param));
                         });
