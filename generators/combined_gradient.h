// Shared by the fused optimizer generators: the update direction
//   g = sum_k coeffs[k] * grads[k]
// For exact DTO-KD (grads.size=2) the runtime passes coeffs = clip * pi_k / L_k, so
// g = clip * (pi1 a/L_d + pi2 b/L_t) is formed in registers, never stored.
// For a single backward (amortized DTO, KD, CE) grads.size=1 and coeffs = {clip}.
#pragma once
#include "Halide.h"

namespace dtokd_gen {

inline Halide::Expr combined_gradient(const Halide::GeneratorInput<Halide::Buffer<float, 1>[]> &grads,
                                      const Halide::GeneratorInput<float[]> &coeffs,
                                      const Halide::Var &x) {
    Halide::Expr g = coeffs[0] * grads[0](x);
    for (size_t k = 1; k < grads.size(); k++) g = g + coeffs[k] * grads[k](x);
    return g;
}

// Elementwise, in place (outputs alias theta and the optimizer state): each element is
// read before it is written and never read again, so the pass is safe as long as no
// element is computed twice. ShiftInwards tails recompute elements: use GuardWithIf.
inline void schedule_elementwise(Halide::Func out, const Halide::Var &x, bool gpu, int vector_width,
                                 int chunk, int gpu_block) {
    using namespace Halide;
    if (gpu) {
        Var xo, xi;
        out.gpu_tile(x, xo, xi, gpu_block, TailStrategy::GuardWithIf);
    } else {
        // Vectors first, then chunks of whole vectors: the chunk guard is a scalar loop
        // bound and only the last vector is predicated. (Splitting into chunks first made
        // the last chunk run all chunk/vector_width masked iterations: SGD at N=1e4 took
        // ~250 us against a ~2 us roofline; bench/README.md.)
        Var xvo, xv, xo, xi;
        out.split(x, xvo, xv, vector_width, TailStrategy::GuardWithIf)
            .split(xvo, xo, xi, std::max(1, chunk / vector_width), TailStrategy::GuardWithIf)
            .parallel(xo)
            .vectorize(xv);
    }
}

inline void set_gradient_estimates(Halide::GeneratorInput<Halide::Buffer<float, 1>[]> &grads,
                                   Halide::GeneratorInput<float[]> &coeffs) {
    for (size_t k = 0; k < grads.size(); k++) {
        grads[k].set_estimates({{0, 1 << 22}});
        coeffs.set_estimate(k, 1.f);
    }
}

}  // namespace dtokd_gen
