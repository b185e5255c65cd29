// The optimizer over a FlatArena: one fused Halide (or LibTorch) pass per step
// that forms the update direction from the raw gradient arena(s), applies
// weight decay and SGD-momentum or AdamW, and writes theta and state in place.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "kernels.h"

namespace dtokd {

struct OptimizerConfig {
    std::string kind = "sgd";  // "sgd" or "adamw"
    SgdOptions sgd;
    AdamWOptions adamw;
};

class FusedOptimizer {
public:
    // State tensors are allocated like `params` (numel, device).
    FusedOptimizer(const at::Tensor &params, OptimizerConfig config, KernelBackend backend);

    // One step of `params` along `direction`.
    void step(at::Tensor &params, const Direction &direction);

    double lr() const;
    void set_lr(double lr);  // for schedules
    int64_t steps_taken() const { return steps_; }
    const OptimizerConfig &config() const { return config_; }
    KernelBackend backend() const { return backend_; }

    // State for checkpoints: [momentum] for SGD, [exp_avg, exp_avg_sq] for AdamW.
    std::vector<at::Tensor> state() const;
    void load_state(const std::vector<at::Tensor> &state, int64_t steps);

private:
    OptimizerConfig config_;
    KernelBackend backend_;
    at::Tensor s0_, s1_;
    int64_t steps_ = 0;
};

}  // namespace dtokd
