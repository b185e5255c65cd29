// Internal: the two back ends behind kernels.h. Inputs are already validated by
// kernels.cpp, so these only compute. Scalars arrive folded (coefficients etc.).
#pragma once
#include <ATen/core/Tensor.h>

#include "kernels.h"

namespace dtokd::detail {

struct SgdScalars {
    float lr, momentum, dampening, weight_decay;
    bool nesterov, first_step;
};
struct AdamWScalars {
    float decay, beta1, beta2, eps, step_size, sqrt_bias2;
};

namespace torch_backend {
// <g_k, g_l> for k <= l, row by row, as float64 [N(N+1)/2] on the gradients' device, with no
// wait for the device: the torch back end's Gram on a GPU (tested on the CPU too).
at::Tensor raw_gram_batched(const std::vector<at::Tensor> &flat);
Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps);
// Raw dot products <g_k, g_l> (k <= l filled, symmetric), unscaled.
GramMatrix gram(const std::vector<const at::Tensor *> &grads);
KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill);
void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s);
void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s);
}  // namespace torch_backend

namespace halide_backend {
// Whether a generated kernel exists for this many gradients (else the torch back end runs).
bool supports_gram(int n, KernelBackend backend);
bool supports_update(int n);
// Raw dot products <g_k, g_l>, unscaled, from one pass over the N gradients.
GramMatrix gram(const std::vector<const at::Tensor *> &grads);
Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps);
KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill);
void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s);
void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s);
}  // namespace halide_backend

// The halide back end on CUDA tensors: the kernels' CUDA variants on LibTorch's context and
// current stream (halide_cuda_kernels.cpp), or, in a build without them, one
// std::invalid_argument (halide_cuda_kernels_none.cpp). The Gram and the losses are read back
// once per call; the updates run in place without waiting.
namespace halide_cuda_backend {
GramMatrix gram(const std::vector<const at::Tensor *> &grads);
Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps);
KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill);
void sgd_update(at::Tensor &theta, at::Tensor &buf, const Direction &d, const SgdScalars &s);
void adamw_update(at::Tensor &theta, at::Tensor &m, at::Tensor &v, const Direction &d, const AdamWScalars &s);
}  // namespace halide_cuda_backend

}  // namespace dtokd::detail
