// The halide back end on CUDA tensors (kernel_backends.h, halide_cuda_backend): the CUDA
// variants of the generated kernels, on LibTorch's context and current stream through
// halide_cuda_bridge. Same C signatures as the CPU kernels (same generators and PARAMS);
// schedule variants and tuning are CPU-only. The Gram and the KD losses are written to
// float64 device tensors and read back once (a copy on the same stream, so it waits for
// the kernel and nothing else); the updates run in place with no wait.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>

#include <tuple>

#include "cuda_device.h"
#include "dtokd_adamw_update1_cuda.h"
#include "dtokd_adamw_update2_cuda.h"
#include "dtokd_adamw_update3_cuda.h"
#include "dtokd_adamw_update4_cuda.h"
#include "dtokd_adamw_update5_cuda.h"
#include "dtokd_adamw_update6_cuda.h"
#include "dtokd_adamw_update7_cuda.h"
#include "dtokd_adamw_update8_cuda.h"
#include "dtokd_kd_loss_cuda.h"
#include "dtokd_log_gram1_cuda.h"
#include "dtokd_log_gram3_cuda.h"
#include "dtokd_log_gram4_cuda.h"
#include "dtokd_log_gram5_cuda.h"
#include "dtokd_log_gram6_cuda.h"
#include "dtokd_log_gram7_cuda.h"
#include "dtokd_log_gram8_cuda.h"
#include "dtokd_log_gram_cuda.h"
#include "dtokd_sgd_update1_cuda.h"
#include "dtokd_sgd_update2_cuda.h"
#include "dtokd_sgd_update3_cuda.h"
#include "dtokd_sgd_update4_cuda.h"
#include "dtokd_sgd_update5_cuda.h"
#include "dtokd_sgd_update6_cuda.h"
#include "dtokd_sgd_update7_cuda.h"
#include "dtokd_sgd_update8_cuda.h"
#include "halide_bridge.h"
#include "halide_calls.h"
#include "halide_cuda_bridge.h"
#include "host_readback.h"
#include "kernel_backends.h"

namespace dtokd {

bool halide_cuda_kernels_linked() { return true; }

namespace detail::halide_cuda_backend {

namespace {

// By N (element N - 1); dtokd_log_gram_cuda is N = 2.
const auto kLogGrams = std::make_tuple(&dtokd_log_gram1_cuda, &dtokd_log_gram_cuda, &dtokd_log_gram3_cuda,
                                       &dtokd_log_gram4_cuda, &dtokd_log_gram5_cuda, &dtokd_log_gram6_cuda,
                                       &dtokd_log_gram7_cuda, &dtokd_log_gram8_cuda);
const auto kSgdUpdates = std::make_tuple(&dtokd_sgd_update1_cuda, &dtokd_sgd_update2_cuda, &dtokd_sgd_update3_cuda,
                                         &dtokd_sgd_update4_cuda, &dtokd_sgd_update5_cuda, &dtokd_sgd_update6_cuda,
                                         &dtokd_sgd_update7_cuda, &dtokd_sgd_update8_cuda);
const auto kAdamwUpdates = std::make_tuple(&dtokd_adamw_update1_cuda, &dtokd_adamw_update2_cuda,
                                           &dtokd_adamw_update3_cuda, &dtokd_adamw_update4_cuda,
                                           &dtokd_adamw_update5_cuda, &dtokd_adamw_update6_cuda,
                                           &dtokd_adamw_update7_cuda, &dtokd_adamw_update8_cuda);
static_assert(std::tuple_size_v<decltype(kLogGrams)> == kMaxObjectives &&
              std::tuple_size_v<decltype(kSgdUpdates)> == kMaxObjectives &&
              std::tuple_size_v<decltype(kAdamwUpdates)> == kMaxObjectives);

GradientBuffers gradient_buffers(const at::Tensor *const *grads, int n) {
    GradientBuffers out;
    for (int k = 0; k < n; k++) out[size_t(k)] = cuda_bridge::device_flat_buffer(*grads[k]);
    return out;
}

}  // namespace

GramMatrix gram(const std::vector<const at::Tensor *> &grads) {
    const c10::cuda::CUDAGuard guard(grads.front()->device());
    const int n = int(grads.size());
    GradientBuffers g = gradient_buffers(grads.data(), n);
    std::array<float, kMaxObjectives> ones;  // losses 1, eps 1: the raw dot products
    ones.fill(1.f);
    const at::Tensor out = at::empty({n * (n + 1) / 2}, grads.front()->options().dtype(at::kDouble));
    auto bo = cuda_bridge::device_double_buffer(out);
    const int status = with_count(n, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(std::get<N - 1>(kLogGrams), std::make_index_sequence<N>{}, g, ones, 1.f, bo.raw_buffer());
    });
    check_halide_status(status, (kernel_name("log_gram", n) + "_cuda").c_str());
    const std::vector<double> raw = read_to_host(out);
    GramMatrix m;
    m.n = n;
    size_t t = 0;  // row by row over the upper triangle
    for (int k = 0; k < n; k++)
        for (int l = k; l < n; l++, t++) m(k, l) = m(l, k) = raw[t];
    return m;
}

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps) {
    const c10::cuda::CUDAGuard guard(a.device());
    auto ba = cuda_bridge::device_flat_buffer(a), bb = cuda_bridge::device_flat_buffer(b);
    const at::Tensor out = at::empty({3}, a.options().dtype(at::kDouble));
    auto bo = cuda_bridge::device_double_buffer(out);
    check_halide_status(dtokd_log_gram_cuda(ba, bb, float(loss_distill), float(loss_task), float(eps), bo),
                        "log_gram_cuda");
    const std::vector<double> v = read_to_host(out);
    return {v[0], v[1], v[2]};
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill) {
    const c10::cuda::CUDAGuard guard(student.device());
    const at::Tensor labels32 = labels.scalar_type() == at::kInt ? labels.contiguous() : labels.to(at::kInt);
    auto bs = cuda_bridge::device_matrix_buffer(student), bt = cuda_bridge::device_matrix_buffer(teacher);
    auto gt = cuda_bridge::device_matrix_buffer(grad_task), gd = cuda_bridge::device_matrix_buffer(grad_distill);
    auto by = cuda_bridge::device_int_buffer(labels32);
    const at::Tensor losses = at::empty({2}, student.options().dtype(at::kDouble));
    auto bl = cuda_bridge::device_double_buffer(losses);
    check_halide_status(dtokd_kd_loss_cuda(bs, bt, by, float(options.temperature), float(options.label_smoothing), bl,
                                           gt, gd),
                        "kd_loss_cuda");
    const std::vector<double> v = read_to_host(losses);
    return {v[0], v[1]};
}

void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s) {
    const c10::cuda::CUDAGuard guard(theta.device());
    auto p = cuda_bridge::device_flat_buffer(theta), mb = cuda_bridge::device_flat_buffer(buf);
    GradientBuffers g = gradient_buffers(d.grads.data(), d.count);
    const int status = with_count(d.count, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(std::get<N - 1>(kSgdUpdates), std::make_index_sequence<N>{}, g, coefficients(d),
                      p.raw_buffer(), mb.raw_buffer(), s.lr, s.weight_decay, s.momentum, s.dampening, s.nesterov,
                      s.first_step, p.raw_buffer(), mb.raw_buffer());
    });
    check_halide_status(status, (kernel_name("sgd_update", d.count) + "_cuda").c_str());
}

void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s) {
    const c10::cuda::CUDAGuard guard(theta.device());
    auto p = cuda_bridge::device_flat_buffer(theta), bm = cuda_bridge::device_flat_buffer(m),
         bv = cuda_bridge::device_flat_buffer(v);
    GradientBuffers g = gradient_buffers(d.grads.data(), d.count);
    const int status = with_count(d.count, [&](auto count) {
        constexpr int N = decltype(count)::value;
        return call_n(std::get<N - 1>(kAdamwUpdates), std::make_index_sequence<N>{}, g, coefficients(d),
                      p.raw_buffer(), bm.raw_buffer(), bv.raw_buffer(), s.decay, s.beta1, s.beta2, s.eps,
                      s.step_size, s.sqrt_bias2, p.raw_buffer(), bm.raw_buffer(), bv.raw_buffer());
    });
    check_halide_status(status, (kernel_name("adamw_update", d.count) + "_cuda").c_str());
}

}  // namespace detail::halide_cuda_backend
}  // namespace dtokd
