// Halide back end of the kernel API: wraps tensors (no copies) and calls the
// AOT-generated multi-target kernels, each through the schedule variant selected
// now (kernel_selection.h; the default schedule unless tuned). Optimizer kernels
// run in place: the output buffers alias theta and the state (safe, see
// generators/combined_gradient.h).
#include <ATen/ATen.h>

#include "halide_bridge.h"
#include "kernel_backends.h"
#include "kernel_variants.h"

namespace dtokd::detail::halide_backend {

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    check_cpu("log_gram", "a", a);
    check_cpu("log_gram", "b", b);
    auto ba = flat_buffer(a), bb = flat_buffer(b);
    Halide::Runtime::Buffer<double> out(3);
    check_halide_status(selected_kernels().log_gram(ba, bb, float(loss_distill), float(loss_task), float(eps), out),
                        "log_gram");
    return {out(0), out(1), out(2)};
}

// Interim: the two-gradient kernels serve N = 2 (N-gradient kernels replace this).
bool supports_gram(int n, KernelBackend backend) { return backend == KernelBackend::halide && n == 2; }
bool supports_update(int n) { return n == 1 || n == 2; }

GramMatrix gram(const std::vector<const at::Tensor *> &grads) {
    const Gram g = log_gram(*grads[0], *grads[1], 1.0, 1.0, 1e-30);
    GramMatrix out;
    out.n = 2;
    out(0, 0) = g.g11;
    out(0, 1) = out(1, 0) = g.g12;
    out(1, 1) = g.g22;
    return out;
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill) {
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
    check_cpu("sgd_update", "theta", theta);
    auto p = flat_buffer(theta), mb = flat_buffer(buf), ga = flat_buffer(*d.grads[0]);
    int status;
    if (d.count == 2) {
        auto gb = flat_buffer(*d.grads[1]);
        status = selected_kernels().sgd_update2(ga, gb, float(d.coeffs[0]), float(d.coeffs[1]), p, mb, s.lr, s.weight_decay,
                                   s.momentum, s.dampening, s.nesterov, s.first_step, p, mb);
    } else {
        status = selected_kernels().sgd_update1(ga, float(d.coeffs[0]), p, mb, s.lr, s.weight_decay, s.momentum, s.dampening,
                                   s.nesterov, s.first_step, p, mb);
    }
    check_halide_status(status, "sgd_update");
}

void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s) {
    check_cpu("adamw_update", "theta", theta);
    auto p = flat_buffer(theta), bm = flat_buffer(m), bv = flat_buffer(v), ga = flat_buffer(*d.grads[0]);
    int status;
    if (d.count == 2) {
        auto gb = flat_buffer(*d.grads[1]);
        status = selected_kernels().adamw_update2(ga, gb, float(d.coeffs[0]), float(d.coeffs[1]), p, bm, bv, s.decay, s.beta1,
                                     s.beta2, s.eps, s.step_size, s.sqrt_bias2, p, bm, bv);
    } else {
        status = selected_kernels().adamw_update1(ga, float(d.coeffs[0]), p, bm, bv, s.decay, s.beta1, s.beta2, s.eps,
                                     s.step_size, s.sqrt_bias2, p, bm, bv);
    }
    check_halide_status(status, "adamw_update");
}

}  // namespace dtokd::detail::halide_backend
