// The N objectives of one batch (N = 1..kMaxObjectives), after the student forward:
// everything a trade-off policy may use. A policy never sees how the losses are
// made: logit-level (the fused KD kernel), feature losses through autograd, or a
// synthetic problem in a test all look the same here.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace dtokd {

class ObjectiveSet {
public:
    virtual ~ObjectiveSet() = default;

    virtual int size() const = 0;
    virtual std::string name(int k) const = 0;
    // L_k on this batch, before the update.
    virtual double loss(int k) const = 0;

    // Accumulates sum_k weights[k] * dL_k/dtheta into the student parameters'
    // current .grad (see FlatArena::route_gradients_to), and weights[k] * dL_k/dphi_k
    // into the .grad of objective k's own trainable parameters, if it has any.
    // Objectives with weight 0 are left out. retain_graph: another backward follows.
    virtual void backward(const std::vector<double> &weights, bool retain_graph) = 0;

    // dL_k/d(student logits) when L_k is a function of the student logits alone
    // (`dto-logit`); undefined otherwise.
    virtual at::Tensor output_grad(int /*k*/) const { return {}; }

    // Every L_k at the current parameters on the same batch, without gradients and
    // without updating BatchNorm running statistics (`dto-amortized`).
    virtual std::vector<double> reevaluate() = 0;

    // Objective-specific trainable parameters (a regressor, connectors): not part of
    // the trade-off. zero_module_grads() before the backward passes; after them,
    // step_modules(scale) multiplies objective k's parameter gradients by scale[k]
    // and steps them with their own optimizer. No-ops when no objective owns any.
    virtual void zero_module_grads() {}
    virtual void step_modules(const std::vector<double> & /*scale*/) {}
    // The defined gradients of those parameters, in a fixed order (data-parallel runs
    // average them across ranks before step_modules).
    virtual std::vector<at::Tensor> module_gradients() { return {}; }
};

}  // namespace dtokd
