// See fused_optimizer.h.
#include "fused_optimizer.h"

#include <ATen/ATen.h>

#include <stdexcept>

namespace dtokd {

FusedOptimizer::FusedOptimizer(const at::Tensor &params, OptimizerConfig config, KernelBackend backend)
    : config_(std::move(config)), backend_(backend) {
    if (config_.kind != "sgd" && config_.kind != "adamw")
        throw std::invalid_argument("optimizer '" + config_.kind + "' is unknown; expected 'sgd' or 'adamw'");
    s0_ = at::zeros_like(params);
    if (config_.kind == "adamw") s1_ = at::zeros_like(params);
}

void FusedOptimizer::step(at::Tensor &params, const Direction &direction) {
    if (config_.kind == "sgd") {
        sgd_update(params, s0_, direction, config_.sgd, /*first_step=*/steps_ == 0, backend_);
    } else {
        adamw_update(params, s0_, s1_, direction, config_.adamw, steps_ + 1, backend_);
    }
    steps_++;
}

double FusedOptimizer::lr() const { return config_.kind == "sgd" ? config_.sgd.lr : config_.adamw.lr; }

void FusedOptimizer::set_lr(double lr) {
    if (config_.kind == "sgd")
        config_.sgd.lr = lr;
    else
        config_.adamw.lr = lr;
}

std::vector<at::Tensor> FusedOptimizer::state() const {
    if (config_.kind == "sgd") return {s0_};
    return {s0_, s1_};
}

void FusedOptimizer::load_state(const std::vector<at::Tensor> &state, int64_t steps) {
    const size_t expected = config_.kind == "sgd" ? 1 : 2;
    if (state.size() != expected)
        throw std::invalid_argument("optimizer state has " + std::to_string(state.size()) + " tensors; '" +
                                    config_.kind + "' expects " + std::to_string(expected));
    for (size_t i = 0; i < expected; i++) {
        at::Tensor &dst = i == 0 ? s0_ : s1_;
        if (state[i].numel() != dst.numel())
            throw std::invalid_argument("optimizer state tensor " + std::to_string(i) + " has " +
                                        std::to_string(state[i].numel()) + " elements; expected " +
                                        std::to_string(dst.numel()));
        dst.copy_(state[i].reshape({-1}));
    }
    steps_ = steps;
}

}  // namespace dtokd
