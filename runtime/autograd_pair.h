// Generic objectives from any two scalar loss tensors built by autograd: the
// plug-in point for distillation losses that are not logit-level (features,
// relations, ...), and the synthetic problems in the tests.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <utility>

#include "objective_pair.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

class AutogradPair : public ObjectivePair {
public:
    // `losses` evaluates (L_distill, L_task) at the current parameters, with graph
    // when grad mode is on. `module` (optional) has its buffers frozen in reevaluate().
    using LossFn = std::function<std::pair<at::Tensor, at::Tensor>()>;
    explicit AutogradPair(LossFn losses, torch::nn::Module *module = nullptr);

    double loss_distill() const override { return distill_value_; }
    double loss_task() const override { return task_value_; }
    void backward(double w_distill, double w_task, bool retain_graph) override;
    std::pair<double, double> reevaluate() override;

private:
    LossFn losses_;
    torch::nn::Module *module_;
    at::Tensor distill_, task_;
    double distill_value_ = 0, task_value_ = 0;
};

}  // namespace dtokd
