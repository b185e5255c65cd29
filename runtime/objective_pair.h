// The two objectives of one batch (distillation and task), after the student
// forward: everything a trade-off policy may use. A new distillation loss
// (feature, relational, DKD, ...) plugs in by implementing this interface (or by
// using AutogradPair with its own loss closure); policies never change.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

namespace dtokd {

class ObjectivePair {
public:
    virtual ~ObjectivePair() = default;

    virtual double loss_distill() const = 0;
    virtual double loss_task() const = 0;

    // Accumulates w_distill * dL_distill/dtheta + w_task * dL_task/dtheta into the
    // parameters' current .grad (see FlatArena::route_gradients_to). retain_graph:
    // another backward follows on the same forward.
    virtual void backward(double w_distill, double w_task, bool retain_graph) = 0;

    // dL/d(student output) for each loss, when the losses are computed from one
    // output tensor (the logits): used by `dto-logit`. Undefined otherwise.
    virtual at::Tensor output_grad_distill() const { return {}; }
    virtual at::Tensor output_grad_task() const { return {}; }

    // Both losses at the current parameters on the same batch, without gradients
    // and without updating BatchNorm running statistics (`dto-amortized`).
    virtual std::pair<double, double> reevaluate() = 0;
};

}  // namespace dtokd
