// dtokd::dto_direction_sq_norm (runtime/kernels.h): ||g*||^2 from the log-gradient
// Gram must equal ||pi1 a/Ld + pi2 b/Lt||^2 computed directly, in float64, from the
// raw gradients. The Gram comes from the float64 loop too, so this isolates the
// closed form (and its clamp at 0) from any kernel's rounding.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels.h"

namespace {

struct DirectCase {
    int64_t n;
    double pi1, loss_distill, loss_task;
    double b_scale;  // b relative to a: 1 with b = a*sign gives the cancelling cases below
};

dtokd::Gram gram_in_double(const std::vector<double> &a, const std::vector<double> &b, double ld, double lt) {
    double aa = 0, ab = 0, bb = 0;
    for (size_t i = 0; i < a.size(); i++) {
        aa += a[i] * a[i];
        ab += a[i] * b[i];
        bb += b[i] * b[i];
    }
    return {aa / (ld * ld), ab / (ld * lt), bb / (lt * lt)};
}

double direct_sq_norm(const std::vector<double> &a, const std::vector<double> &b, double pi1, double pi2,
                      double ld, double lt) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double g = pi1 * a[i] / ld + pi2 * b[i] / lt;
        s += g * g;
    }
    return s;
}

std::vector<double> randn_double(int64_t n, double scale) {
    const at::Tensor t = torch::randn({n}, torch::kDouble) * scale;
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + n);
}

}  // namespace

TEST(DtoDirectionSqNorm, MatchesDirectNormInDouble) {
    torch::manual_seed(7);
    const std::vector<DirectCase> cases = {
        {1, 0.5, 1.0, 1.0, 1.0},     {17, 0.3, 0.37, 2.5, 1.0},   {1000, 0.9, 2.5, 0.37, 10.0},
        {4099, 0.0, 1.2, 0.8, 1e-3}, {4099, 1.0, 1.2, 0.8, 1e3},  {100000, 0.123, 5.0, 0.01, 1.0},
    };
    for (const auto &c : cases) {
        const std::vector<double> a = randn_double(c.n, 1.0), b = randn_double(c.n, c.b_scale);
        const double pi2 = 1 - c.pi1;
        const dtokd::Gram g = gram_in_double(a, b, c.loss_distill, c.loss_task);
        const double expected = direct_sq_norm(a, b, c.pi1, pi2, c.loss_distill, c.loss_task);
        const double got = dtokd::dto_direction_sq_norm(g, c.pi1, pi2);
        EXPECT_LE(std::abs(got - expected), 1e-6 * expected)
            << "n=" << c.n << " pi1=" << c.pi1 << " got " << got << " expected " << expected;
    }
}

// pi from the closed form of METHOD.md (interior solution), where g* is the min-norm
// point: ||g*||^2 is much smaller than g11 and g22, the regime where the formula's
// terms cancel. Relative error is still measured against the direct norm.
TEST(DtoDirectionSqNorm, MinNormPointOfCorrelatedGradients) {
    torch::manual_seed(11);
    const int64_t n = 20000;
    const std::vector<double> a = randn_double(n, 1.0), noise = randn_double(n, 0.05);
    std::vector<double> b(n);
    for (int64_t i = 0; i < n; i++) b[i] = -0.8 * a[i] + noise[i];
    const double ld = 0.37, lt = 2.5;
    const dtokd::Gram g = gram_in_double(a, b, ld, lt);
    const double pi1 = std::clamp((g.g22 - g.g12) / (g.g11 + g.g22 - 2 * g.g12), 0.0, 1.0);
    const double pi2 = 1 - pi1;
    ASSERT_GT(pi1, 0.0);
    ASSERT_LT(pi1, 1.0);
    const double expected = direct_sq_norm(a, b, pi1, pi2, ld, lt);
    ASSERT_LT(expected, 0.01 * std::min(g.g11, g.g22));  // the cancelling regime this test is about
    const double got = dtokd::dto_direction_sq_norm(g, pi1, pi2);
    EXPECT_LE(std::abs(got - expected), 1e-6 * expected) << "got " << got << " expected " << expected;
}

// a/Ld = b/Lt exactly: g* = pi1 u + pi2 u = u, so ||g*||^2 = g11 for any pi.
TEST(DtoDirectionSqNorm, EqualLogGradients) {
    torch::manual_seed(3);
    const std::vector<double> a = randn_double(1000, 1.0);
    const double ld = 0.5, lt = 2.0;
    std::vector<double> b(a.size());
    for (size_t i = 0; i < a.size(); i++) b[i] = a[i] * (lt / ld);
    const dtokd::Gram g = gram_in_double(a, b, ld, lt);
    for (double pi1 : {0.0, 0.25, 0.5, 1.0}) {
        const double expected = direct_sq_norm(a, b, pi1, 1 - pi1, ld, lt);
        const double got = dtokd::dto_direction_sq_norm(g, pi1, 1 - pi1);
        EXPECT_LE(std::abs(got - expected), 1e-6 * expected) << "pi1=" << pi1;
        EXPECT_LE(std::abs(got - g.g11), 1e-6 * g.g11) << "pi1=" << pi1;
    }
}

// Opposite equal log-gradients and pi = (1/2, 1/2): g* = 0. Rounding in the Gram may
// make the closed form slightly negative; a squared norm must come back >= 0.
TEST(DtoDirectionSqNorm, NeverNegative) {
    const dtokd::Gram g{1.0, -1.0 - 1e-15, 1.0};
    EXPECT_GE(dtokd::dto_direction_sq_norm(g, 0.5, 0.5), 0.0);
    EXPECT_LE(dtokd::dto_direction_sq_norm(g, 0.5, 0.5), 1e-15);
}
