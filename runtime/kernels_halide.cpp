// Halide back end of the kernel API: wraps tensors (no copies) and calls the
// AOT-generated multi-target kernels, each through the schedule variant selected
// now (kernel_selection.h; the default schedule unless tuned). Optimizer kernels
// run in place: the output buffers alias theta and the state (safe, see
// generators/combined_gradient.h).
// N-gradient kernels (N = 1..kMaxObjectives): called through halide_calls.h. CUDA tensors
// go to the kernels' CUDA variants (halide_cuda_kernels.cpp, in a CUDA build).
#include <ATen/ATen.h>

#include <array>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "dtokd_adamw_update3.h"
#include "dtokd_adamw_update4.h"
#include "dtokd_adamw_update5.h"
#include "dtokd_adamw_update6.h"
#include "dtokd_adamw_update7.h"
#include "dtokd_adamw_update8.h"
#include "dtokd_log_gram1.h"
#include "dtokd_log_gram3.h"
#include "dtokd_log_gram4.h"
#include "dtokd_log_gram5.h"
#include "dtokd_log_gram6.h"
#include "dtokd_log_gram7.h"
#include "dtokd_log_gram8.h"
#include "dtokd_sgd_update3.h"
#include "dtokd_sgd_update4.h"
#include "dtokd_sgd_update5.h"
#include "dtokd_sgd_update6.h"
#include "dtokd_sgd_update7.h"
#include "dtokd_sgd_update8.h"
#include "halide_bridge.h"
#include "halide_calls.h"
#include "kernel_backends.h"
#include "kernel_variants.h"

namespace dtokd::detail::halide_backend {

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    if (a.is_cuda()) return halide_cuda_backend::log_gram(a, b, loss_distill, loss_task, eps);
    check_cpu("log_gram", "a", a);
    check_cpu("log_gram", "b", b);
    auto ba = flat_buffer(a), bb = flat_buffer(b);
    Halide::Runtime::Buffer<double> out(3);
    check_halide_status(selected_kernels().log_gram(ba, bb, float(loss_distill), float(loss_task), float(eps), out),
                        "log_gram");
    return {out(0), out(1), out(2)};
}

namespace {

// The generated kernels by N (element N - 1). dtokd_log_gram is N = 2; the entries that
// have schedule variants (Gram N = 2, updates N = 1, 2) are replaced by the selected one.
const auto kLogGrams = std::make_tuple(&dtokd_log_gram1, &dtokd_log_gram, &dtokd_log_gram3, &dtokd_log_gram4,
                                       &dtokd_log_gram5, &dtokd_log_gram6, &dtokd_log_gram7, &dtokd_log_gram8);
const auto kSgdUpdates = std::make_tuple(&dtokd_sgd_update1, &dtokd_sgd_update2, &dtokd_sgd_update3,
                                         &dtokd_sgd_update4, &dtokd_sgd_update5, &dtokd_sgd_update6,
                                         &dtokd_sgd_update7, &dtokd_sgd_update8);
const auto kAdamwUpdates = std::make_tuple(&dtokd_adamw_update1, &dtokd_adamw_update2, &dtokd_adamw_update3,
                                           &dtokd_adamw_update4, &dtokd_adamw_update5, &dtokd_adamw_update6,
                                           &dtokd_adamw_update7, &dtokd_adamw_update8);
static_assert(std::tuple_size_v<decltype(kLogGrams)> == kMaxObjectives &&
              std::tuple_size_v<decltype(kSgdUpdates)> == kMaxObjectives &&
              std::tuple_size_v<decltype(kAdamwUpdates)> == kMaxObjectives);

template <int N>
auto log_gram_fn() {
    auto fn = std::get<N - 1>(kLogGrams);
    if constexpr (N == 2) fn = selected_kernels().log_gram;
    return fn;
}
template <int N>
auto sgd_update_fn() {
    auto fn = std::get<N - 1>(kSgdUpdates);
    if constexpr (N == 1) fn = selected_kernels().sgd_update1;
    if constexpr (N == 2) fn = selected_kernels().sgd_update2;
    return fn;
}
template <int N>
auto adamw_update_fn() {
    auto fn = std::get<N - 1>(kAdamwUpdates);
    if constexpr (N == 1) fn = selected_kernels().adamw_update1;
    if constexpr (N == 2) fn = selected_kernels().adamw_update2;
    return fn;
}

GradientBuffers gradient_buffers(const char *kernel, const at::Tensor *const *grads, int n) {
    GradientBuffers out;
    for (int k = 0; k < n; k++) {
        check_cpu(kernel, ("gradient " + std::to_string(k)).c_str(), *grads[k]);
        out[size_t(k)] = flat_buffer(*grads[k]);
    }
    return out;
}

}  // namespace

bool supports_gram(int n, KernelBackend backend) {
    return backend == KernelBackend::halide && n >= 1 && n <= kMaxObjectives;
}
bool supports_update(int n) { return n >= 1 && n <= kMaxObjectives; }

GramMatrix gram(const std::vector<const at::Tensor *> &grads) {
    if (grads.front()->is_cuda()) return halide_cuda_backend::gram(grads);
    const int n = int(grads.size());
    GradientBuffers g = gradient_buffers("log_gram", grads.data(), n);
    // Losses 1 and eps 1: the kernel's 1/(L_k L_l) is exactly 1, so it returns the raw dot
    // products; kernels.cpp divides by the losses in double.
    std::array<float, kMaxObjectives> ones;
    ones.fill(1.f);
    Halide::Runtime::Buffer<double> out(n * (n + 1) / 2);
    const int status = with_count(n, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(log_gram_fn<N>(), std::make_index_sequence<N>{}, g, ones, 1.f, out.raw_buffer());
    });
    check_halide_status(status, n == 2 ? "log_gram" : kernel_name("log_gram", n).c_str());
    GramMatrix m;
    m.n = n;
    int t = 0;  // the kernel's order: row by row over the upper triangle
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++, t++) m(k, l) = m(l, k) = out(t);
    return m;
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill) {
    if (student.is_cuda()) return halide_cuda_backend::kd_loss(student, teacher, labels, options, grad_task, grad_distill);
    for (const at::Tensor *t : std::initializer_list<const at::Tensor *>{&student, &teacher, &labels, &grad_task, &grad_distill})
        check_cpu("kd_loss", "an argument", *t);
    const at::Tensor labels32 = labels.scalar_type() == at::kInt ? labels.contiguous() : labels.to(at::kInt);
    auto bs = matrix_buffer(student), bt = matrix_buffer(teacher);
    auto gt = matrix_buffer(grad_task), gd = matrix_buffer(grad_distill);
    auto by = int_buffer(labels32);
    Halide::Runtime::Buffer<double> losses(2);
    check_halide_status(selected_kernels().kd_loss(bs, bt, by, float(options.temperature), float(options.label_smoothing),
                                      losses, gt, gd),
                        "kd_loss");
    return {losses(0), losses(1)};
}

void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s) {
    if (theta.is_cuda()) return halide_cuda_backend::sgd_update(theta, buf, d, s);
    check_cpu("sgd_update", "theta", theta);
    auto p = flat_buffer(theta), mb = flat_buffer(buf);
    GradientBuffers g = gradient_buffers("sgd_update", d.grads.data(), d.count);
    const int status = with_count(d.count, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(sgd_update_fn<N>(), std::make_index_sequence<N>{}, g, coefficients(d), p.raw_buffer(),
                      mb.raw_buffer(), s.lr, s.weight_decay, s.momentum, s.dampening, s.nesterov, s.first_step,
                      p.raw_buffer(), mb.raw_buffer());
    });
    check_halide_status(status, kernel_name("sgd_update", d.count).c_str());
}

void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s) {
    if (theta.is_cuda()) return halide_cuda_backend::adamw_update(theta, m, v, d, s);
    check_cpu("adamw_update", "theta", theta);
    auto p = flat_buffer(theta), bm = flat_buffer(m), bv = flat_buffer(v);
    GradientBuffers g = gradient_buffers("adamw_update", d.grads.data(), d.count);
    const int status = with_count(d.count, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(adamw_update_fn<N>(), std::make_index_sequence<N>{}, g, coefficients(d), p.raw_buffer(),
                      bm.raw_buffer(), bv.raw_buffer(), s.decay, s.beta1, s.beta2, s.eps, s.step_size, s.sqrt_bias2,
                      p.raw_buffer(), bm.raw_buffer(), bv.raw_buffer());
    });
    check_halide_status(status, kernel_name("adamw_update", d.count).c_str());
}

}  // namespace dtokd::detail::halide_backend
