// Plain-LibTorch back end of the kernel API: the reference the Halide kernels are
// tested against and the fallback (`--kernels=torch`, also for non-CPU tensors).
#include <ATen/ATen.h>

#include <algorithm>

#include "kernel_backends.h"

namespace dtokd::detail::torch_backend {

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    // Float dot products over 16K-element chunks, summed in double: the same
    // accuracy contract as the Halide kernel without a float64 copy of a and b.
    // at::dot accumulates in float (generic-BLAS LibTorch): 2^20-element chunks lost
    // 1.7e-5 relative on mixed magnitudes (dtokd_tests
    // --gtest_filter='*LogGramData.MixedMagnitudes/torch*'); 2^14 keeps it < 1e-6.
    const at::Tensor fa = a.reshape({-1}), fb = b.reshape({-1});
    const int64_t n = fa.numel(), chunk = int64_t(1) << 14;
    double aa = 0, ab = 0, bb = 0;
    for (int64_t s = 0; s < n; s += chunk) {
        const int64_t len = std::min(chunk, n - s);
        const at::Tensor ca = fa.narrow(0, s, len), cb = fb.narrow(0, s, len);
        aa += ca.dot(ca).item<double>();
        ab += ca.dot(cb).item<double>();
        bb += cb.dot(cb).item<double>();
    }
    const double ld = std::max(loss_distill, eps), lt = std::max(loss_task, eps);
    return {aa / (ld * ld), ab / (ld * lt), bb / (lt * lt)};
}

GramMatrix gram(const std::vector<const at::Tensor *> &grads) {
    // As log_gram above: float dots over 2^14-element chunks, totals in double.
    const int n = int(grads.size());
    std::vector<at::Tensor> flat;
    for (const at::Tensor *g : grads) flat.push_back(g->reshape({-1}));
    const int64_t numel = flat.front().numel(), chunk = int64_t(1) << 14;
    GramMatrix out;
    out.n = n;
    for (int64_t s = 0; s < numel; s += chunk) {
        const int64_t len = std::min(chunk, numel - s);
        std::vector<at::Tensor> c;
        for (const at::Tensor &f : flat) c.push_back(f.narrow(0, s, len));
        for (int k = 0; k < n; k++)
            for (int l = k; l < n; l++) out(k, l) += c[size_t(k)].dot(c[size_t(l)]).item<double>();
    }
    for (int k = 0; k < n; k++)
        for (int l = 0; l < k; l++) out(k, l) = out(l, k);
    return out;
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill) {
    const double t = options.temperature, s = options.label_smoothing;
    const int64_t batch = student.size(0), classes = student.size(1);
    const at::Tensor log_soft = at::log_softmax(student, 1);
    const at::Tensor log_q = at::log_softmax(student / t, 1);
    const at::Tensor log_p = at::log_softmax(teacher / t, 1);
    const at::Tensor y = labels.to(at::kLong).unsqueeze(1);
    const at::Tensor nll = -log_soft.gather(1, y).squeeze(1);
    const at::Tensor row_task = (1 - s) * nll - s * log_soft.mean(1);
    const at::Tensor row_kl = (log_p.exp() * (log_p - log_q)).sum(1);
    KdLosses out;
    out.task = row_task.to(at::kDouble).mean().item<double>();
    out.distill = t * t * row_kl.to(at::kDouble).mean().item<double>();
    const at::Tensor target = at::full_like(student, s / double(classes)).scatter_add_(
        1, y, at::full({batch, 1}, 1 - s, student.options()));
    grad_task.copy_((log_soft.exp() - target) / double(batch));
    grad_distill.copy_((log_q.exp() - log_p.exp()) * (t / double(batch)));
    return out;
}

namespace {
at::Tensor combined(const Direction &d) {
    at::Tensor g = d.grads[0]->reshape({-1}) * d.coeffs[0];
    for (int k = 1; k < d.count; k++) g.add_(d.grads[size_t(k)]->reshape({-1}), d.coeffs[size_t(k)]);
    return g;
}
}  // namespace

void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s) {
    at::Tensor p = theta.view({-1}), mb = buf.view({-1});
    at::Tensor step = combined(d);
    if (s.weight_decay != 0) step = step.add(p, s.weight_decay);
    if (s.momentum != 0) {
        if (s.first_step)
            mb.copy_(step);
        else
            mb.mul_(s.momentum).add_(step, 1 - s.dampening);
        step = s.nesterov ? step.add(mb, s.momentum) : mb;
    }
    p.add_(step, -s.lr);
}

void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s) {
    at::Tensor p = theta.view({-1}), fm = m.view({-1}), fv = v.view({-1});
    const at::Tensor g = combined(d);
    p.mul_(s.decay);
    fm.mul_(s.beta1).add_(g, 1 - s.beta1);
    fv.mul_(s.beta2).addcmul_(g, g, 1 - s.beta2);
    const at::Tensor denom = (fv.sqrt() / s.sqrt_bias2).add_(s.eps);
    p.addcdiv_(fm, denom, -s.step_size);
}

}  // namespace dtokd::detail::torch_backend
