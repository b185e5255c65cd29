// Logit-level KD objectives (Hinton): the student forward produces logits; the
// KD kernel gives L_task, L_distill and both dL/dlogits in one pass, so backward
// starts at the logits and no loss graph is built by autograd.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>

#include "kernels.h"
#include "objective_pair.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

class LogitKdPair : public ObjectivePair {
public:
    // `forward` runs the student on the batch and returns logits [B, C] (with graph).
    // `module` is the student (for buffer snapshots in reevaluate()).
    LogitKdPair(std::function<at::Tensor()> forward, torch::nn::Module &module, at::Tensor teacher_logits,
                at::Tensor labels, KdLossOptions options, KernelBackend backend);

    double loss_distill() const override { return losses_.distill; }
    double loss_task() const override { return losses_.task; }
    void backward(double w_distill, double w_task, bool retain_graph) override;
    at::Tensor output_grad_distill() const override { return grad_distill_; }
    at::Tensor output_grad_task() const override { return grad_task_; }
    std::pair<double, double> reevaluate() override;

    const at::Tensor &logits() const { return logits_; }

private:
    std::function<at::Tensor()> forward_;
    torch::nn::Module &module_;
    at::Tensor teacher_logits_, labels_;
    KdLossOptions options_;
    KernelBackend backend_;
    at::Tensor logits_, grad_task_, grad_distill_;
    KdLosses losses_;
};

}  // namespace dtokd
