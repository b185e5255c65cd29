// Plain-LibTorch back end of the kernel API: the reference the Halide kernels are
// tested against and the fallback (`--kernels=torch`, also for non-CPU tensors).
#include <ATen/ATen.h>

#include <algorithm>

#include "host_readback.h"
#include "kernel_backends.h"

namespace dtokd::detail::torch_backend {

// Both ways below: float dot products over 16K-element chunks, summed in double. That is the
// Halide kernel's accuracy contract without a float64 copy: float accumulation over
// 2^20-element chunks lost 1.7e-5 relative on mixed magnitudes (dtokd_tests
// --gtest_filter='*LogGramData.MixedMagnitudes/torch*'); 2^14 keeps it < 1e-6.

// On a GPU: one batched matmul per pair (no copy), summed on the device, so nothing waits
// until the caller reads the result back once. Not on the CPU: 5.65 ms against the
// per-chunk dots' 0.36 ms for two 1M-float gradients (2 cores, 2026-12-06:
// bench/bm_kernels --benchmark_filter=BM_Gram_TorchBackend).
at::Tensor raw_gram_batched(const std::vector<at::Tensor> &flat) {
    const int n = int(flat.size());
    const int64_t numel = flat.front().numel(), chunk = int64_t(1) << 14;
    const int64_t chunks = numel / chunk, head = chunks * chunk;
    std::vector<at::Tensor> entries;
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++) {
            const at::Tensor &a = flat[size_t(k)], &b = flat[size_t(l)];
            at::Tensor total = at::zeros({}, a.options().dtype(at::kDouble));
            if (chunks > 0)
                total += at::bmm(a.narrow(0, 0, head).view({chunks, 1, chunk}),
                                 b.narrow(0, 0, head).view({chunks, chunk, 1}))
                             .to(at::kDouble)
                             .sum();
            if (head < numel) total += a.narrow(0, head, numel - head).dot(b.narrow(0, head, numel - head)).to(at::kDouble);
            entries.push_back(total);
        }
    return at::stack(entries);
}

namespace {
// On the CPU: BLAS dots per chunk, added up on the host (reading a CPU scalar costs nothing).
std::vector<double> raw_gram_chunk_dots(const std::vector<at::Tensor> &flat) {
    const int n = int(flat.size());
    const int64_t numel = flat.front().numel(), chunk = int64_t(1) << 14;
    std::vector<double> out(size_t(n * (n + 1) / 2), 0.0);
    for (int64_t s = 0; s < numel; s += chunk) {
        const int64_t len = std::min(chunk, numel - s);
        std::vector<at::Tensor> c;
        for (const at::Tensor &f : flat) c.push_back(f.narrow(0, s, len));
        size_t i = 0;
        for (int k = 0; k < n; k++)
            for (int l = k; l < n; l++) out[i++] += c[size_t(k)].dot(c[size_t(l)]).item<double>();
    }
    return out;
}

// <g_k, g_l> for k <= l, row by row.
std::vector<double> raw_gram(const std::vector<at::Tensor> &flat) {
    return flat.front().is_cpu() ? raw_gram_chunk_dots(flat) : read_to_host(raw_gram_batched(flat));
}
}  // namespace

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    const std::vector<double> raw = raw_gram({a.reshape({-1}), b.reshape({-1})});
    const double ld = std::max(loss_distill, eps), lt = std::max(loss_task, eps);
    return {raw[0] / (ld * ld), raw[1] / (ld * lt), raw[2] / (lt * lt)};
}

GramMatrix gram(const std::vector<const at::Tensor *> &grads) {
    std::vector<at::Tensor> flat;
    for (const at::Tensor *g : grads) flat.push_back(g->reshape({-1}));
    const std::vector<double> raw = raw_gram(flat);
    const int n = int(grads.size());
    GramMatrix out;
    out.n = n;
    size_t i = 0;
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++) out(k, l) = out(l, k) = raw[i++];
    return out;
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill) {
    const double t = options.temperature, s = options.label_smoothing;
    const int64_t batch = student.size(0), classes = student.size(1);
    const at::Tensor log_soft = at::log_softmax(student, 1);
    const at::Tensor log_q = at::log_softmax(student / t, 1);
    const at::Tensor log_p = at::log_softmax(teacher / t, 1);
    // Clamped as the Halide kernel does: labels on a GPU are not range-checked (kernels.cpp).
    const at::Tensor y = labels.to(at::kLong).clamp(0, classes - 1).unsqueeze(1);
    const at::Tensor nll = -log_soft.gather(1, y).squeeze(1);
    const at::Tensor row_task = (1 - s) * nll - s * log_soft.mean(1);
    const at::Tensor row_kl = (log_p.exp() * (log_p - log_q)).sum(1);
    // Both means in one read from the device.
    const std::vector<double> means =
        read_to_host(at::stack({row_task.to(at::kDouble).mean(), row_kl.to(at::kDouble).mean()}));
    KdLosses out;
    out.task = means[0];
    out.distill = t * t * means[1];
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
