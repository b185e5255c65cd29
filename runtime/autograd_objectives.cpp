// See autograd_objectives.h.
#include "autograd_objectives.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <optional>
#include <stdexcept>

#include "frozen_buffers.h"

namespace dtokd {

AutogradObjectives::AutogradObjectives(LossFn losses, torch::nn::Module *module, std::vector<std::string> names)
    : losses_(std::move(losses)), module_(module), names_(std::move(names)) {
    tensors_ = losses_();
    for (const at::Tensor &t : tensors_) values_.push_back(t.item<double>());
}

std::string AutogradObjectives::name(int k) const {
    return size_t(k) < names_.size() ? names_[size_t(k)] : "L" + std::to_string(k + 1);
}

void AutogradObjectives::backward(const std::vector<double> &weights, bool retain_graph) {
    if (weights.size() != tensors_.size())
        throw std::invalid_argument("backward: " + std::to_string(weights.size()) + " weights for " +
                                    std::to_string(tensors_.size()) + " objectives");
    std::vector<at::Tensor> outputs, seeds;
    for (size_t k = 0; k < tensors_.size(); k++) {
        if (weights[k] == 0) continue;
        outputs.push_back(tensors_[k]);
        seeds.push_back(at::full_like(tensors_[k], weights[k]));
    }
    if (!outputs.empty()) torch::autograd::backward(outputs, seeds, retain_graph);
}

std::vector<double> AutogradObjectives::reevaluate() {
    std::optional<FrozenBuffers> keep_stats;
    if (module_ != nullptr) keep_stats.emplace(*module_);
    at::NoGradGuard no_grad;
    std::vector<double> out;
    for (const at::Tensor &t : losses_()) out.push_back(t.item<double>());
    return out;
}

}  // namespace dtokd
