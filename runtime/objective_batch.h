// The objectives of an ObjectiveList on one batch: ONE student forward (keeping only
// the taps the objectives read), every loss evaluated once, the logit-level ones
// from one fused KD kernel pass; backward starts at the logits for those and at the
// loss tensors for autograd objectives, in one autograd call.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <optional>

#include "kernels.h"
#include "objective.h"
#include "objective_list.h"
#include "objective_set.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

class ObjectiveBatch : public ObjectiveSet {
public:
    // `forward` runs the student on the batch with the list's taps (graph when grad
    // mode is on). `module` is the student (buffer snapshots in reevaluate()).
    // `teacher` holds at least the teacher's logits [B, C] (and the taps the list asks for).
    ObjectiveBatch(ObjectiveList &objectives, std::function<NetOutputs()> forward, torch::nn::Module &module,
                   NetOutputs teacher, BatchTargets targets, KdLossOptions options, KernelBackend backend);

    int size() const override { return objectives_.size(); }
    std::string name(int k) const override;
    double loss(int k) const override { return values_.at(size_t(k)).loss; }
    void backward(const std::vector<double> &weights, bool retain_graph) override;
    at::Tensor output_grad(int k) const override;
    std::vector<double> reevaluate() override;
    void zero_module_grads() override { objectives_.zero_module_grads(); }
    void step_modules(const std::vector<double> &scale) override { objectives_.step_modules(scale); }
    std::vector<at::Tensor> module_gradients() override { return objectives_.module_gradients(); }

    const at::Tensor &logits() const { return student_.logits; }

private:
    std::vector<ObjectiveValue> evaluate(const NetOutputs &student, bool update_state);

    ObjectiveList &objectives_;
    std::function<NetOutputs()> forward_;
    torch::nn::Module &module_;
    NetOutputs teacher_;
    BatchTargets targets_;
    KdLossOptions options_;
    KernelBackend backend_;
    NetOutputs student_;
    std::vector<ObjectiveValue> values_;
};

}  // namespace dtokd
