// Input validation of the kernel API (runtime/kernels.h, runtime/tensor_checks.h):
// every bad input throws std::invalid_argument, on both back ends, with a message that
// names what was wrong (the offending shape, dtype, range or value and what was
// expected). The checks run before any back end touches memory, so a rejected
// optimizer step must also leave theta and its state untouched.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels.h"

namespace {

using dtokd::KernelBackend;

// EXPECT_THROW(f(), std::invalid_argument) that also requires every substring in what().
void expect_invalid_argument(const std::function<void()> &f, const std::vector<std::string> &substrings) {
    try {
        f();
        ADD_FAILURE() << "expected std::invalid_argument, nothing was thrown";
    } catch (const std::invalid_argument &e) {
        const std::string what = e.what();
        for (const std::string &s : substrings)
            EXPECT_NE(what.find(s), std::string::npos) << "message lacks '" << s << "': " << what;
    } catch (const std::exception &e) {
        ADD_FAILURE() << "expected std::invalid_argument, got another exception: " << e.what();
    }
}

class KernelInputChecks : public testing::TestWithParam<KernelBackend> {
protected:
    KernelBackend backend() const { return GetParam(); }

    dtokd::Gram gram(const at::Tensor &a, const at::Tensor &b, double ld = 1.0, double lt = 1.0,
                     double eps = 1e-8) const {
        return dtokd::log_gram(a, b, ld, lt, eps, backend());
    }

    void kd(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
            dtokd::KdLossOptions options = {}) const {
        at::Tensor gt = torch::zeros(student.sizes()), gd = torch::zeros(student.sizes());
        dtokd::kd_loss(student, teacher, labels, options, gt, gd, backend());
    }
};

}  // namespace

TEST_P(KernelInputChecks, LogGramMismatchedNumelNamesBothShapes) {
    const at::Tensor a = torch::randn({3}), b = torch::randn({4});
    expect_invalid_argument([&] { gram(a, b); }, {"log_gram", "[3]", "[4]", "same number of elements"});
    expect_invalid_argument([&] { gram(b, a); }, {"[3]", "[4]"});
}

TEST_P(KernelInputChecks, LogGramWrongDtype) {
    const at::Tensor a = torch::randn({5}, torch::kDouble), b = torch::randn({5});
    expect_invalid_argument([&] { gram(a, b); }, {"log_gram", "a (distill gradient)", "float32"});
    expect_invalid_argument([&] { gram(b, a); }, {"b (task gradient)", "float32"});
    expect_invalid_argument([&] { gram(torch::ones({5}, torch::kHalf), b); }, {"float32"});
}

TEST_P(KernelInputChecks, LogGramNonContiguous) {
    const at::Tensor transposed = torch::randn({4, 3}).t();  // [3, 4], strides (1, 3)
    ASSERT_FALSE(transposed.is_contiguous());
    expect_invalid_argument([&] { gram(transposed, torch::randn({3, 4})); }, {"contiguous"});
    const at::Tensor strided = torch::randn({8}).slice(0, 0, 8, 2);  // every second element
    ASSERT_FALSE(strided.is_contiguous());
    expect_invalid_argument([&] { gram(torch::randn({4}), strided); }, {"b (task gradient)", "contiguous"});
}

TEST_P(KernelInputChecks, LogGramEmptyAndUndefined) {
    expect_invalid_argument([&] { gram(torch::empty({0}), torch::empty({0})); }, {"at least 1 element"});
    expect_invalid_argument([&] { gram(at::Tensor(), torch::randn({2})); }, {"undefined"});
}

TEST_P(KernelInputChecks, LogGramBadScalars) {
    const at::Tensor a = torch::randn({5}), b = torch::randn({5});
    expect_invalid_argument([&] { gram(a, b, std::nan(""), 1.0); }, {"loss_distill", "finite"});
    expect_invalid_argument([&] { gram(a, b, 1.0, INFINITY); }, {"loss_task", "finite"});
    expect_invalid_argument([&] { gram(a, b, 1.0, 1.0, 0.0); }, {"eps", "> 0"});
    expect_invalid_argument([&] { gram(a, b, 1.0, 1.0, -1e-8); }, {"eps", "> 0"});
}

TEST_P(KernelInputChecks, LogGramDeviceMismatch) {
    const at::Tensor cpu = torch::randn({5}), meta = torch::empty({5}, torch::TensorOptions().device(torch::kMeta));
    expect_invalid_argument([&] { gram(cpu, meta); }, {"same device", "meta"});
}

TEST_P(KernelInputChecks, KdLossLabelsOutOfRange) {
    const at::Tensor s = torch::randn({4, 10}), t = torch::randn({4, 10});
    for (torch::Dtype type : {torch::kLong, torch::kInt}) {
        const at::Tensor high = torch::tensor({0, 3, 10, 2}, torch::TensorOptions().dtype(type));
        expect_invalid_argument([&] { kd(s, t, high); }, {"kd_loss", "labels span [0, 10]", "[0, 9]"});
        const at::Tensor negative = torch::tensor({0, -1, 5, 2}, torch::TensorOptions().dtype(type));
        expect_invalid_argument([&] { kd(s, t, negative); }, {"labels span [-1, 5]", "[0, 9]"});
    }
}

TEST_P(KernelInputChecks, KdLossLabelsWrongTypeOrLength) {
    const at::Tensor s = torch::randn({4, 10}), t = torch::randn({4, 10});
    expect_invalid_argument([&] { kd(s, t, torch::zeros({4})); }, {"labels", "int64 or int32", "[4]"});
    expect_invalid_argument([&] { kd(s, t, torch::zeros({3}, torch::kLong)); }, {"labels", "[3]", "[4]"});
    expect_invalid_argument([&] { kd(s, t, torch::zeros({4, 1}, torch::kLong)); }, {"labels", "[4, 1]"});
}

TEST_P(KernelInputChecks, KdLossTeacherStudentShapeMismatch) {
    const at::Tensor labels = torch::zeros({4}, torch::kLong);
    expect_invalid_argument([&] { kd(torch::randn({4, 10}), torch::randn({4, 11}), labels); },
                            {"student_logits", "teacher_logits", "[4, 10]", "[4, 11]", "same shape"});
    expect_invalid_argument([&] { kd(torch::randn({4, 10}), torch::randn({40}), labels); },
                            {"teacher_logits", "[40]"});
}

TEST_P(KernelInputChecks, KdLossStudentNotAMatrix) {
    expect_invalid_argument([&] { kd(torch::randn({10}), torch::randn({10}), torch::zeros({1}, torch::kLong)); },
                            {"student_logits", "[10]", "[batch, classes]"});
}

TEST_P(KernelInputChecks, KdLossGradientBufferShape) {
    const at::Tensor s = torch::randn({4, 10}), t = torch::randn({4, 10}), labels = torch::zeros({4}, torch::kLong);
    at::Tensor good = torch::zeros({4, 10}), bad = torch::zeros({10, 4});
    expect_invalid_argument([&] { dtokd::kd_loss(s, t, labels, {}, bad, good, backend()); },
                            {"grad_task", "[10, 4]"});
    expect_invalid_argument([&] { dtokd::kd_loss(s, t, labels, {}, good, bad, backend()); },
                            {"grad_distill", "[10, 4]"});
    at::Tensor as_double = torch::zeros({4, 10}, torch::kDouble);
    expect_invalid_argument([&] { dtokd::kd_loss(s, t, labels, {}, good, as_double, backend()); },
                            {"grad_distill", "float32"});
}

TEST_P(KernelInputChecks, KdLossNonPositiveTemperatureAndBadSmoothing) {
    const at::Tensor s = torch::randn({4, 10}), t = torch::randn({4, 10}), labels = torch::zeros({4}, torch::kLong);
    for (double temperature : {0.0, -1.0, std::nan("")}) {
        dtokd::KdLossOptions o;
        o.temperature = temperature;
        expect_invalid_argument([&] { kd(s, t, labels, o); }, {"temperature", "> 0"});
    }
    for (double smoothing : {-0.1, 1.0}) {
        dtokd::KdLossOptions o;
        o.label_smoothing = smoothing;
        expect_invalid_argument([&] { kd(s, t, labels, o); }, {"label_smoothing", "[0, 1)"});
    }
}

TEST_P(KernelInputChecks, SgdUpdateRejectsAndLeavesStateUntouched) {
    at::Tensor theta = torch::randn({3}), buf = torch::randn({3});
    const at::Tensor theta0 = theta.clone(), buf0 = buf.clone();
    const at::Tensor g3 = torch::randn({3}), g4 = torch::randn({4});
    const dtokd::SgdOptions options;
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::single_direction(g4), options, true, backend()); },
        {"sgd_update", "theta", "[3]", "[4]"});
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::dto_direction(g3, g4, 0.5, 0.5, 1, 1, 1e-8), options, true,
                                backend()); },
        {"gradient 1", "[3]", "[4]"});
    at::Tensor buf4 = torch::zeros({4});
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf4, dtokd::single_direction(g3), options, true, backend()); },
        {"momentum_buffer", "[3]", "[4]"});
    const at::Tensor g3_double = torch::randn({3}, torch::kDouble);
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::single_direction(g3_double), options, true, backend()); },
        {"gradient 0", "float32"});
    dtokd::SgdOptions nesterov_without_momentum;
    nesterov_without_momentum.nesterov = true;
    nesterov_without_momentum.momentum = 0;
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::single_direction(g3), nesterov_without_momentum, true,
                                backend()); },
        {"nesterov", "momentum > 0"});
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::Direction{}, options, true, backend()); },
        {"0 gradients", "expected 1..8"});
    expect_invalid_argument(
        [&] { dtokd::sgd_update(theta, buf, dtokd::single_direction(g3, INFINITY), options, true, backend()); },
        {"coefficient", "finite"});
    EXPECT_TRUE(theta.equal(theta0));
    EXPECT_TRUE(buf.equal(buf0));
}

TEST_P(KernelInputChecks, AdamWUpdateRejectsAndLeavesStateUntouched) {
    at::Tensor theta = torch::randn({6}), m = torch::randn({6}), v = torch::rand({6});
    const at::Tensor theta0 = theta.clone(), m0 = m.clone(), v0 = v.clone();
    const at::Tensor g = torch::randn({6});
    const dtokd::AdamWOptions options;
    expect_invalid_argument(
        [&] { dtokd::adamw_update(theta, m, v, dtokd::single_direction(g), options, 0, backend()); },
        {"adamw_update", "step", ">= 1"});
    dtokd::AdamWOptions beta_one = options;
    beta_one.beta2 = 1.0;
    expect_invalid_argument(
        [&] { dtokd::adamw_update(theta, m, v, dtokd::single_direction(g), beta_one, 1, backend()); },
        {"beta", "[0, 1)"});
    at::Tensor v5 = torch::zeros({5});
    expect_invalid_argument(
        [&] { dtokd::adamw_update(theta, m, v5, dtokd::single_direction(g), options, 1, backend()); },
        {"exp_avg_sq", "[6]", "[5]"});
    at::Tensor m_strided = torch::zeros({12}).slice(0, 0, 12, 2);
    expect_invalid_argument(
        [&] { dtokd::adamw_update(theta, m_strided, v, dtokd::single_direction(g), options, 1, backend()); },
        {"exp_avg", "contiguous"});
    EXPECT_TRUE(theta.equal(theta0));
    EXPECT_TRUE(m.equal(m0));
    EXPECT_TRUE(v.equal(v0));
}

// The N-gradient Gram and directions: 1..kMaxObjectives gradients of one length, none null.
TEST_P(KernelInputChecks, GramNBadCounts) {
    const at::Tensor g = torch::randn({5});
    expect_invalid_argument([&] { dtokd::log_gram({}, {}, 1e-8, backend()); },
                            {"log_gram", "0 gradients", "expected 1..8"});
    const std::vector<const at::Tensor *> nine(9, &g);
    expect_invalid_argument([&] { dtokd::log_gram(nine, std::vector<double>(9, 1.0), 1e-8, backend()); },
                            {"log_gram", "9 gradients", "expected 1..8"});
    expect_invalid_argument([&] { dtokd::log_gram({&g, &g, &g}, {1.0, 1.0}, 1e-8, backend()); },
                            {"log_gram", "2 losses for 3 gradients", "one per gradient"});
}

TEST_P(KernelInputChecks, GramNMismatchedLengthsAndNull) {
    const at::Tensor g5 = torch::randn({5}), g4 = torch::randn({4});
    expect_invalid_argument([&] { dtokd::log_gram({&g5, &g5, &g5, &g4}, {1, 1, 1, 1}, 1e-8, backend()); },
                            {"log_gram", "gradient 0", "[5]", "gradient 3", "[4]", "same number of elements"});
    expect_invalid_argument([&] { dtokd::log_gram({&g5, nullptr, &g5}, {1, 1, 1}, 1e-8, backend()); },
                            {"log_gram", "gradient 1", "missing"});
    expect_invalid_argument([&] { dtokd::log_gram({&g5, &g5}, {1.0, NAN}, 1e-8, backend()); },
                            {"log_gram", "loss 1", "finite"});
}

TEST_P(KernelInputChecks, DirectionNBadCountsMismatchedLengthsAndNull) {
    at::Tensor theta = torch::randn({5}), buf = torch::randn({5}), m = torch::zeros({5}), v = torch::zeros({5});
    const at::Tensor theta0 = theta.clone(), buf0 = buf.clone();
    const at::Tensor g5 = torch::randn({5}), g4 = torch::randn({4});
    const dtokd::SgdOptions sgd;
    const dtokd::AdamWOptions adamw;
    auto direction = [](std::vector<const at::Tensor *> grads) {
        dtokd::Direction d;
        d.count = int(grads.size());
        for (size_t k = 0; k < grads.size() && k < d.grads.size(); k++) {
            d.grads[k] = grads[k];
            d.coeffs[k] = 0.5;
        }
        return d;
    };
    dtokd::Direction nine = direction(std::vector<const at::Tensor *>(8, &g5));
    nine.count = 9;
    for (const auto &[d, substrings] : std::vector<std::pair<dtokd::Direction, std::vector<std::string>>>{
             {dtokd::Direction{}, {"0 gradients", "expected 1..8"}},
             {nine, {"9 gradients", "expected 1..8"}},
             {direction({&g5, &g5, &g5, &g5, &g4}), {"theta", "[5]", "gradient 4", "[4]"}},
             {direction({&g5, &g5, nullptr}), {"gradient 2", "missing"}}}) {
        std::vector<std::string> sgd_expect = substrings, adamw_expect = substrings;
        sgd_expect.push_back("sgd_update");
        adamw_expect.push_back("adamw_update");
        expect_invalid_argument([&] { dtokd::sgd_update(theta, buf, d, sgd, true, backend()); }, sgd_expect);
        expect_invalid_argument([&] { dtokd::adamw_update(theta, m, v, d, adamw, 1, backend()); }, adamw_expect);
    }
    expect_invalid_argument([&] { dtokd::dto_direction({&g5, &g5}, {0.5}, {1.0, 1.0}, 1e-8); },
                            {"dto_direction", "2 gradients, 1 weights, 2 losses"});
    expect_invalid_argument(
        [&] {
            dtokd::dto_direction(std::vector<const at::Tensor *>(9, &g5), std::vector<double>(9, 0.1),
                                 std::vector<double>(9, 1.0), 1e-8);
        },
        {"dto_direction", "9 gradients", "expected 1..8"});
    EXPECT_TRUE(theta.equal(theta0));
    EXPECT_TRUE(buf.equal(buf0));
    EXPECT_TRUE(m.equal(torch::zeros({5})));
}

INSTANTIATE_TEST_SUITE_P(Backend, KernelInputChecks, testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const testing::TestParamInfo<KernelBackend> &info) {
                             return std::string(dtokd::to_string(info.param));
                         });

// The Halide kernels run on CPU memory only; a non-CPU tensor gets a clear error, not a
// crash (meta tensors stand in for a GPU here: same dtype and layout, no storage).
TEST(KernelInputChecksHalide, NonCpuTensorsAreRejected) {
    const auto meta = torch::TensorOptions().device(torch::kMeta);
    expect_invalid_argument(
        [&] { dtokd::log_gram(torch::empty({5}, meta), torch::empty({5}, meta), 1, 1, 1e-8, KernelBackend::halide); },
        {"log_gram", "CPU", "--kernels=torch"});
}

TEST(ParseKernelBackend, ValidNamesRoundTrip) {
    for (KernelBackend b : {KernelBackend::halide, KernelBackend::torch})
        EXPECT_EQ(dtokd::parse_kernel_backend(dtokd::to_string(b)), b);
    EXPECT_STREQ(dtokd::to_string(KernelBackend::halide), "halide");
    EXPECT_STREQ(dtokd::to_string(KernelBackend::torch), "torch");
}

TEST(ParseKernelBackend, UnknownNameListsBothValidValues) {
    for (const std::string bad : {"cuda", "Halide", "", "torch "})
        expect_invalid_argument([&] { dtokd::parse_kernel_backend(bad); }, {"'" + bad + "'", "'halide'", "'torch'"});
}
