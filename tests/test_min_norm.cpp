// dtokd::min_norm_tradeoff (runtime/min_norm.h) against brute force: the minimum
// over pi in [0, 1] of ||pi a + (1 - pi) b||^2, evaluated directly on explicit
// float64 vectors (never through the Gram), found on a 1e5-step grid and by
// golden-section search. Covers random, conflicting, aligned, dominant, identical,
// clamped and all-zero cases, and the equal-contribution property of the interior
// solution (<a, g*> = <b, g*> = ||g*||^2).
//
// The N-objective solve (min_norm_solve, N = 1..8) against a brute force that shares
// no code with it: the best point of a dense grid on the simplex, refined by pairwise
// exact line searches; plus the KKT conditions of METHOD.md checked with the test's
// own arithmetic. No LibTorch: this file also builds on its own with
//   g++ -std=c++17 -I runtime tests/test_min_norm.cpp runtime/min_norm.cpp -lgtest -lgtest_main -pthread
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
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

// ---- N objectives ------------------------------------------------------------------

namespace {

using Vecs = std::vector<Vec>;

dtokd::GramMatrix gram_matrix_of(const Vecs &a) {
    dtokd::GramMatrix g;
    g.n = int(a.size());
    for (int k = 0; k < g.n; k++)
        for (int l = 0; l < g.n; l++) g(k, l) = dot(a[size_t(k)], a[size_t(l)]);
    return g;
}

// The Gram's scale for every tolerance below: max |G_kl| (= max_k G_kk for a PSD Gram).
double scale_of(const dtokd::GramMatrix &g) {
    double s = 0;
    for (int k = 0; k < g.n; k++)
        for (int l = 0; l < g.n; l++) s = std::max(s, std::abs(g(k, l)));
    return s > 0 ? s : 1.0;
}

Vec times(const dtokd::GramMatrix &g, const Vec &pi) {  // G pi
    Vec r(size_t(g.n), 0.0);
    for (int k = 0; k < g.n; k++)
        for (int l = 0; l < g.n; l++) r[size_t(k)] += g(k, l) * pi[size_t(l)];
    return r;
}

double quad(const dtokd::GramMatrix &g, const Vec &pi) { return dot(pi, times(g, pi)); }  // pi^T G pi

// METHOD.md's optimality conditions at pi, as the largest violation relative to the
// Gram's scale: pi_k > 0 needs (G pi)_k = pi^T G pi, pi_k = 0 needs (G pi)_k >= pi^T G pi.
double kkt_violation(const dtokd::GramMatrix &g, const Vec &pi) {
    const Vec r = times(g, pi);
    const double v = dot(pi, r);
    double worst = 0;
    for (int k = 0; k < g.n; k++) {
        const double d = r[size_t(k)] - v;
        worst = std::max(worst, pi[size_t(k)] > 0 ? std::abs(d) : std::max(0.0, -d));
    }
    return worst / scale_of(g);
}

// Brute force, step 1: the best point of the grid {c / h : c_k >= 0 integers, sum c_k = h}.
Vec grid_minimum(const dtokd::GramMatrix &g, int h) {
    const int n = g.n;
    Vec c(size_t(n), 0.0), best;
    double best_value = std::numeric_limits<double>::infinity();
    std::function<void(int, int)> visit = [&](int k, int left) {
        if (k == n - 1) {
            c[size_t(k)] = left;
            Vec pi(c.size());
            for (int i = 0; i < n; i++) pi[size_t(i)] = c[size_t(i)] / h;
            const double v = quad(g, pi);
            if (v < best_value) best_value = v, best = pi;
            return;
        }
        for (int ck = 0; ck <= left; ck++) {
            c[size_t(k)] = ck;
            visit(k + 1, left - ck);
        }
    };
    visit(0, h);
    return best;
}

// Brute force, step 2: local refinement by pairwise exact line searches (move weight from
// the objective with the largest (G pi)_k among pi_k > 0 to the one with the smallest;
// the objective is a quadratic along that edge direction), until the two are within
// 1e-15 of the scale. Monotone, so never worse than its start.
Vec refine(const dtokd::GramMatrix &g, Vec pi) {
    const double s = scale_of(g);
    for (int it = 0; it < 1000000; it++) {
        const Vec r = times(g, pi);
        int lo = 0, hi = -1;
        for (int k = 0; k < g.n; k++) {
            if (r[size_t(k)] < r[size_t(lo)]) lo = k;
            if (pi[size_t(k)] > 0 && (hi < 0 || r[size_t(k)] > r[size_t(hi)])) hi = k;
        }
        const double gap = r[size_t(hi)] - r[size_t(lo)];
        if (!(gap > 1e-15 * s)) break;
        const double curvature = g(lo, lo) + g(hi, hi) - 2 * g(lo, hi);
        const double t = curvature > 0 ? std::min(pi[size_t(hi)], gap / curvature) : pi[size_t(hi)];
        pi[size_t(lo)] += t;
        pi[size_t(hi)] = t == pi[size_t(hi)] ? 0.0 : pi[size_t(hi)] - t;
    }
    // A million moves can drift the sum off 1 by rounding; a pi summing to 1 - 1e-11
    // would undercut the true minimum by 2e-11 pi^T G pi.
    double sum = 0;
    for (double p : pi) sum += p;
    for (double &p : pi) p /= sum;
    return pi;
}

// Grid resolution per N: about 1e5 points each.
int grid_steps(int n) { return n == 3 ? 400 : n == 4 ? 80 : 36; }

// Objective agreement with the brute force, relative to the Gram's scale. The solver's
// pi is exact up to rounding of the KKT solve; the refinement stops at a 1e-15 gap.
constexpr double kValueTol = 1e-12;
// METHOD.md's KKT conditions, relative to the Gram's scale.
constexpr double kKktTol = 1e-9;

// The solver's invariants (finite, >= 0, sum 1) and KKT; returns the solution.
dtokd::MinNormSolution check_solution(const dtokd::GramMatrix &g, const std::string &label) {
    const dtokd::MinNormSolution sol = dtokd::min_norm_solve(g);
    EXPECT_EQ(sol.pi.size(), size_t(g.n)) << label;
    double sum = 0;
    int support = 0;
    for (double p : sol.pi) {
        EXPECT_TRUE(std::isfinite(p)) << label;
        EXPECT_GE(p, 0.0) << label;
        sum += p;
        support += p > 0;
    }
    EXPECT_NEAR(sum, 1.0, 1e-14) << label;
    EXPECT_EQ(sol.support_size, support) << label;
    EXPECT_TRUE(std::isfinite(sol.sq_norm) && sol.sq_norm >= 0) << label;
    EXPECT_NEAR(sol.sq_norm, std::max(0.0, quad(g, sol.pi)), 1e-13 * scale_of(g)) << label;
    const double kkt = kkt_violation(g, sol.pi);
    EXPECT_LE(kkt, kKktTol) << label;
    EXPECT_LE(sol.kkt_residual, kKktTol) << label;
    EXPECT_EQ(dtokd::min_norm_weights(g), sol.pi) << label;
    return sol;
}

// check_solution plus agreement with the grid + refinement brute force (N = 3..5).
dtokd::MinNormSolution check_against_brute_force_n(const dtokd::GramMatrix &g, const std::string &label) {
    const dtokd::MinNormSolution sol = check_solution(g, label);
    const Vec grid = grid_minimum(g, grid_steps(g.n));
    const Vec brute = refine(g, grid);
    const double s = scale_of(g), got = quad(g, sol.pi), grid_value = quad(g, grid), brute_value = quad(g, brute);
    // No grid point may beat the exact minimiser, and the refined point must meet it.
    EXPECT_LE(got, grid_value + kValueTol * s) << label;
    EXPECT_NEAR(got, brute_value, kValueTol * s) << label << " solver " << got << " brute " << brute_value;
    return sol;
}

Vecs random_vectors(std::mt19937_64 &rng, int n, int dim, double decades) {
    std::uniform_real_distribution<double> log_scale(-decades, decades);
    Vecs a;
    for (int k = 0; k < n; k++) a.push_back(randn(rng, dim, std::pow(10.0, log_scale(rng))));
    return a;
}

Vec scaled(double c, const Vec &x) { return axpy(c - 1, x, x); }  // c x

std::string case_label(const char *kind, int n, int trial) {
    return std::string(kind) + " n=" + std::to_string(n) + " trial " + std::to_string(trial);
}

}  // namespace

TEST(MinNormSolve, RandomGramsMatchBruteForce) {
    std::mt19937_64 rng(20261205);
    for (int n = 3; n <= 5; n++)
        for (int trial = 0; trial < 12; trial++) {
            // Wide (a strictly convex QP) and narrow (rank < n: singular G, often 0 in the hull).
            const int dim = trial % 3 == 0 ? 2 : trial % 3 == 1 ? n - 1 : kDim;
            check_against_brute_force_n(gram_matrix_of(random_vectors(rng, n, dim, 1.0)),
                                        case_label("random", n, trial) + " dim " + std::to_string(dim));
        }
}

TEST(MinNormSolve, ConflictingObjectives) {
    std::mt19937_64 rng(11);
    for (int n = 3; n <= 5; n++)
        for (int trial = 0; trial < 8; trial++) {
            // Centred vectors plus a small shared part: every pair pulls apart.
            Vecs u = random_vectors(rng, n, 20, 0.0);
            Vec mean(20, 0.0);
            for (const Vec &x : u) mean = axpy(1.0 / n, x, mean);
            const Vec common = randn(rng, 20, 0.05 * trial);
            for (Vec &x : u) x = axpy(1.0, common, axpy(-1.0, mean, x));
            const std::string label = case_label("conflicting", n, trial);
            const dtokd::GramMatrix g = gram_matrix_of(u);
            const dtokd::MinNormSolution sol = check_against_brute_force_n(g, label);
            const dtokd::GramDiagnostics d = dtokd::gram_diagnostics(g, sol.pi);
            double direct_min = 1;
            for (int k = 0; k < n; k++)
                for (int l = k + 1; l < n; l++) direct_min = std::min(direct_min, cosine(u[size_t(k)], u[size_t(l)]));
            EXPECT_LT(d.min_cosine, 0.0) << label;
            EXPECT_NEAR(d.min_cosine, direct_min, 1e-12) << label;
        }
}

TEST(MinNormSolve, CollinearObjectives) {
    std::mt19937_64 rng(12);
    for (int n = 3; n <= 5; n++) {
        const Vec d = randn(rng, kDim, 1.0);
        // Positive multiples of one direction: the shortest one alone is the minimum.
        const Vec positive = {1.5, 3.0, 0.75, 2.0, 4.0};
        Vecs a;
        for (int k = 0; k < n; k++) a.push_back(scaled(positive[size_t(k)], d));
        const dtokd::MinNormSolution sol = check_against_brute_force_n(gram_matrix_of(a), case_label("same sign", n, 0));
        for (int k = 0; k < n; k++) EXPECT_EQ(sol.pi[size_t(k)], k == 2 ? 1.0 : 0.0) << "same sign n=" << n;
        // Opposite signs: 0 is in the hull.
        a[1] = scaled(-0.5, d);
        const dtokd::MinNormSolution zero = check_against_brute_force_n(gram_matrix_of(a), case_label("signs", n, 0));
        EXPECT_LE(zero.sq_norm, 1e-12 * scale_of(gram_matrix_of(a))) << "signs n=" << n;
        // One objective on the segment of two others, one on their line outside it,
        // the rest random.
        for (int trial = 0; trial < 6; trial++) {
            Vecs b = random_vectors(rng, n, kDim, 0.5);
            b[2] = trial % 2 ? axpy(0.5, b[0], scaled(0.5, b[1])) : axpy(2.0, b[0], scaled(-1.0, b[1]));
            if (trial >= 4) b[0] = axpy(0.3, b[1], scaled(0.2, b[0]));  // nearly aligned as well
            check_against_brute_force_n(gram_matrix_of(b), case_label("collinear", n, trial));
        }
    }
}

TEST(MinNormSolve, DuplicatedObjectives) {
    std::mt19937_64 rng(13);
    for (int n = 3; n <= 5; n++)
        for (int trial = 0; trial < 6; trial++) {
            Vecs a = random_vectors(rng, n, trial % 2 ? 3 : kDim, 0.5);
            // Copies at different positions: objective `to` duplicates `from` (from < to).
            const int from = trial % (n - 1), to = n - 1 - (trial / 2) % (n - 1 - from);
            a[size_t(to)] = a[size_t(from)];
            if (trial == 5) a = Vecs(size_t(n), a[0]);  // all identical
            const std::string label = case_label("duplicated", n, trial) + " copy " + std::to_string(from) +
                                      "->" + std::to_string(to);
            const dtokd::MinNormSolution sol = check_against_brute_force_n(gram_matrix_of(a), label);
            // Documented tie-break: the weight goes to the lowest-index copy.
            EXPECT_EQ(sol.pi[size_t(to)], 0.0) << label;
            if (trial == 5) {
                EXPECT_EQ(sol.pi[0], 1.0) << label;
                EXPECT_TRUE(sol.degenerate) << label;
            }
        }
}

TEST(MinNormSolve, OneObjectiveDominantBy1e4) {
    std::mt19937_64 rng(14);
    for (int n = 3; n <= 5; n++)
        for (int big = 0; big < n; big++) {
            Vecs a = random_vectors(rng, n, kDim, 0.3);
            a[size_t(big)] = scaled(1e4, a[size_t(big)]);
            const std::string label = case_label("dominant", n, big);
            const dtokd::MinNormSolution sol = check_against_brute_force_n(gram_matrix_of(a), label);
            EXPECT_LT(sol.pi[size_t(big)], 0.01) << label;
            // The equal-contribution conditions hold at the small objectives' scale too,
            // not only at the dominant one's (1e8 larger).
            const Vec r = times(gram_matrix_of(a), sol.pi);
            double small_scale = 0;
            for (int k = 0; k < n; k++)
                if (k != big) small_scale = std::max(small_scale, dot(a[size_t(k)], a[size_t(k)]));
            for (int k = 0; k < n; k++) {
                if (sol.pi[size_t(k)] > 0) {
                    EXPECT_NEAR(r[size_t(k)], sol.sq_norm, 1e-9 * small_scale) << label;
                }
            }
        }
}

TEST(MinNormSolve, AllClampedVertexOptimum) {
    std::mt19937_64 rng(15);
    for (int n = 3; n <= 5; n++)
        for (int at = 0; at < n; at++) {
            // <small, a_k> >= <small, small> for every k: the small one alone is the minimum.
            const Vec small = randn(rng, kDim, 1.0);
            Vecs a;
            for (int k = 0; k < n; k++)
                a.push_back(k == at ? small : axpy(1.5 + k, small, randn(rng, kDim, 0.2)));
            const dtokd::GramMatrix g = gram_matrix_of(a);
            for (int k = 0; k < n; k++) ASSERT_GE(g(at, k), g(at, at));
            const std::string label = case_label("vertex", n, at);
            const dtokd::MinNormSolution sol = check_against_brute_force_n(g, label);
            for (int k = 0; k < n; k++) EXPECT_EQ(sol.pi[size_t(k)], k == at ? 1.0 : 0.0) << label;
            EXPECT_EQ(sol.support_size, 1) << label;
            EXPECT_FALSE(sol.interior) << label;
            EXPECT_GT(refine(g, grid_minimum(g, grid_steps(n)))[size_t(at)], 1 - 1e-9) << label;
        }
    // A zero gradient among others is the minimum (||g*|| = 0).
    for (int n = 3; n <= 5; n++) {
        Vecs a = random_vectors(rng, n, kDim, 0.5);
        a[1] = Vec(kDim, 0.0);
        const dtokd::MinNormSolution sol = check_against_brute_force_n(gram_matrix_of(a), case_label("zero", n, 0));
        EXPECT_EQ(sol.pi[1], 1.0);
        EXPECT_EQ(sol.sq_norm, 0.0);
    }
}

TEST(MinNormSolve, GramWithTinyNegativeRounding) {
    std::mt19937_64 rng(16);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    for (int n = 3; n <= 5; n++)
        for (int trial = 0; trial < 8; trial++) {
            // Singular Grams (duplicate, collinear, a zero gradient), then symmetric
            // rounding-sized noise so G is slightly indefinite, with a negative
            // diagonal on the zero gradient.
            Vecs a = random_vectors(rng, n, trial % 2 ? 2 : kDim, 0.5);
            a[1] = a[0];
            a[2] = axpy(0.5, a[0], scaled(0.5, a[n - 1]));
            if (trial % 4 >= 2) a[size_t(n - 1)] = Vec(size_t(trial % 2 ? 2 : kDim), 0.0);
            dtokd::GramMatrix g = gram_matrix_of(a);
            const double s = scale_of(g);
            for (int k = 0; k < n; k++)
                for (int l = k; l < n; l++) g(k, l) = g(l, k) = g(k, l) + 1e-15 * s * unit(rng);
            if (trial % 4 >= 2) g(n - 1, n - 1) = -1e-17 * s;
            const std::string label = case_label("rounding", n, trial);
            const dtokd::MinNormSolution sol = check_against_brute_force_n(g, label);
            const dtokd::GramDiagnostics d = dtokd::gram_diagnostics(g, sol.pi);
            for (double x : d.norms) EXPECT_TRUE(std::isfinite(x) && x >= 0) << label;
            if (trial % 4 >= 2) {
                EXPECT_TRUE(std::isnan(dtokd::gram_cosine(g, 0, n - 1))) << label;
            }
        }
}

TEST(MinNormSolve, TwoObjectivesEqualTheClosedFormBitwise) {
    std::mt19937_64 rng(17);
    std::vector<std::pair<Vec, Vec>> pairs;
    for (int trial = 0; trial < 40; trial++) {
        const Vecs a = random_vectors(rng, 2, trial % 4 ? kDim : 1, 2.0);
        pairs.push_back({a[0], a[1]});
    }
    const Vec x = randn(rng, kDim, 1.0);
    pairs.push_back({x, x});                                   // identical: the (1/2, 1/2) fallback
    pairs.push_back({x, axpy(1.0, x, randn(rng, kDim, 1e-9))});  // nearly identical
    pairs.push_back({x, scaled(3.0, x)});                      // clamped
    pairs.push_back({scaled(-2.0, x), x});                     // opposed
    pairs.push_back({Vec(kDim, 0.0), x});
    pairs.push_back({Vec(kDim, 0.0), Vec(kDim, 0.0)});
    for (const auto &[a, b] : pairs) {
        const dtokd::Gram pair = gram_of(a, b);
        const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(pair);
        dtokd::GramMatrix g;
        g.n = 2;
        g(0, 0) = pair.g11;
        g(0, 1) = g(1, 0) = pair.g12;
        g(1, 1) = pair.g22;
        const dtokd::MinNormSolution sol = dtokd::min_norm_solve(g);
        ASSERT_EQ(sol.pi.size(), 2u);
        EXPECT_EQ(std::memcmp(&sol.pi[0], &t.pi1, sizeof(double)), 0) << sol.pi[0] << " vs " << t.pi1;
        EXPECT_EQ(std::memcmp(&sol.pi[1], &t.pi2, sizeof(double)), 0) << sol.pi[1] << " vs " << t.pi2;
        EXPECT_EQ(sol.degenerate, t.degenerate);
        EXPECT_EQ(sol.interior, t.interior);
        EXPECT_EQ(dtokd::min_norm_weights(g), (Vec{t.pi1, t.pi2}));
    }
}

TEST(MinNormSolve, OneToEightObjectivesSatisfyKkt) {
    std::mt19937_64 rng(18);
    std::uniform_int_distribution<int> dims(1, 12);
    for (int n = 1; n <= dtokd::kMaxObjectives; n++)
        for (int trial = 0; trial < 25; trial++) {
            Vecs a = random_vectors(rng, n, dims(rng), trial % 5 == 4 ? 4.0 : 1.0);
            if (n >= 3 && trial % 3 == 1) a[size_t(n - 1)] = a[0];                      // a duplicate
            if (n >= 4 && trial % 3 == 2) a[3] = axpy(0.25, a[1], scaled(0.75, a[2]));  // on a segment
            const dtokd::GramMatrix g = gram_matrix_of(a);
            const std::string label = case_label("random", n, trial);
            const dtokd::MinNormSolution sol = check_solution(g, label);
            if (n == 1) {
                EXPECT_EQ(sol.pi, Vec{1.0}) << label;
                continue;
            }
            // The refinement alone (from the uniform point) is the brute force here.
            const Vec brute = refine(g, Vec(size_t(n), 1.0 / n));
            EXPECT_NEAR(quad(g, sol.pi), quad(g, brute), kValueTol * scale_of(g)) << label;
        }
}

TEST(MinNormSolve, RejectsBadInput) {
    dtokd::GramMatrix g;
    g.n = 0;
    EXPECT_THROW(dtokd::min_norm_solve(g), std::invalid_argument);
    g.n = dtokd::kMaxObjectives + 1;
    EXPECT_THROW(dtokd::min_norm_solve(g), std::invalid_argument);
    g.n = 3;
    g(0, 0) = g(1, 1) = g(2, 2) = 1;
    g(1, 2) = std::numeric_limits<double>::quiet_NaN();
    try {
        dtokd::min_norm_solve(g);
        ADD_FAILURE() << "no exception for a NaN entry";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("(1, 2)"), std::string::npos) << e.what();
    }
    g(1, 2) = std::numeric_limits<double>::infinity();
    EXPECT_THROW(dtokd::min_norm_weights(g), std::invalid_argument);
    g(1, 2) = 0;
    EXPECT_THROW(dtokd::gram_diagnostics(g, Vec{0.5, 0.5}), std::invalid_argument);
}

TEST(MinNormDiagnostics, CosinesNormsAndContributionsFromTheGram) {
    std::mt19937_64 rng(19);
    for (int n = 1; n <= dtokd::kMaxObjectives; n++) {
        Vecs a = random_vectors(rng, n, kDim, 1.0);
        if (n >= 3) a[2] = Vec(kDim, 0.0);  // a zero gradient: its cosines are NaN
        const dtokd::GramMatrix g = gram_matrix_of(a);
        const dtokd::MinNormSolution sol = dtokd::min_norm_solve(g);
        const dtokd::GramDiagnostics d = dtokd::gram_diagnostics(g, sol.pi);
        const std::string label = "n=" + std::to_string(n);
        ASSERT_EQ(d.cosines.size(), size_t(n * n)) << label;
        Vec gstar(kDim, 0.0);
        for (int k = 0; k < n; k++) gstar = axpy(sol.pi[size_t(k)], a[size_t(k)], gstar);
        double direct_min = std::numeric_limits<double>::quiet_NaN();
        for (int k = 0; k < n; k++) {
            const bool zero_k = dot(a[size_t(k)], a[size_t(k)]) == 0;
            for (int l = 0; l < n; l++) {
                const double c = d.cosines[size_t(k * n + l)];
                EXPECT_EQ(std::isnan(c), zero_k || dot(a[size_t(l)], a[size_t(l)]) == 0) << label;
                if (std::isnan(c)) continue;
                EXPECT_NEAR(c, cosine(a[size_t(k)], a[size_t(l)]), 1e-12) << label << " " << k << "," << l;
                if (k < l && !(c >= direct_min)) direct_min = c;
            }
            EXPECT_NEAR(d.norms[size_t(k)], std::sqrt(dot(a[size_t(k)], a[size_t(k)])),
                        1e-12 * d.norms[size_t(k)]) << label;
            // <a_k, g*> from the Gram against the direct dot product; cancellation in g*
            // bounds the agreement by the input norms.
            EXPECT_NEAR(d.dot_direction[size_t(k)], dot(a[size_t(k)], gstar), 1e-12 * scale_of(g)) << label;
        }
        if (std::isnan(direct_min))
            EXPECT_TRUE(std::isnan(d.min_cosine)) << label;
        else
            EXPECT_EQ(d.min_cosine, direct_min) << label;
    }
}

TEST(MinNormDiagnostics, TwoObjectivesMatchThePairDiagnosticsBitwise) {
    std::mt19937_64 rng(20);
    for (int trial = 0; trial < 20; trial++) {
        Vecs a = random_vectors(rng, 2, kDim, 2.0);
        if (trial == 0) a[1] = Vec(kDim, 0.0);
        const dtokd::Gram pair = gram_of(a[0], a[1]);
        const dtokd::GramMatrix g = gram_matrix_of(a);
        const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(pair);
        const dtokd::GramDiagnostics d = dtokd::gram_diagnostics(g, {t.pi1, t.pi2});
        const double c = dtokd::gram_cosine(pair);
        if (std::isnan(c)) {
            EXPECT_TRUE(std::isnan(d.min_cosine));
        } else {
            EXPECT_EQ(d.min_cosine, c);
            EXPECT_EQ(dtokd::gram_cosine(g, 1, 0), c);
        }
        EXPECT_EQ(d.dot_direction[0], dtokd::a_dot_direction(pair, t));
        EXPECT_EQ(d.dot_direction[1], dtokd::b_dot_direction(pair, t));
    }
}
