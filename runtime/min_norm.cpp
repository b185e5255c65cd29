// See min_norm.h. The N-objective solve is plain double arithmetic on at most 8 x 8
// matrices (no LibTorch, no allocation beyond the result vectors' few doubles).
#include "min_norm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace dtokd {

Tradeoff min_norm_tradeoff(const Gram &g) {
    Tradeoff t;
    const double denom = g.g11 + g.g22 - 2 * g.g12;
    if (!(denom > 1e-12 * (g.g11 + g.g22))) {
        t.degenerate = true;
        return t;  // (1/2, 1/2)
    }
    const double raw = (g.g22 - g.g12) / denom;
    t.interior = raw > 0 && raw < 1;
    t.pi1 = std::clamp(raw, 0.0, 1.0);
    t.pi2 = 1 - t.pi1;
    return t;
}

double gram_cosine(const Gram &g) {
    const double n = std::sqrt(g.g11 * g.g22);
    return n > 0 ? g.g12 / n : std::numeric_limits<double>::quiet_NaN();
}

double a_dot_direction(const Gram &g, const Tradeoff &t) { return t.pi1 * g.g11 + t.pi2 * g.g12; }
double b_dot_direction(const Gram &g, const Tradeoff &t) { return t.pi1 * g.g12 + t.pi2 * g.g22; }

namespace {

constexpr int kMax = kMaxObjectives;
using Square = std::array<std::array<double, kMax>, kMax>;
using Weights = std::array<double, kMax>;

void check_gram(const char *fn, const GramMatrix &g) {
    if (g.n < 1 || g.n > kMax)
        throw std::invalid_argument(std::string(fn) + ": GramMatrix n is " + std::to_string(g.n) + "; expected 1.." +
                                    std::to_string(kMax));
    for (int k = 0; k < g.n; k++)
        for (int l = k; l < g.n; l++)
            if (!std::isfinite(g(k, l)))
                throw std::invalid_argument(std::string(fn) + ": Gram entry (" + std::to_string(k) + ", " +
                                            std::to_string(l) + ") is " + std::to_string(g(k, l)) +
                                            "; expected a finite value");
}

// The symmetric matrix from the upper triangle, divided by its largest |entry| (1 for
// an all-zero Gram) so the solve and the residual work at scale 1 whatever the losses.
Square scaled_symmetric(const GramMatrix &g) {
    double scale = 0;
    for (int k = 0; k < g.n; k++)
        for (int l = k; l < g.n; l++) scale = std::max(scale, std::abs(g(k, l)));
    if (scale == 0) scale = 1;
    Square s{};
    for (int k = 0; k < g.n; k++)
        for (int l = k; l < g.n; l++) s[size_t(k)][size_t(l)] = s[size_t(l)][size_t(k)] = g(k, l) / scale;
    return s;
}

double quadratic_form(const GramMatrix &g, const Weights &pi) {
    double sq = 0;
    for (int k = 0; k < g.n; k++)
        for (int l = 0; l < g.n; l++) sq += pi[size_t(k)] * pi[size_t(l)] * (k <= l ? g(k, l) : g(l, k));
    return sq;
}

// The KKT residual of min_norm.h at pi, on the scaled Gram. `magnitude` (optional)
// receives max_k sum_l |G_kl| pi_l, the size of the terms in (G pi)_k: the rounding
// in the residual is a small multiple of 1e-16 of it.
double kkt_residual(const Square &s, int n, const Weights &pi, double *magnitude = nullptr) {
    Weights r{};
    double v = 0, mag = 0;
    for (int k = 0; k < n; k++) {
        double abs_sum = 0;
        for (int l = 0; l < n; l++) {
            r[size_t(k)] += s[size_t(k)][size_t(l)] * pi[size_t(l)];
            abs_sum += std::abs(s[size_t(k)][size_t(l)]) * pi[size_t(l)];
        }
        v += pi[size_t(k)] * r[size_t(k)];
        mag = std::max(mag, abs_sum);
    }
    double res = 0;
    for (int k = 0; k < n; k++) {
        const double d = r[size_t(k)] - v;
        res = std::max(res, pi[size_t(k)] > 0 ? std::abs(d) : std::max(0.0, -d));
    }
    if (magnitude) *magnitude = mag;
    return res;
}

int support_size(unsigned mask) {
    int count = 0;
    for (; mask; mask &= mask - 1) count++;
    return count;
}

// Solves [G_S 1; 1^T 0] [x; mu] = [0; 1] for the objectives in `mask` (two or more;
// a vertex needs no solve). The system is equilibrated first, so that an objective
// 1e4 times longer than another does not bury the other's digits: x = D y with
// D = diag(1 / sqrt(max(|G_ii|, 1e-16))) on the scaled Gram (the floor covers zero
// gradients and rounding below zero), giving
//   [D G_S D, b d; b d^T, 0] [y; mu / b] = [0; b],   d = D 1, b = 1 / max d,
// whose Gram block has a unit diagonal (a cosine matrix) and whose border is at most 1.
// Gaussian elimination with complete pivoting; false when a pivot is below 1e-14 of
// the system's largest entry (the face is numerically singular) or when some x_i <= 0
// (the face's own minimiser is not inside it).
bool solve_face(const Square &s, int n, unsigned mask, Weights &pi) {
    std::array<int, kMax> idx{};
    int m = 0;
    for (int k = 0; k < n; k++)
        if (mask & (1u << k)) idx[size_t(m++)] = k;
    std::array<double, kMax> dscale{};
    double dmax = 0;
    for (int i = 0; i < m; i++) {
        dscale[size_t(i)] = 1 / std::sqrt(std::max(std::abs(s[size_t(idx[i])][size_t(idx[i])]), 1e-16));
        dmax = std::max(dmax, dscale[size_t(i)]);
    }
    const double border = 1 / dmax;

    constexpr int kDim = kMax + 1;
    const int d = m + 1;
    std::array<std::array<double, kDim + 1>, kDim> a{};  // augmented [M | rhs]
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++)
            a[size_t(i)][size_t(j)] = dscale[size_t(i)] * s[size_t(idx[i])][size_t(idx[j])] * dscale[size_t(j)];
        a[size_t(i)][size_t(m)] = a[size_t(m)][size_t(i)] = border * dscale[size_t(i)];
    }
    a[size_t(m)][size_t(d)] = border;
    double largest = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) largest = std::max(largest, std::abs(a[size_t(i)][size_t(j)]));
    std::array<int, kDim> col{};  // col[j]: the unknown held in column j
    for (int j = 0; j < d; j++) col[size_t(j)] = j;

    for (int p = 0; p < d; p++) {
        int pr = p, pc = p;
        for (int i = p; i < d; i++)
            for (int j = p; j < d; j++)
                if (std::abs(a[size_t(i)][size_t(j)]) > std::abs(a[size_t(pr)][size_t(pc)])) pr = i, pc = j;
        if (!(std::abs(a[size_t(pr)][size_t(pc)]) > 1e-14 * largest)) return false;
        std::swap(a[size_t(p)], a[size_t(pr)]);
        if (pc != p) {
            for (int i = 0; i < d; i++) std::swap(a[size_t(i)][size_t(p)], a[size_t(i)][size_t(pc)]);
            std::swap(col[size_t(p)], col[size_t(pc)]);
        }
        for (int i = p + 1; i < d; i++) {
            const double f = a[size_t(i)][size_t(p)] / a[size_t(p)][size_t(p)];
            if (f == 0) continue;
            for (int j = p; j <= d; j++) a[size_t(i)][size_t(j)] -= f * a[size_t(p)][size_t(j)];
        }
    }
    std::array<double, kDim> y{};
    for (int i = d - 1; i >= 0; i--) {
        double acc = a[size_t(i)][size_t(d)];
        for (int j = i + 1; j < d; j++) acc -= a[size_t(i)][size_t(j)] * y[size_t(j)];
        y[size_t(i)] = acc / a[size_t(i)][size_t(i)];
    }
    std::array<double, kDim> x{};
    for (int j = 0; j < d; j++) x[size_t(col[size_t(j)])] = y[size_t(j)];
    for (int i = 0; i < m; i++) x[size_t(i)] *= dscale[size_t(i)];

    double sum = 0;
    for (int i = 0; i < m; i++) {
        if (!(x[size_t(i)] > 0) || !std::isfinite(x[size_t(i)])) return false;  // not on this face's interior
        sum += x[size_t(i)];
    }
    if (!std::isfinite(sum)) return false;
    pi.fill(0);
    for (int i = 0; i < m; i++) pi[size_t(idx[i])] = x[size_t(i)] / sum;
    return true;
}

struct Candidate {
    unsigned mask = 0;
    Weights pi{};
    double residual = 0, magnitude = 0;
};

// N >= 3: every face, judged by the residual at its candidate, tie-broken as documented.
Weights solve_by_supports(const GramMatrix &g, bool &tied) {
    const int n = g.n;
    const Square s = scaled_symmetric(g);
    std::array<Candidate, (1u << kMax) - 1> cands;
    int count = 0;
    int best = -1;
    for (unsigned mask = 1; mask < (1u << n); mask++) {
        Candidate c;
        c.mask = mask;
        if (support_size(mask) == 1) {
            for (int k = 0; k < n; k++) c.pi[size_t(k)] = mask == (1u << k) ? 1.0 : 0.0;
        } else if (!solve_face(s, n, mask, c.pi)) {
            continue;
        }
        c.residual = kkt_residual(s, n, c.pi, &c.magnitude);
        if (best < 0 || c.residual < cands[size_t(best)].residual) best = count;
        cands[size_t(count++)] = c;
    }
    // Every vertex is a candidate, so best >= 0. The tolerance follows the best
    // candidate's own magnitude, not the Gram's largest entry: with one objective 1e4
    // times longer, the others' equal-contribution conditions live 1e8 below it.
    const double tolerance =
        cands[size_t(best)].residual + kMinNormTieTolerance * cands[size_t(best)].magnitude;
    const Candidate *chosen = nullptr;
    int within = 0;
    for (int i = 0; i < count; i++) {
        const Candidate &c = cands[size_t(i)];
        if (!(c.residual <= tolerance)) continue;
        within++;
        // Candidates come in mask order, so only a smaller support displaces the choice.
        if (!chosen || support_size(c.mask) < support_size(chosen->mask)) chosen = &c;
    }
    tied = within > 1;
    return chosen->pi;
}

}  // namespace

MinNormSolution min_norm_solve(const GramMatrix &g) {
    check_gram("min_norm_solve", g);
    const int n = g.n;
    Weights pi{};
    MinNormSolution out;
    bool closed_form_interior = false;
    if (n == 1) {
        pi[0] = 1;
    } else if (n == 2) {
        const Tradeoff t = min_norm_tradeoff(Gram{g(0, 0), g(0, 1), g(1, 1)});
        pi[0] = t.pi1;
        pi[1] = t.pi2;
        out.degenerate = t.degenerate;
        closed_form_interior = t.interior;
    } else {
        pi = solve_by_supports(g, out.degenerate);
    }
    out.pi.assign(pi.begin(), pi.begin() + n);
    out.sq_norm = std::max(0.0, quadratic_form(g, pi));
    out.kkt_residual = n == 1 ? 0.0 : kkt_residual(scaled_symmetric(g), n, pi);
    for (int k = 0; k < n; k++) out.support_size += pi[size_t(k)] > 0;
    out.interior = n == 2 ? closed_form_interior : out.support_size == n;
    return out;
}

std::vector<double> min_norm_weights(const GramMatrix &g) { return min_norm_solve(g).pi; }

double gram_cosine(const GramMatrix &g, int k, int l) {
    if (k > l) std::swap(k, l);
    const double gkk = g(k, k), gll = g(l, l);
    if (!(gkk > 0 && gll > 0)) return std::numeric_limits<double>::quiet_NaN();
    const double n = std::sqrt(gkk * gll);  // as gram_cosine(Gram): the same bits for n = 2
    return n > 0 ? g(k, l) / n : std::numeric_limits<double>::quiet_NaN();
}

GramDiagnostics gram_diagnostics(const GramMatrix &g, const std::vector<double> &pi) {
    check_gram("gram_diagnostics", g);
    const int n = g.n;
    if (pi.size() != size_t(n))
        throw std::invalid_argument("gram_diagnostics: " + std::to_string(pi.size()) + " weights for " +
                                    std::to_string(n) + " objectives; expected one per objective");
    GramDiagnostics d;
    d.cosines.assign(size_t(n * n), 0.0);
    d.min_cosine = std::numeric_limits<double>::quiet_NaN();
    for (int k = 0; k < n; k++)
        for (int l = 0; l < n; l++) {
            const double c = gram_cosine(g, k, l);
            d.cosines[size_t(k * n + l)] = c;
            if (k < l && !std::isnan(c) && (std::isnan(d.min_cosine) || c < d.min_cosine)) d.min_cosine = c;
        }
    d.dot_direction.assign(size_t(n), 0.0);
    d.norms.assign(size_t(n), 0.0);
    for (int k = 0; k < n; k++) {
        for (int l = 0; l < n; l++) d.dot_direction[size_t(k)] += (k <= l ? g(k, l) : g(l, k)) * pi[size_t(l)];
        d.norms[size_t(k)] = std::sqrt(std::max(0.0, g(k, k)));
    }
    return d;
}

}  // namespace dtokd
