// dtokd::log_gram (runtime/kernels.h) on both back ends against a float64 reference:
// a plain loop over the raw float32 data with double accumulation, then the log
// scaling 1/max(L, eps). Sizes cover single elements, odd tails below and above the
// Halide kernel's vector width and chunk, a 2^20 exact multiple and N = 5e7 (where
// float accumulation error would show); 100003 = 6 full Halide chunks of 16384 plus a
// tail, fewer chunks than one parallel task of the chunk sums. The 5e7 cases allocate
// 400 MB and run one test per back end (random normal data) to keep the suite short.
// The N-gradient Gram (N = 1..8 objectives, GramN below) is checked the same way, entry
// by entry, at lengths 1..100003 for every N, and at 5e7 for N = 3 (600 MB) and N = 8
// (1.6 GB, halide back end only, the kernel with the most accumulators).
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_backends.h"
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

// ---------------------------------------------------------------------------------
// The N x N Gram of N = 1..8 gradients: G(k, l) = <g_k, g_l> / (L_k L_l).

namespace {

using dtokd::GramMatrix;

// Losses spread over two decades, one below eps's floor case left out (see ZeroLossUsesEps).
double loss_of(int k) { return 0.05 * std::pow(1.9, k) + 0.01 * k; }

// The reference: every pair's dot product in double over the float32 values, then the scaling.
std::vector<std::vector<double>> reference_gram(const std::vector<at::Tensor> &g, const std::vector<double> &losses,
                                                double eps) {
    constexpr int kMax = dtokd::kMaxObjectives;
    const int n = int(g.size());
    const int64_t len = g[0].numel();
    const float *p[kMax] = {};
    for (int k = 0; k < n; k++) p[k] = g[size_t(k)].data_ptr<float>();
    double acc[kMax][kMax] = {}, x[kMax] = {};
    for (int64_t i = 0; i < len; i++) {
        for (int k = 0; k < n; k++) x[k] = p[k][i];
        for (int k = 0; k < n; k++)
            for (int l = k; l < n; l++) acc[k][l] += x[k] * x[l];
    }
    std::vector<std::vector<double>> sum(size_t(n), std::vector<double>(size_t(n), 0.0));
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++)
            sum[size_t(k)][size_t(l)] = sum[size_t(l)][size_t(k)] =
                acc[k][l] / (std::max(losses[size_t(k)], eps) * std::max(losses[size_t(l)], eps));
    return sum;
}

// Diagonal: relative error <= 1e-5. Off the diagonal: |err| <= 1e-5 * sqrt(G_kk G_ll), the
// cosine scale, as g12 above (a dot product's rounding error scales with ||g_k|| ||g_l||).
// Entries outside the N x N block stay 0; the matrix is exactly symmetric.
void expect_gram_near(const GramMatrix &got, const std::vector<std::vector<double>> &want,
                      const std::string &context) {
    const int n = int(want.size());
    ASSERT_EQ(got.n, n) << context;
    const double tol = 1e-5;
    for (int k = 0; k < n; k++)
        for (int l = 0; l < n; l++) {
            const double bound = k == l ? tol * std::abs(want[size_t(k)][size_t(k)])
                                        : tol * std::sqrt(want[size_t(k)][size_t(k)] * want[size_t(l)][size_t(l)]);
            EXPECT_LE(std::abs(got(k, l) - want[size_t(k)][size_t(l)]), bound)
                << context << ": G(" << k << ", " << l << ") " << got(k, l) << " vs reference "
                << want[size_t(k)][size_t(l)];
            EXPECT_EQ(got(k, l), got(l, k)) << context << ": G(" << k << ", " << l << ") not symmetric";
        }
    for (int k = 0; k < dtokd::kMaxObjectives; k++)
        for (int l = 0; l < dtokd::kMaxObjectives; l++)
            if (k >= n || l >= n) {
                EXPECT_EQ(got(k, l), 0.0) << context << ": G(" << k << ", " << l << ") outside";
            }
}

// N correlated gradients of different scales: g_k = s_k (c_k common + noise_k).
std::vector<at::Tensor> correlated_gradients(int objectives, int64_t len) {
    const at::Tensor common = torch::randn({len});
    std::vector<at::Tensor> g;  // in place: no temporaries of the 5e7 cases
    for (int k = 0; k < objectives; k++)
        g.push_back(torch::randn({len}).add_(common, 0.3 * k - 0.9).mul_(std::pow(3.0, k % 3 - 1)));
    return g;
}

using ParamN = std::tuple<KernelBackend, int, int64_t>;  // back end, objectives, length

std::string param_name_n(const testing::TestParamInfo<ParamN> &info) {
    const auto &[backend, objectives, len] = info.param;
    return std::string(dtokd::to_string(backend)) + "_" + std::to_string(objectives) + "objectives_len" +
           std::to_string(len);
}

class GramN : public testing::TestWithParam<ParamN> {
protected:
    KernelBackend backend() const { return std::get<0>(GetParam()); }
    int objectives() const { return std::get<1>(GetParam()); }
    int64_t len() const { return std::get<2>(GetParam()); }
    std::string context() const { return param_name_n({GetParam(), 0}); }

    void check(const std::vector<at::Tensor> &g, const std::string &what) const {
        std::vector<const at::Tensor *> ptrs;
        std::vector<double> losses;
        for (size_t k = 0; k < g.size(); k++) {
            ptrs.push_back(&g[k]);
            losses.push_back(loss_of(int(k)));
        }
        const GramMatrix got = dtokd::log_gram(ptrs, losses, kEps, backend());
        expect_gram_near(got, reference_gram(g, losses, kEps), context() + " " + what);
    }
};

class GramNData : public GramN {};

}  // namespace

TEST_P(GramN, CorrelatedGradients) {
    torch::manual_seed(5000 + 10 * objectives() + len());
    check(correlated_gradients(objectives(), len()), "correlated");
}

TEST_P(GramNData, MixedMagnitudes) {
    torch::manual_seed(6000 + 10 * objectives() + len());
    std::vector<at::Tensor> g;
    for (int k = 0; k < objectives(); k++) g.push_back(mixed_magnitudes(len()));
    check(g, "mixed magnitudes");
}

// The same tensor in every slot: every entry is <g,g>/(L_k L_l), the cosine-1 case.
TEST_P(GramNData, SameTensorInEverySlot) {
    torch::manual_seed(7000 + 10 * objectives() + len());
    const at::Tensor a = torch::randn({len()});
    check(std::vector<at::Tensor>(size_t(objectives()), a), "same tensor");
}

INSTANTIATE_TEST_SUITE_P(BackendByCountBySize, GramN,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Range(1, dtokd::kMaxObjectives + 1),
                                          testing::Values<int64_t>(1, 3, 17, 1023, 4099, 100003)),
                         param_name_n);
INSTANTIATE_TEST_SUITE_P(BackendByCountBySize, GramNData,
                         testing::Combine(testing::Values(KernelBackend::halide, KernelBackend::torch),
                                          testing::Range(1, dtokd::kMaxObjectives + 1),
                                          testing::Values<int64_t>(1, 33, 16385)),
                         param_name_n);
// 5e7: N = 3 on both back ends; N = 8 (36 accumulators) on the Halide kernel only, the torch
// back end's 36 chunked dot products per 2^14 elements being the slow reference path.
INSTANTIATE_TEST_SUITE_P(Large, GramN,
                         testing::Values(ParamN{KernelBackend::halide, 3, kLargeN},
                                         ParamN{KernelBackend::torch, 3, kLargeN},
                                         ParamN{KernelBackend::halide, 8, kLargeN}),
                         param_name_n);

namespace {
class GramNBackend : public testing::TestWithParam<KernelBackend> {};
}  // namespace

// N = 2 through the N-gradient API is the exact policy's two-gradient Gram: at losses 1 the
// two give the same doubles (the same kernel, dtokd_log_gram, on the halide back end).
TEST_P(GramNBackend, TwoGradientsMatchTheTwoGradientKernel) {
    torch::manual_seed(8);
    for (int64_t len : {1, 4099, 100003}) {
        const at::Tensor a = torch::randn({len}), b = torch::randn({len}) + 0.3 * a;
        const GramMatrix got = dtokd::log_gram({&a, &b}, {1.0, 1.0}, kEps, GetParam());
        const Gram want = dtokd::log_gram(a, b, 1.0, 1.0, kEps, GetParam());
        EXPECT_EQ(got(0, 0), want.g11) << len;
        EXPECT_EQ(got(0, 1), want.g12) << len;
        EXPECT_EQ(got(1, 0), want.g12) << len;
        EXPECT_EQ(got(1, 1), want.g22) << len;
    }
}

// Reordering the gradients permutes the matrix: each pair lands on its own entry.
TEST_P(GramNBackend, PermutedGradientsPermuteTheMatrix) {
    torch::manual_seed(9);
    const std::vector<at::Tensor> g = correlated_gradients(dtokd::kMaxObjectives, 4099);
    const int order[] = {5, 2, 7, 0, 3, 6, 1, 4};
    std::vector<const at::Tensor *> ptrs, permuted;
    std::vector<double> losses, permuted_losses;
    for (int k = 0; k < dtokd::kMaxObjectives; k++) {
        ptrs.push_back(&g[size_t(k)]);
        losses.push_back(loss_of(k));
        permuted.push_back(&g[size_t(order[k])]);
        permuted_losses.push_back(loss_of(order[k]));
    }
    const GramMatrix a = dtokd::log_gram(ptrs, losses, kEps, GetParam());
    const GramMatrix b = dtokd::log_gram(permuted, permuted_losses, kEps, GetParam());
    for (int k = 0; k < dtokd::kMaxObjectives; k++)
        for (int l = 0; l < dtokd::kMaxObjectives; l++)
            EXPECT_NEAR(b(k, l), a(order[k], order[l]), 1e-5 * std::sqrt(a(order[k], order[k]) * a(order[l], order[l])))
                << k << ", " << l;
}

// Losses at or below eps are replaced by eps, per gradient.
TEST_P(GramNBackend, ZeroLossUsesEps) {
    torch::manual_seed(10);
    const std::vector<at::Tensor> g = correlated_gradients(4, 1023);
    const std::vector<double> losses = {0.0, 2.5, -1.0, 1e-12};
    const GramMatrix got = dtokd::log_gram({&g[0], &g[1], &g[2], &g[3]}, losses, kEps, GetParam());
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < 4; l++) EXPECT_TRUE(std::isfinite(got(k, l))) << k << ", " << l;
    expect_gram_near(got, reference_gram(g, losses, kEps), "losses 0, 2.5, -1, 1e-12");
}

INSTANTIATE_TEST_SUITE_P(Backend, GramNBackend, testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const testing::TestParamInfo<KernelBackend> &info) {
                             return std::string(dtokd::to_string(info.param));
                         });

// The torch back end's Gram for GPU tensors (one batched matmul per pair, summed on the
// device, read back once), run here on CPU tensors: float64 dot products within 1e-6
// relative, the contract of the per-chunk path, for N = 1..8 and sizes around the chunk.
class TorchBatchedGram : public testing::TestWithParam<std::tuple<int, int64_t>> {};

TEST_P(TorchBatchedGram, MatchesFloat64) {
    const auto [n, size] = GetParam();
    std::vector<at::Tensor> g;
    for (int k = 0; k < n; k++) g.push_back(mixed_magnitudes(size) * double(k + 1) + double(k) * 0.01);
    const at::Tensor raw = dtokd::detail::torch_backend::raw_gram_batched(g);
    ASSERT_EQ(raw.scalar_type(), at::kDouble);
    ASSERT_EQ(raw.numel(), n * (n + 1) / 2);
    int64_t i = 0;
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++, i++) {
            const at::Tensor a = g[size_t(k)].to(at::kDouble), b = g[size_t(l)].to(at::kDouble);
            const double want = a.dot(b).item<double>();
            const double scale = std::sqrt(a.dot(a).item<double>() * b.dot(b).item<double>());
            EXPECT_NEAR(raw[i].item<double>(), want, 1e-6 * scale) << "N=" << n << " size " << size << " (" << k
                                                                    << ", " << l << ")";
        }
}

INSTANTIATE_TEST_SUITE_P(CountBySize, TorchBatchedGram,
                         testing::Combine(testing::Values(1, 2, 3, 8),
                                          testing::Values(int64_t(1), int64_t(17), int64_t(16384), int64_t(16385),
                                                          int64_t(20495), int64_t(1) << 20)));
