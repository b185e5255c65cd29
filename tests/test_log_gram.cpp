// dtokd::log_gram (runtime/kernels.h) on both back ends against a float64 reference:
// a plain loop over the raw float32 data with double accumulation, then the log
// scaling 1/max(L, eps). Sizes cover single elements, odd tails below and above the
// Halide kernel's vector width and chunk, a 2^20 exact multiple and N = 5e7 (where
// float accumulation error would show); 100003 = 6 full Halide chunks of 16384 plus a
// tail, fewer chunks than one parallel task of the chunk sums. The 5e7 cases allocate
// 400 MB and run one test per back end (random normal data) to keep the suite short.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>

#include "kernels.h"

namespace {

using dtokd::Gram;
using dtokd::KernelBackend;

constexpr double kEps = 1e-8;
constexpr double kLossDistill = 0.37, kLossTask = 2.5;
constexpr int64_t kLargeN = 50000000;

// The reference: double accumulation over the float32 values, then the log scaling.
Gram reference_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
    const int64_t n = a.numel();
    double aa = 0, ab = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        const double x = pa[i], y = pb[i];
        aa += x * x;
        ab += x * y;
        bb += y * y;
    }
    const double ld = std::max(loss_distill, eps), lt = std::max(loss_task, eps);
    return {aa / (ld * ld), ab / (ld * lt), bb / (lt * lt)};
}

// g11, g22: relative error <= 1e-5. g12: |err| <= 1e-5 * sqrt(g11 g22). <a,b> can cancel
// to ~0 (independent or orthogonal gradients), so a relative bound on g12 itself would
// demand more than any float accumulation can give. The rounding error of a dot product
// scales with sum |a_i b_i|, which Cauchy-Schwarz bounds by ||a|| ||b||: after the log
// scaling that is sqrt(g11 g22), i.e. the error is bounded on the cosine scale.
void expect_gram_near(const Gram &got, const Gram &want, const std::string &context) {
    const double tol = 1e-5;
    EXPECT_LE(std::abs(got.g11 - want.g11), tol * std::abs(want.g11))
        << context << ": g11 " << got.g11 << " vs reference " << want.g11;
    EXPECT_LE(std::abs(got.g22 - want.g22), tol * std::abs(want.g22))
        << context << ": g22 " << got.g22 << " vs reference " << want.g22;
    EXPECT_LE(std::abs(got.g12 - want.g12), tol * std::sqrt(want.g11 * want.g22))
        << context << ": g12 " << got.g12 << " vs reference " << want.g12 << " (cosine scale "
        << std::sqrt(want.g11 * want.g22) << ")";
}

// Elements scaled by 10^U(-6, 6): twelve decades in one vector.
at::Tensor mixed_magnitudes(int64_t n) {
    return torch::randn({n}) * torch::pow(10.0, torch::rand({n}) * 12.0 - 6.0);
}

using Param = std::tuple<KernelBackend, int64_t>;

std::string param_name(const testing::TestParamInfo<Param> &info) {
    return std::string(dtokd::to_string(std::get<0>(info.param))) + "_N" + std::to_string(std::get<1>(info.param));
}

class LogGram : public testing::TestWithParam<Param> {
protected:
    KernelBackend backend() const { return std::get<0>(GetParam()); }
    int64_t n() const { return std::get<1>(GetParam()); }
    std::string context() const { return param_name({GetParam(), 0}); }

    void check(const at::Tensor &a, const at::Tensor &b, const std::string &what) const {
        const Gram got = dtokd::log_gram(a, b, kLossDistill, kLossTask, kEps, backend());
        expect_gram_near(got, reference_gram(a, b, kLossDistill, kLossTask, kEps), context() + " " + what);
    }
};

// Every data case except at N = 5e7; see LogGram.RandomNormal for that size.
class LogGramData : public LogGram {};

}  // namespace

// Correlated gradients of different scales, so g12 is far from 0 and from sqrt(g11 g22).
TEST_P(LogGram, RandomNormal) {
    torch::manual_seed(1000 + n());
    const at::Tensor a = torch::randn({n()});
    const at::Tensor b = 0.5 * a + 2.0 * torch::randn({n()});
    check(a, b, "random normal");
}

TEST_P(LogGramData, MixedMagnitudes) {
    torch::manual_seed(2000 + n());
    const at::Tensor a = mixed_magnitudes(n()), b = mixed_magnitudes(n());
    check(a, b, "mixed magnitudes");
}

TEST_P(LogGramData, AllZerosGiveExactlyZero) {
    const at::Tensor a = torch::zeros({n()}), b = torch::zeros({n()});
    const Gram got = dtokd::log_gram(a, b, kLossDistill, kLossTask, kEps, backend());
    EXPECT_EQ(got.g11, 0.0) << context();
    EXPECT_EQ(got.g12, 0.0) << context();
    EXPECT_EQ(got.g22, 0.0) << context();
}

// a and b the same tensor: g12 is the cosine-1 case, <a,a>/(Ld Lt).
TEST_P(LogGramData, SameTensor) {
    torch::manual_seed(3000 + n());
    const at::Tensor a = torch::randn({n()});
    check(a, a, "a == b");
    const Gram got = dtokd::log_gram(a, a, kLossDistill, kLossTask, kEps, backend());
    EXPECT_LE(std::abs(got.g12 - std::sqrt(got.g11 * got.g22)), 1e-5 * got.g12) << context();
}

INSTANTIATE_TEST_SUITE_P(BackendBySize, LogGram,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Values<int64_t>(1, 3, 17, 1023, 4099, 100003, 1 << 20, kLargeN)),
                         param_name);
INSTANTIATE_TEST_SUITE_P(BackendBySize, LogGramData,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Values<int64_t>(1, 3, 17, 1023, 4099, 100003, 1 << 20)),
                         param_name);

namespace {
class LogGramScaling : public testing::TestWithParam<KernelBackend> {};
}  // namespace

// The 1/L scaling: the same data at (Ld, Lt) = (1, 1) and (0.37, 2.5) must differ by
// exactly the loss factors (up to the kernels' float rounding of the losses).
TEST_P(LogGramScaling, DividesByTheLosses) {
    torch::manual_seed(4);
    const at::Tensor a = torch::randn({4099}), b = torch::randn({4099}) + 0.2 * a;
    const Gram raw = dtokd::log_gram(a, b, 1.0, 1.0, kEps, GetParam());
    const Gram scaled = dtokd::log_gram(a, b, kLossDistill, kLossTask, kEps, GetParam());
    expect_gram_near(raw, reference_gram(a, b, 1.0, 1.0, kEps), "raw");
    expect_gram_near(scaled, reference_gram(a, b, kLossDistill, kLossTask, kEps), "scaled");
    EXPECT_NEAR(scaled.g11 * kLossDistill * kLossDistill / raw.g11, 1.0, 1e-6);
    EXPECT_NEAR(scaled.g12 * kLossDistill * kLossTask / raw.g12, 1.0, 1e-6);
    EXPECT_NEAR(scaled.g22 * kLossTask * kLossTask / raw.g22, 1.0, 1e-6);
}

// A loss of 0 (or below eps) is replaced by eps: g = raw / eps^2, large but finite.
TEST_P(LogGramScaling, ZeroLossUsesEps) {
    torch::manual_seed(5);
    const at::Tensor a = torch::randn({1023}), b = torch::randn({1023});
    for (const auto &[ld, lt] : {std::pair{0.0, 0.0}, std::pair{0.0, kLossTask}, std::pair{kLossDistill, -1.0},
                                 std::pair{1e-12, 1e-12}}) {
        std::ostringstream what;
        what << "Ld=" << ld << " Lt=" << lt;
        const Gram got = dtokd::log_gram(a, b, ld, lt, kEps, GetParam());
        EXPECT_TRUE(std::isfinite(got.g11) && std::isfinite(got.g12) && std::isfinite(got.g22)) << what.str();
        expect_gram_near(got, reference_gram(a, b, ld, lt, kEps), what.str());
    }
    // Both losses at 0: every entry is the raw inner product over eps^2.
    const Gram zero = dtokd::log_gram(a, b, 0.0, 0.0, kEps, GetParam());
    const Gram raw = reference_gram(a, b, 1.0, 1.0, kEps);
    EXPECT_NEAR(zero.g11 * kEps * kEps / raw.g11, 1.0, 1e-5);
    EXPECT_NEAR(zero.g22 * kEps * kEps / raw.g22, 1.0, 1e-5);
}

// Flat kernels take any shape: a [7, 9, 13] tensor is its 819 elements.
TEST_P(LogGramScaling, AnyShapeIsFlattened) {
    torch::manual_seed(6);
    const at::Tensor a = torch::randn({7, 9, 13}), b = torch::randn({7, 9, 13});
    const Gram got = dtokd::log_gram(a, b, kLossDistill, kLossTask, kEps, GetParam());
    expect_gram_near(got, reference_gram(a, b, kLossDistill, kLossTask, kEps), "[7, 9, 13]");
}

INSTANTIATE_TEST_SUITE_P(Backend, LogGramScaling,
                         testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const testing::TestParamInfo<KernelBackend> &info) {
                             return std::string(dtokd::to_string(info.param));
                         });
