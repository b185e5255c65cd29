// See logit_kd_pair.h.
#include "logit_kd_pair.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <stdexcept>

#include "frozen_buffers.h"

namespace dtokd {

LogitKdPair::LogitKdPair(std::function<at::Tensor()> forward, torch::nn::Module &module, at::Tensor teacher_logits,
                         at::Tensor labels, KdLossOptions options, KernelBackend backend)
    : forward_(std::move(forward)),
      module_(module),
      teacher_logits_(std::move(teacher_logits)),
      labels_(std::move(labels)),
      options_(options),
      backend_(backend) {
    logits_ = forward_();
    if (logits_.dim() != 2 || logits_.sizes() != teacher_logits_.sizes())
        throw std::invalid_argument("student logits are " + std::string(c10::str(logits_.sizes())) +
                                    " but teacher logits are " + std::string(c10::str(teacher_logits_.sizes())) +
                                    "; expected the same [batch, classes]");
    const at::Tensor z = logits_.detach().contiguous();
    grad_task_ = at::empty_like(z);
    grad_distill_ = at::empty_like(z);
    losses_ = kd_loss(z, teacher_logits_, labels_, options_, grad_task_, grad_distill_, backend_);
}

void LogitKdPair::backward(double w_distill, double w_task, bool retain_graph) {
    at::Tensor seed;
    if (w_task == 0)
        seed = grad_distill_ * w_distill;
    else if (w_distill == 0)
        seed = grad_task_ * w_task;
    else
        seed = at::add(grad_distill_ * w_distill, grad_task_, w_task);
    torch::autograd::backward({logits_}, {seed}, retain_graph);
}

std::pair<double, double> LogitKdPair::reevaluate() {
    FrozenBuffers keep_stats(module_);
    at::NoGradGuard no_grad;
    const at::Tensor z = forward_().contiguous();
    at::Tensor gt = at::empty_like(z), gd = at::empty_like(z);
    const KdLosses l = kd_loss(z, teacher_logits_, labels_, options_, gt, gd, backend_);
    return {l.distill, l.task};
}

}  // namespace dtokd
