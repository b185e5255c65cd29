// One interface, five trade-off policies (ce, kd, dto, dto-amortized, dto-logit).
// A policy receives the batch's two objectives and performs one training step on
// the flat arena with the fused optimizer. It never sees how the losses are made.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "step_stats.h"

namespace dtokd {

class FlatArena;
class FusedOptimizer;
class ObjectivePair;

struct PolicyConfig {
    std::string method = "dto";  // ce | kd | dto | dto-amortized | dto-logit
    double alpha_distill = 0.9;  // kd: fixed weights (CIFAR recipe)
    double alpha_task = 0.1;
    double eps = 1e-8;              // log-loss floor: grad log L = grad L / max(L, eps)
    double clip_norm = 0;           // > 0: clip the update direction to this global norm
    double amortized_lr = 0.025;    // dto-amortized: Adam on the softmax logits w
    double amortized_decay = 0.01;  // its (L2) weight decay
    int refresh = 0;                // dto-amortized: every K > 0 steps an exact step resets pi
};

const std::vector<std::string> &policy_names();

struct PolicyContext {
    FlatArena &arena;
    FusedOptimizer &optimizer;
    KernelBackend backend;
};

class TradeoffPolicy {
public:
    virtual ~TradeoffPolicy() = default;
    virtual std::string name() const = 0;
    // Gradient arenas the FlatArena needs for this policy (2 for exact DTO).
    virtual int gradient_arenas() const { return 1; }
    // One step; `step` numbers it (from 0). Non-finite losses or gradients: the
    // step is skipped (parameters untouched) and StepStats::skipped says why.
    virtual StepStats step(ObjectivePair &objectives, PolicyContext &ctx, int64_t step) = 0;
};

// Throws std::invalid_argument for an unknown method (listing the known ones) or bad options.
std::unique_ptr<TradeoffPolicy> make_policy(const PolicyConfig &config);

}  // namespace dtokd
