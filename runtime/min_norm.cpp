// See min_norm.h.
#include "min_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

}  // namespace dtokd
