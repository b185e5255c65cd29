// Public kernel API: validates inputs once, folds scalars the way LibTorch does,
// then dispatches to the chosen back end (kernel_backends.h).
#include "kernels.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

#include "kernel_backends.h"
#include "tensor_checks.h"

namespace dtokd {

using namespace detail;

KernelBackend parse_kernel_backend(const std::string &name) {
    if (name == "halide") return KernelBackend::halide;
    if (name == "torch") return KernelBackend::torch;
    throw std::invalid_argument("--kernels: unknown kernel back end '" + name + "'; expected 'halide' or 'torch'");
}

const char *to_string(KernelBackend backend) { return backend == KernelBackend::halide ? "halide" : "torch"; }

Gram log_gram(const at::Tensor &a, const at::Tensor &b, double loss_distill, double loss_task, double eps,
              KernelBackend backend) {
    const char *k = "log_gram";
    check_float_tensor(k, "a (distill gradient)", a);
    check_float_tensor(k, "b (task gradient)", b);
    check_same_numel(k, "a (distill gradient)", a, "b (task gradient)", b);
    check_same_device(k, "a (distill gradient)", a, "b (task gradient)", b);
    check_finite_scalar(k, "loss_distill", loss_distill);
    check_finite_scalar(k, "loss_task", loss_task);
    check_positive_scalar(k, "eps", eps);
    return backend == KernelBackend::halide ? halide_backend::log_gram(a, b, loss_distill, loss_task, eps)
                                            : torch_backend::log_gram(a, b, loss_distill, loss_task, eps);
}

KdLosses kd_loss(const at::Tensor &student, const at::Tensor &teacher, const at::Tensor &labels,
                 const KdLossOptions &options, at::Tensor &grad_task, at::Tensor &grad_distill,
                 KernelBackend backend) {
    const char *k = "kd_loss";
    check_float_tensor(k, "student_logits", student);
    if (student.dim() != 2)
        throw std::invalid_argument(std::string(k) + ": student_logits is " + describe(student) +
                                    "; expected a [batch, classes] matrix");
    check_float_tensor(k, "teacher_logits", teacher);
    check_same_shape(k, "student_logits", student, "teacher_logits", teacher);
    check_float_tensor(k, "grad_task", grad_task);
    check_same_shape(k, "student_logits", student, "grad_task", grad_task);
    check_float_tensor(k, "grad_distill", grad_distill);
    check_same_shape(k, "student_logits", student, "grad_distill", grad_distill);
    for (const at::Tensor *t : std::initializer_list<const at::Tensor *>{&teacher, &labels, &grad_task, &grad_distill})
        check_same_device(k, "student_logits", student, "an argument", *t);
    if (!labels.defined() || labels.dim() != 1 || labels.size(0) != student.size(0) ||
        (labels.scalar_type() != at::kLong && labels.scalar_type() != at::kInt))
        throw std::invalid_argument(std::string(k) + ": labels is " + describe(labels) +
                                    "; expected int64 or int32 [" + std::to_string(student.size(0)) + "]");
    // Labels on a GPU are not range-checked here: that would wait for the device every step.
    // The datasets check them when they load, and both back ends clamp them there, so a bad
    // label cannot read out of bounds.
    if (labels.is_cpu()) {
        const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
        if (lo < 0 || hi >= student.size(1))
            throw std::invalid_argument(std::string(k) + ": labels span [" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + "]; expected class indices in [0, " +
                                        std::to_string(student.size(1) - 1) + "]");
    }
    check_positive_scalar(k, "temperature", options.temperature);
    if (!(options.label_smoothing >= 0 && options.label_smoothing < 1))
        throw std::invalid_argument(std::string(k) + ": label_smoothing is " +
                                    std::to_string(options.label_smoothing) + "; expected a value in [0, 1)");
    return backend == KernelBackend::halide
               ? halide_backend::kd_loss(student, teacher, labels, options, grad_task, grad_distill)
               : torch_backend::kd_loss(student, teacher, labels, options, grad_task, grad_distill);
}

Direction dto_direction(const at::Tensor &a, const at::Tensor &b, double pi1, double pi2, double loss_distill,
                        double loss_task, double eps, double clip_scale) {
    Direction d;
    d.count = 2;
    d.grads[0] = &a;
    d.grads[1] = &b;
    d.coeffs[0] = clip_scale * pi1 / std::max(loss_distill, eps);
    d.coeffs[1] = clip_scale * pi2 / std::max(loss_task, eps);
    return d;
}

Direction dto_direction(const std::vector<const at::Tensor *> &grads, const std::vector<double> &pi,
                        const std::vector<double> &losses, double eps, double clip_scale) {
    const int n = int(grads.size());
    if (n < 1 || n > kMaxObjectives || pi.size() != grads.size() || losses.size() != grads.size())
        throw std::invalid_argument("dto_direction: " + std::to_string(n) + " gradients, " +
                                    std::to_string(pi.size()) + " weights, " + std::to_string(losses.size()) +
                                    " losses; expected 1.." + std::to_string(kMaxObjectives) + " of each, equally many");
    Direction d;
    d.count = n;
    for (int k = 0; k < n; k++) {
        d.grads[size_t(k)] = grads[size_t(k)];
        d.coeffs[size_t(k)] = clip_scale * pi[size_t(k)] / std::max(losses[size_t(k)], eps);
    }
    return d;
}

Direction single_direction(const at::Tensor &g, double clip_scale) {
    Direction d;
    d.count = 1;
    d.grads[0] = &g;
    d.coeffs[0] = clip_scale;
    return d;
}

double dto_direction_sq_norm(const Gram &gram, double pi1, double pi2) {
    return std::max(0.0, pi1 * pi1 * gram.g11 + 2 * pi1 * pi2 * gram.g12 + pi2 * pi2 * gram.g22);
}

double dto_direction_sq_norm(const GramMatrix &gram, const std::vector<double> &pi) {
    double sq = 0;
    for (int k = 0; k < gram.n; k++)
        for (int l = 0; l < gram.n; l++) sq += pi[size_t(k)] * pi[size_t(l)] * gram(k, l);
    return std::max(0.0, sq);
}

GramMatrix log_gram(const std::vector<const at::Tensor *> &grads, const std::vector<double> &losses, double eps,
                    KernelBackend backend) {
    const char *k = "log_gram";
    const int n = int(grads.size());
    if (n < 1 || n > kMaxObjectives)
        throw std::invalid_argument(std::string(k) + ": " + std::to_string(n) + " gradients; expected 1.." +
                                    std::to_string(kMaxObjectives));
    if (losses.size() != grads.size())
        throw std::invalid_argument(std::string(k) + ": " + std::to_string(losses.size()) + " losses for " +
                                    std::to_string(n) + " gradients; expected one per gradient");
    for (int i = 0; i < n; i++) {
        const std::string name = "gradient " + std::to_string(i);
        if (grads[size_t(i)] == nullptr) throw std::invalid_argument(std::string(k) + ": " + name + " is missing");
        check_float_tensor(k, name.c_str(), *grads[size_t(i)]);
        check_same_numel(k, "gradient 0", *grads[0], name.c_str(), *grads[size_t(i)]);
        check_same_device(k, "gradient 0", *grads[0], name.c_str(), *grads[size_t(i)]);
        check_finite_scalar(k, ("loss " + std::to_string(i)).c_str(), losses[size_t(i)]);
    }
    check_positive_scalar(k, "eps", eps);
    GramMatrix g = halide_backend::supports_gram(n, backend) ? halide_backend::gram(grads)
                                                              : torch_backend::gram(grads);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            g(a, b) /= std::max(losses[size_t(a)], eps) * std::max(losses[size_t(b)], eps);
    return g;
}

namespace {
void check_direction(const char *k, const at::Tensor &theta, const Direction &d) {
    if (d.count < 1 || d.count > kMaxObjectives)
        throw std::invalid_argument(std::string(k) + ": the direction has " + std::to_string(d.count) +
                                    " gradients; expected 1.." + std::to_string(kMaxObjectives));
    for (int i = 0; i < d.count; i++) {
        const std::string name = "gradient " + std::to_string(i);
        const at::Tensor *g = d.grads[size_t(i)];
        if (g == nullptr) throw std::invalid_argument(std::string(k) + ": " + name + " of the direction is missing");
        check_float_tensor(k, name.c_str(), *g);
        check_same_numel(k, "theta", theta, name.c_str(), *g);
        check_same_device(k, "theta", theta, name.c_str(), *g);
        check_finite_scalar(k, ("coefficient of " + name).c_str(), d.coeffs[size_t(i)]);
    }
}
}  // namespace

void sgd_update(at::Tensor &theta, at::Tensor &momentum_buffer, const Direction &direction,
                const SgdOptions &options, bool first_step, KernelBackend backend) {
    const char *k = "sgd_update";
    check_float_tensor(k, "theta", theta);
    check_float_tensor(k, "momentum_buffer", momentum_buffer);
    check_same_numel(k, "theta", theta, "momentum_buffer", momentum_buffer);
    check_same_device(k, "theta", theta, "momentum_buffer", momentum_buffer);
    check_direction(k, theta, direction);
    check_finite_scalar(k, "lr", options.lr);
    check_finite_scalar(k, "momentum", options.momentum);
    check_finite_scalar(k, "dampening", options.dampening);
    check_finite_scalar(k, "weight_decay", options.weight_decay);
    if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
        throw std::invalid_argument(std::string(k) + ": nesterov needs momentum > 0 and dampening = 0 (got " +
                                    std::to_string(options.momentum) + ", " +
                                    std::to_string(options.dampening) + ")");
    const SgdScalars s{float(options.lr),           float(options.momentum), float(options.dampening),
                       float(options.weight_decay), options.nesterov,        first_step};
    if (backend == KernelBackend::halide && halide_backend::supports_update(direction.count))
        halide_backend::sgd_update(theta, momentum_buffer, direction, s);
    else
        torch_backend::sgd_update(theta, momentum_buffer, direction, s);
}

void adamw_update(at::Tensor &theta, at::Tensor &exp_avg, at::Tensor &exp_avg_sq, const Direction &direction,
                  const AdamWOptions &options, int64_t step, KernelBackend backend) {
    const char *k = "adamw_update";
    check_float_tensor(k, "theta", theta);
    check_float_tensor(k, "exp_avg", exp_avg);
    check_float_tensor(k, "exp_avg_sq", exp_avg_sq);
    check_same_numel(k, "theta", theta, "exp_avg", exp_avg);
    check_same_numel(k, "theta", theta, "exp_avg_sq", exp_avg_sq);
    check_same_device(k, "theta", theta, "exp_avg", exp_avg);
    check_same_device(k, "theta", theta, "exp_avg_sq", exp_avg_sq);
    check_direction(k, theta, direction);
    if (step < 1) throw std::invalid_argument(std::string(k) + ": step is " + std::to_string(step) + "; expected >= 1");
    check_positive_scalar(k, "eps", options.eps);
    for (double beta : {options.beta1, options.beta2})
        if (!(beta >= 0 && beta < 1))
            throw std::invalid_argument(std::string(k) + ": beta is " + std::to_string(beta) + "; expected [0, 1)");
    // Scalars in double, as torch::optim::AdamW computes them.
    const double bias1 = 1 - std::pow(options.beta1, double(step));
    const double bias2 = 1 - std::pow(options.beta2, double(step));
    const AdamWScalars s{float(1 - options.lr * options.weight_decay), float(options.beta1), float(options.beta2),
                         float(options.eps), float(options.lr / bias1), float(std::sqrt(bias2))};
    if (backend == KernelBackend::halide && halide_backend::supports_update(direction.count))
        halide_backend::adamw_update(theta, exp_avg, exp_avg_sq, direction, s);
    else
        torch_backend::adamw_update(theta, exp_avg, exp_avg_sq, direction, s);
}

}  // namespace dtokd
