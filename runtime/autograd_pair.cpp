// See autograd_pair.h.
#include "autograd_pair.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <memory>
#include <optional>

#include "frozen_buffers.h"

namespace dtokd {

AutogradPair::AutogradPair(LossFn losses, torch::nn::Module *module) : losses_(std::move(losses)), module_(module) {
    std::tie(distill_, task_) = losses_();
    distill_value_ = distill_.item<double>();
    task_value_ = task_.item<double>();
}

void AutogradPair::backward(double w_distill, double w_task, bool retain_graph) {
    std::vector<at::Tensor> outputs, seeds;
    if (w_distill != 0) {
        outputs.push_back(distill_);
        seeds.push_back(at::full_like(distill_, w_distill));
    }
    if (w_task != 0) {
        outputs.push_back(task_);
        seeds.push_back(at::full_like(task_, w_task));
    }
    if (!outputs.empty()) torch::autograd::backward(outputs, seeds, retain_graph);
}

std::pair<double, double> AutogradPair::reevaluate() {
    std::optional<FrozenBuffers> keep_stats;
    if (module_ != nullptr) keep_stats.emplace(*module_);
    at::NoGradGuard no_grad;
    auto [d, t] = losses_();
    return {d.item<double>(), t.item<double>()};
}

}  // namespace dtokd
