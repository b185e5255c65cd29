// Theorem 3.1 of DTO-KD (= two-task MGDA, Sener & Koltun 2018): the minimum-norm
// point pi1 a + pi2 b of the segment [a, b], from the Gram g11 = <a,a>,
// g12 = <a,b>, g22 = <b,b>:
//   pi1 = (g22 - g12) / (g11 + g22 - 2 g12), clamped to [0, 1]; pi2 = 1 - pi1.
// When g11 + g22 - 2 g12 <= 1e-12 (g11 + g22) the two are (nearly) equal: (1/2, 1/2).
#pragma once
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

}  // namespace dtokd
