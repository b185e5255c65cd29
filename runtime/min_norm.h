// Theorem 3.1 of DTO-KD (= two-task MGDA, Sener & Koltun 2018): the minimum-norm
// point pi1 a + pi2 b of the segment [a, b], from the Gram g11 = <a,a>,
// g12 = <a,b>, g22 = <b,b>:
//   pi1 = (g22 - g12) / (g11 + g22 - 2 g12), clamped to [0, 1]; pi2 = 1 - pi1.
// When g11 + g22 - 2 g12 <= 1e-12 (g11 + g22) the two are (nearly) equal: (1/2, 1/2).
//
// N objectives (METHOD.md, "N objectives"): pi* = argmin over the simplex of
// pi^T G pi for the N x N Gram G_kl = <a_k, a_l>, N = 1..kMaxObjectives, solved
// exactly by enumerating supports (at most 2^8 - 1 = 255 tiny KKT systems), and
// the per-objective diagnostics read from the same Gram. No LibTorch here.
#pragma once
#include <vector>

#include "kernels.h"

namespace dtokd {

struct Tradeoff {
    double pi1 = 0.5, pi2 = 0.5;
    bool interior = false;    // 0 < pi1 < 1 from the formula (not clamped, not degenerate)
    bool degenerate = false;  // a ~ b: the (1/2, 1/2) fallback
};

// Requires finite Gram entries (callers check); never returns NaN.
Tradeoff min_norm_tradeoff(const Gram &gram);

// Diagnostics from the same Gram: cos(a, b) (NaN when a norm is 0) and
// <a, g*>, <b, g*> for g* = pi1 a + pi2 b.
double gram_cosine(const Gram &gram);
double a_dot_direction(const Gram &gram, const Tradeoff &t);
double b_dot_direction(const Gram &gram, const Tradeoff &t);

// ---- N objectives --------------------------------------------------------------
//
// Only the upper triangle G(k, l), k <= l < n, is read (log_gram fills both halves
// with the same values). Entries must be finite and 1 <= n <= kMaxObjectives, else
// std::invalid_argument naming the entry or n (callers check finiteness first and
// skip the step, as for the two-objective Gram).
//
// How pi is found:
// - N = 1: {1}.
// - N = 2: min_norm_tradeoff on {G(0,0), G(0,1), G(1,1)}, bit for bit, including its
//   (1/2, 1/2) fallback for (nearly) equal gradients.
// - N >= 3: every vertex e_k is a candidate. For every support S of two or more
//   objectives the equality-constrained KKT system [G_S 1; 1^T 0] [x; mu] = [0; 1]
//   is solved in double (equilibrated so G_S has a unit diagonal, then Gaussian
//   elimination with complete pivoting); a numerically singular system is skipped
//   (the minimiser of a singular face also lies on a smaller face), and a solution
//   with every x_i > 0 is a candidate pi = x / sum(x). Each candidate is then judged
//   only by its KKT residual, evaluated directly from G at that pi (so an
//   ill-conditioned solve cannot pass for a good one):
//     residual = max( max_{pi_k > 0} |(G pi)_k - pi^T G pi|,
//                     max_{pi_k = 0} max(0, pi^T G pi - (G pi)_k) ) / max_{k<=l} |G_kl|.
//   In exact arithmetic it is 0 exactly at the minimisers (G is PSD). Every vertex
//   is always a candidate, so a result always exists.
// - Tie-breaking (deterministic): the candidates whose residual is within
//   kMinNormTieTolerance * m of the smallest residual tie, where m = max_k sum_l
//   |G_kl| pi_l / max|G_kl| at the smallest-residual candidate (the size of the terms
//   of G pi there, so the tolerance is at rounding level also when one objective is
//   1e4 times longer than the others). Among tied candidates the one with the fewest
//   objectives in its support wins, then the lowest support bitmask (objective 0 is
//   bit 0). So with duplicated or collinear objectives the weight goes to the
//   lowest-index copy, and an all-zero Gram gives e_0 for N >= 3 (N = 2 keeps the
//   closed form's (1/2, 1/2)). For a PSD G a residual bounds the objective gap:
//   pi^T G pi - min <= 2 residual * max|G_kl|.
inline constexpr double kMinNormTieTolerance = 1e-12;

struct MinNormSolution {
    std::vector<double> pi;     // n weights, each >= 0, summing to 1 (to rounding)
    double sq_norm = 0;         // pi^T G pi = ||g*||^2, clamped at 0 (rounding can make G slightly indefinite)
    double kkt_residual = 0;    // the residual above at the returned pi (any N; 0 for N = 1)
    int support_size = 0;       // number of pi_k > 0
    bool interior = false;      // every pi_k > 0; N = 2: the closed form's `interior` (false for its fallback)
    bool degenerate = false;    // N = 2: the closed form's fallback; N >= 3: more than one support's
                                // candidate tied and the tie-break chose (non-unique minimiser, or
                                // weights at rounding level dropped with a smaller support)
};
MinNormSolution min_norm_solve(const GramMatrix &g);
// min_norm_solve(g).pi.
std::vector<double> min_norm_weights(const GramMatrix &g);

// cos(a_k, a_l) = G_kl / sqrt(G_kk G_ll); NaN when a norm is 0 (G_kk <= 0 or G_ll <= 0).
// With G_kk, G_ll >= 0 it equals gram_cosine(Gram{G_kk, G_kl, G_ll}) bit for bit.
double gram_cosine(const GramMatrix &g, int k, int l);

struct GramDiagnostics {
    std::vector<double> cosines;        // n * n, row-major: cosines[k * n + l] = gram_cosine(g, k, l)
    double min_cosine = 0;              // the smallest over pairs k < l whose cosine is defined;
                                        // NaN when none is (n = 1, zero gradients)
    std::vector<double> dot_direction;  // (G pi)_k = <a_k, g*>, g* = sum_l pi_l a_l
    std::vector<double> norms;          // ||a_k|| = sqrt(G_kk) (0 when G_kk <= 0 from rounding)
};
// pi must have n entries (std::invalid_argument otherwise); same n and finiteness
// checks as min_norm_solve.
GramDiagnostics gram_diagnostics(const GramMatrix &g, const std::vector<double> &pi);

}  // namespace dtokd
