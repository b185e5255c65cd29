// Internal: calling the generated N-gradient kernels (N = 1..kMaxObjectives). Their C
// signature has one buffer argument per gradient (grads_0 .. grads_{N-1}) and one float
// per coefficient or loss, so each N is its own function type; the call is spelled once,
// over an index_sequence. Shared by the CPU kernels and their CUDA variants.
#pragma once
#include <HalideBuffer.h>

#include <array>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels.h"

namespace dtokd::detail {

// f(std::integral_constant<int, N>{}) for the run-time n in 1..kMaxObjectives.
template <class F, int... I>
int with_count(int n, F &&f, std::integer_sequence<int, I...>) {
    int status = 0;
    const bool found = ((n == I + 1 && ((status = f(std::integral_constant<int, I + 1>{})), true)) || ...);
    if (!found)
        throw std::logic_error("halide back end: " + std::to_string(n) + " gradients; kernels exist for 1.." +
                               std::to_string(kMaxObjectives));
    return status;
}
template <class F>
int with_count(int n, F &&f) {
    return with_count(n, std::forward<F>(f), std::make_integer_sequence<int, kMaxObjectives>{});
}

using GradientBuffers = std::array<Halide::Runtime::Buffer<float>, kMaxObjectives>;

// fn(grads_0 .. grads_{N-1}, scalars_0 .. scalars_{N-1}, rest...): the generated N-gradient call.
template <class Fn, size_t... K, class... Rest>
int call_n(Fn fn, std::index_sequence<K...>, GradientBuffers &grads, const std::array<float, kMaxObjectives> &scalars,
           Rest &&...rest) {
    return fn(grads[K]..., scalars[K]..., std::forward<Rest>(rest)...);
}

// The direction's coefficients as the kernels' float arguments.
inline std::array<float, kMaxObjectives> coefficients(const Direction &d) {
    std::array<float, kMaxObjectives> c{};
    for (int k = 0; k < d.count; k++) c[size_t(k)] = float(d.coeffs[size_t(k)]);
    return c;
}

// The name in a Halide error: the kernel as the tuning file names it, e.g. sgd_update3.
inline std::string kernel_name(const char *family, int n) { return family + std::to_string(n); }

}  // namespace dtokd::detail
