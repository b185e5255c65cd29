// dtokd::min_norm_tradeoff (runtime/min_norm.h) against brute force: the minimum
// over pi in [0, 1] of ||pi a + (1 - pi) b||^2, evaluated directly on explicit
// float64 vectors (never through the Gram), found on a 1e5-step grid and by
// golden-section search. Covers random, conflicting, aligned, dominant, identical,
// clamped and all-zero cases, and the equal-contribution property of the interior
// solution (<a, g*> = <b, g*> = ||g*||^2).
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "min_norm.h"

namespace {

using Vec = std::vector<double>;

double dot(const Vec &x, const Vec &y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); i++) s += x[i] * y[i];
    return s;
}

dtokd::Gram gram_of(const Vec &a, const Vec &b) { return {dot(a, a), dot(a, b), dot(b, b)}; }

// ||pi a + (1 - pi) b||^2 straight from the vectors.
double seg_sq_norm(const Vec &a, const Vec &b, double pi) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double g = pi * a[i] + (1 - pi) * b[i];
        s += g * g;
    }
    return s;
}

struct Minimum {
    double pi, value;
};

Minimum grid_minimum(const Vec &a, const Vec &b, int steps = 100000) {
    Minimum best{0, seg_sq_norm(a, b, 0)};
    for (int k = 1; k <= steps; k++) {
        const double pi = double(k) / steps;
        const double v = seg_sq_norm(a, b, pi);
        if (v < best.value) best = {pi, v};
    }
    return best;
}

// Golden-section search on [0, 1] (the objective is a convex quadratic in pi),
// down to an interval of 1e-12; the ends are compared too so a clamped minimum
// at 0 or 1 is found exactly.
Minimum golden_minimum(const Vec &a, const Vec &b) {
    const double r = (std::sqrt(5.0) - 1) / 2;
    double lo = 0, hi = 1;
    double x1 = hi - r * (hi - lo), x2 = lo + r * (hi - lo);
    double f1 = seg_sq_norm(a, b, x1), f2 = seg_sq_norm(a, b, x2);
    while (hi - lo > 1e-12) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - r * (hi - lo);
            f1 = seg_sq_norm(a, b, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + r * (hi - lo);
            f2 = seg_sq_norm(a, b, x2);
        }
    }
    Minimum best{0.5 * (lo + hi), seg_sq_norm(a, b, 0.5 * (lo + hi))};
    for (double end : {0.0, 1.0}) {
        const double v = seg_sq_norm(a, b, end);
        if (v < best.value) best = {end, v};
    }
    return best;
}

Vec randn(std::mt19937_64 &rng, int n, double scale) {
    std::normal_distribution<double> normal(0.0, scale);
    Vec v(n);
    for (double &x : v) x = normal(rng);
    return v;
}

Vec axpy(double alpha, const Vec &x, const Vec &y) {  // alpha x + y
    Vec out(x.size());
    for (size_t i = 0; i < x.size(); i++) out[i] = alpha * x[i] + y[i];
    return out;
}

double cosine(const Vec &a, const Vec &b) { return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b)); }

// Checks the code's tradeoff against both brute-force minima and returns it.
dtokd::Tradeoff check_against_brute_force(const Vec &a, const Vec &b, const std::string &label) {
    const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(gram_of(a, b));
    EXPECT_TRUE(std::isfinite(t.pi1) && std::isfinite(t.pi2)) << label;
    EXPECT_GE(t.pi1, 0.0) << label;
    EXPECT_LE(t.pi1, 1.0) << label;
    EXPECT_DOUBLE_EQ(t.pi1 + t.pi2, 1.0) << label;

    const double got = seg_sq_norm(a, b, t.pi1);
    const Minimum grid = grid_minimum(a, b);
    const Minimum golden = golden_minimum(a, b);
    const double scale = std::max(dot(a, a), dot(b, b));
    // The closed form is the exact minimiser: no grid point and no golden-section
    // point may beat it beyond float64 rounding of the norm. The degenerate
    // fallback (||a - b||^2 <= 1e-12 (g11 + g22)) only promises a point whose norm
    // is within the segment's variation, 2 ||a - b|| max(||a||, ||b||) + ||a - b||^2.
    const Vec diff = axpy(-1.0, b, a);
    const double slack =
        1e-12 * scale + (t.degenerate ? 2 * std::sqrt(dot(diff, diff) * scale) + dot(diff, diff) : 0.0);
    EXPECT_LE(got, grid.value + slack) << label << " pi1=" << t.pi1 << " grid pi=" << grid.pi;
    EXPECT_LE(got, golden.value + slack) << label << " pi1=" << t.pi1 << " golden pi=" << golden.pi;
    if (!t.degenerate) {
        // The grid step is 1e-5, so its argmin lies within one step of the true one.
        EXPECT_LE(std::abs(t.pi1 - grid.pi), 1e-5) << label << " pi1=" << t.pi1 << " grid pi=" << grid.pi;
        // Golden section stops on function values, which flatten quadratically at
        // the minimum: pi is resolved to ~1e-8 * sqrt(value / curvature).
        EXPECT_LE(std::abs(t.pi1 - golden.pi), 1e-6) << label << " pi1=" << t.pi1 << " golden pi=" << golden.pi;
    }
    return t;
}

// At an interior minimum, <a, g*> = <b, g*> = ||g*||^2 (both objectives improve at
// the same rate), checked with the library's Gram formulas and directly.
void check_equal_contribution(const Vec &a, const Vec &b, const dtokd::Tradeoff &t, const std::string &label) {
    ASSERT_TRUE(t.interior) << label;
    const dtokd::Gram g = gram_of(a, b);
    const double lib_a = dtokd::a_dot_direction(g, t), lib_b = dtokd::b_dot_direction(g, t);
    Vec gstar(a.size());
    for (size_t i = 0; i < a.size(); i++) gstar[i] = t.pi1 * a[i] + t.pi2 * b[i];
    const double direct_a = dot(a, gstar), direct_b = dot(b, gstar), sq = dot(gstar, gstar);
    // The library's <a,g*> and <b,g*> come from the same Gram: compare each with
    // the direct dot product (cancellation in g* bounds the agreement by the
    // larger input norm, not by ||g*||).
    const double cancel = 1e-12 * std::max(dot(a, a), dot(b, b));
    EXPECT_NEAR(lib_a, direct_a, 1e-9 * std::abs(direct_a) + cancel) << label;
    EXPECT_NEAR(lib_b, direct_b, 1e-9 * std::abs(direct_b) + cancel) << label;
    EXPECT_LE(std::abs(lib_a - lib_b), 1e-5 * std::max(std::abs(lib_a), std::abs(lib_b)) + cancel) << label;
    EXPECT_LE(std::abs(direct_a - direct_b), 1e-5 * std::max(std::abs(direct_a), std::abs(direct_b)) + cancel)
        << label;
    EXPECT_NEAR(direct_a, sq, 1e-5 * sq + cancel) << label;
}

constexpr int kDim = 50;

}  // namespace

TEST(MinNormTradeoff, RandomPairsMatchBruteForce) {
    std::mt19937_64 rng(20260101);
    std::uniform_real_distribution<double> log_scale(-2.0, 2.0);
    int interior = 0;
    for (int trial = 0; trial < 24; trial++) {
        const Vec a = randn(rng, kDim, std::pow(10.0, log_scale(rng)));
        const Vec b = randn(rng, kDim, std::pow(10.0, log_scale(rng)));
        const std::string label = "random trial " + std::to_string(trial);
        const dtokd::Tradeoff t = check_against_brute_force(a, b, label);
        EXPECT_FALSE(t.degenerate) << label;
        if (t.interior) {
            interior++;
            check_equal_contribution(a, b, t, label);
        }
    }
    // Random 50-d vectors are nearly orthogonal: most pairs must give an interior point.
    EXPECT_GE(interior, 8);
}

TEST(MinNormTradeoff, ConflictingGradients) {
    std::mt19937_64 rng(3);
    for (int trial = 0; trial < 8; trial++) {
        const Vec a = randn(rng, kDim, 1.0);
        const Vec b = axpy(-0.3 - 0.2 * trial, a, randn(rng, kDim, 0.5));
        const std::string label = "conflicting trial " + std::to_string(trial);
        ASSERT_LT(cosine(a, b), 0.0) << label;
        EXPECT_LT(dtokd::gram_cosine(gram_of(a, b)), 0.0) << label;
        EXPECT_NEAR(dtokd::gram_cosine(gram_of(a, b)), cosine(a, b), 1e-12) << label;
        const dtokd::Tradeoff t = check_against_brute_force(a, b, label);
        // With cos < 0 the segment always passes between a and b: never clamped.
        EXPECT_TRUE(t.interior) << label;
        check_equal_contribution(a, b, t, label);
    }
}

TEST(MinNormTradeoff, AlignedGradients) {
    std::mt19937_64 rng(4);
    for (int trial = 0; trial < 8; trial++) {
        const Vec a = randn(rng, kDim, 1.0);
        // Same length, small relative noise: cos > 0.9 and an interior minimum near 1/2.
        const Vec b = axpy(1.0, a, randn(rng, kDim, 0.15));
        const std::string label = "aligned trial " + std::to_string(trial);
        ASSERT_GT(cosine(a, b), 0.9) << label;
        const dtokd::Tradeoff t = check_against_brute_force(a, b, label);
        if (t.interior) check_equal_contribution(a, b, t, label);
    }
}

TEST(MinNormTradeoff, DominantGradient) {
    std::mt19937_64 rng(5);
    for (int trial = 0; trial < 8; trial++) {
        Vec a = randn(rng, kDim, 1e4);  // ||a|| / ||b|| ~ 1e4
        Vec b = randn(rng, kDim, 1.0);
        if (trial % 2) std::swap(a, b);
        const std::string label = "dominant trial " + std::to_string(trial);
        const dtokd::Tradeoff t = check_against_brute_force(a, b, label);
        // Nearly all the weight goes to the small gradient.
        const double small_weight = trial % 2 ? t.pi1 : t.pi2;
        EXPECT_GT(small_weight, 0.99) << label;
        if (t.interior) check_equal_contribution(a, b, t, label);
    }
}

TEST(MinNormTradeoff, IdenticalGradientsAreDegenerate) {
    std::mt19937_64 rng(6);
    const Vec a = randn(rng, kDim, 3.0);
    for (const Vec &b : {a, axpy(1.0, a, randn(rng, kDim, 1e-9))}) {
        const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(gram_of(a, b));
        EXPECT_TRUE(t.degenerate);
        EXPECT_FALSE(t.interior);
        EXPECT_EQ(t.pi1, 0.5);
        EXPECT_EQ(t.pi2, 0.5);
        check_against_brute_force(a, b, "identical");
    }
}

TEST(MinNormTradeoff, ClampsToTheSmallerGradient) {
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 6; trial++) {
        const Vec small = randn(rng, kDim, 1.0);
        const Vec large = axpy(1.5 + trial, small, randn(rng, kDim, 0.2));
        // g12 >= g11: a (distill) is the smaller one and alone is the minimum.
        {
            const dtokd::Gram g = gram_of(small, large);
            ASSERT_GE(g.g12, g.g11);
            const dtokd::Tradeoff t = check_against_brute_force(small, large, "clamp pi1=1");
            EXPECT_EQ(t.pi1, 1.0);
            EXPECT_EQ(t.pi2, 0.0);
            EXPECT_FALSE(t.interior);
            EXPECT_FALSE(t.degenerate);
            EXPECT_EQ(grid_minimum(small, large).pi, 1.0);
        }
        // g12 >= g22: b (task) is the smaller one.
        {
            const dtokd::Gram g = gram_of(large, small);
            ASSERT_GE(g.g12, g.g22);
            const dtokd::Tradeoff t = check_against_brute_force(large, small, "clamp pi1=0");
            EXPECT_EQ(t.pi1, 0.0);
            EXPECT_EQ(t.pi2, 1.0);
            EXPECT_FALSE(t.interior);
            EXPECT_EQ(grid_minimum(large, small).pi, 0.0);
        }
    }
}

TEST(MinNormTradeoff, OneZeroGradientIsTheMinimum) {
    std::mt19937_64 rng(8);
    const Vec zero(kDim, 0.0), b = randn(rng, kDim, 2.0);
    const dtokd::Tradeoff ta = check_against_brute_force(zero, b, "a = 0");
    EXPECT_EQ(ta.pi1, 1.0);
    const dtokd::Tradeoff tb = check_against_brute_force(b, zero, "b = 0");
    EXPECT_EQ(tb.pi1, 0.0);
}

TEST(MinNormTradeoff, AllZeroGramGivesHalfAndNoNaN) {
    const dtokd::Gram zero{0, 0, 0};
    const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(zero);
    EXPECT_TRUE(t.degenerate);
    EXPECT_EQ(t.pi1, 0.5);
    EXPECT_EQ(t.pi2, 0.5);
    EXPECT_FALSE(std::isnan(dtokd::a_dot_direction(zero, t)));
    EXPECT_FALSE(std::isnan(dtokd::b_dot_direction(zero, t)));
    // Documented: the cosine of a zero gradient is undefined (NaN), not 0.
    EXPECT_TRUE(std::isnan(dtokd::gram_cosine(zero)));
}
