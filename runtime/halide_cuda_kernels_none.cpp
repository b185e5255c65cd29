// The halide back end's CUDA entry points in a build without the Halide CUDA kernels (a
// CPU LibTorch, or kernels generated with DTOKD_CUDA=OFF): CUDA tensors are one clear error.
#include <stdexcept>
#include <string>

#include "cuda_device.h"
#include "kernel_backends.h"
#include "tensor_checks.h"

namespace dtokd {

bool halide_cuda_kernels_linked() { return false; }

namespace detail::halide_cuda_backend {

namespace {
[[noreturn]] void refuse(const char *kernel, const at::Tensor &t) {
    throw std::invalid_argument(std::string(kernel) + ": " + describe(t) +
                                " is on a GPU, and this dtokd links no Halide CUDA kernels (use --kernels=torch)");
}
}  // namespace

GramMatrix gram(const std::vector<const at::Tensor *> &grads) { refuse("log_gram", *grads.front()); }
Gram log_gram(const at::Tensor &a, const at::Tensor &, double, double, double) { refuse("log_gram", a); }
KdLosses kd_loss(const at::Tensor &student, const at::Tensor &, const at::Tensor &, const KdLossOptions &,
                 at::Tensor &, at::Tensor &) {
    refuse("kd_loss", student);
}
void sgd_update(at::Tensor &theta, at::Tensor &, const Direction &, const SgdScalars &) { refuse("sgd_update", theta); }
void adamw_update(at::Tensor &theta, at::Tensor &, at::Tensor &, const Direction &, const AdamWScalars &) {
    refuse("adamw_update", theta);
}

}  // namespace detail::halide_cuda_backend
}  // namespace dtokd
