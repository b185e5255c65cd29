// The DTO-KD kernel API over torch::Tensor. Every kernel has two back ends:
// `halide` (the AOT-generated, multi-target kernels; no copies, tensors are wrapped)
// and `torch` (plain LibTorch ops, the reference and fallback). Both check their
// inputs the same way and throw std::invalid_argument naming the tensor and shape.
// All tensors are float32, contiguous, on the same device; flat kernels take any
// numel >= 1. Torch is only forward-declared here to keep includes cheap.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace dtokd {

enum class KernelBackend { halide, torch };

// "halide" or "torch"; anything else throws std::invalid_argument listing both.
KernelBackend parse_kernel_backend(const std::string &name);
const char *to_string(KernelBackend backend);

// Gram of the log-gradients of two raw gradients a (distill) and b (task):
// g11 = <a,a>/Ld^2, g12 = <a,b>/(Ld Lt), g22 = <b,b>/Lt^2 with L = max(loss, eps).
struct Gram {
    double g11 = 0, g12 = 0, g22 = 0;
};
Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps,
              KernelBackend backend);

// The most objectives one trade-off handles: kernels exist for 1..kMaxObjectives gradients.
inline constexpr int kMaxObjectives = 8;

// N x N Gram of the log-gradients of N raw gradients g_k (N = 1..kMaxObjectives):
//   G(k, l) = <g_k, g_l> / (L_k L_l),  L_k = max(loss_k, eps).
// Symmetric; computed in one pass that reads each gradient once (float64 totals).
struct GramMatrix {
    int n = 0;
    std::array<double, kMaxObjectives * kMaxObjectives> values{};
    double operator()(int k, int l) const { return values[size_t(k * kMaxObjectives + l)]; }
    double &operator()(int k, int l) { return values[size_t(k * kMaxObjectives + l)]; }
};
GramMatrix log_gram(const std::vector<const at::Tensor *> &grads, const std::vector<double> &losses, double eps,
                    KernelBackend backend);

// Logit-level KD: losses and their gradients w.r.t. the student logits [B, C].
// grad_task and grad_distill must be preallocated float32 [B, C] tensors (overwritten).
// Labels outside [0, C) are an error on the CPU; on a GPU they are not checked (that would
// wait for the device) but clamped, so they cannot read out of bounds.
struct KdLosses {
    double task = 0, distill = 0;
};
struct KdLossOptions {
    double temperature = 4.0;
    double label_smoothing = 0.0;
};
KdLosses kd_loss(const at::Tensor &student_logits, const at::Tensor &teacher_logits, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill,
                 KernelBackend backend);

// The update direction fed to a fused optimizer step, formed in registers:
//   g = sum_{k < count} coeffs[k] * grads[k]   (count = 1: a single backward's gradient)
// Build it with dto_direction() or single_direction().
struct Direction {
    std::array<const at::Tensor *, kMaxObjectives> grads{};
    std::array<double, kMaxObjectives> coeffs{};
    int count = 0;
};
// g* = clip * (pi1 a/Ld + pi2 b/Lt), L = max(loss, eps): the exact DTO-KD direction from raw gradients.
Direction dto_direction(const at::Tensor &a, const at::Tensor &b, double pi1, double pi2, double loss_distill,
                        double loss_task, double eps, double clip_scale = 1.0);
// g* = clip * sum_k pi_k g_k / L_k over N raw gradients (N = 1..kMaxObjectives).
Direction dto_direction(const std::vector<const at::Tensor *> &grads, const std::vector<double> &pi,
                        const std::vector<double> &losses, double eps, double clip_scale = 1.0);
// g = clip * g_raw.
Direction single_direction(const at::Tensor &g, double clip_scale = 1.0);
// ||g*||^2 from the log-gradient Gram without another pass over the gradients.
double dto_direction_sq_norm(const Gram &gram, double pi1, double pi2);
double dto_direction_sq_norm(const GramMatrix &gram, const std::vector<double> &pi);

// torch.optim.SGD semantics. `first_step` initialises the momentum buffer with d_p.
struct SgdOptions {
    double lr = 0.05;
    double momentum = 0.9;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};
void sgd_update(at::Tensor &theta, at::Tensor &momentum_buffer, const Direction &direction,
                const SgdOptions &options, bool first_step, KernelBackend backend);

// torch.optim.AdamW semantics (no amsgrad). `step` counts from 1.
struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
};
void adamw_update(at::Tensor &theta, at::Tensor &exp_avg, at::Tensor &exp_avg_sq, const Direction &direction,
                  const AdamWOptions &options, int64_t step, KernelBackend backend);

}  // namespace dtokd
