// Objectives from any N scalar loss tensors built by autograd: the synthetic
// problems of the tests and benchmarks, and a plug-in point for losses that need
// no registry entry. Objective-specific parameters are given per objective.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "objective_set.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

class AutogradObjectives : public ObjectiveSet {
public:
    // `losses` evaluates (L_1, ..., L_N) at the current parameters, with graph when
    // grad mode is on. `module` (optional) has its buffers frozen in reevaluate().
    using LossFn = std::function<std::vector<at::Tensor>()>;
    explicit AutogradObjectives(LossFn losses, torch::nn::Module *module = nullptr,
                                std::vector<std::string> names = {});

    int size() const override { return int(values_.size()); }
    std::string name(int k) const override;
    double loss(int k) const override { return values_.at(size_t(k)); }
    void backward(const std::vector<double> &weights, bool retain_graph) override;
    std::vector<double> reevaluate() override;

private:
    LossFn losses_;
    torch::nn::Module *module_;
    std::vector<std::string> names_;
    std::vector<at::Tensor> tensors_;
    std::vector<double> values_;
};

}  // namespace dtokd
