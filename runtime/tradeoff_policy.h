// One interface, the trade-off policies: fixed weights (ce, kd, sum) and the three
// DTO-KD policies (dto, dto-amortized, dto-logit), each over N = 1..kMaxObjectives
// objectives. A policy receives the batch's objectives and performs one training
// step on the flat arena with the fused optimizer. It never sees how the losses are made.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "step_stats.h"

namespace dtokd {

class FlatArena;
class FusedOptimizer;
class ObjectiveSet;

struct PolicyConfig {
    std::string method = "dto";  // ce | kd | sum | dto | dto-amortized | dto-logit
    // Fixed-weight policies: one weight per objective. Empty: kd takes
    // (alpha_distill, alpha_task) for its (kd, ce) pair, ce and sum weigh each objective 1.
    std::vector<double> weights;
    double alpha_distill = 0.9;  // kd: fixed weights (CIFAR recipe)
    double alpha_task = 0.1;
    double eps = 1e-8;              // log-loss floor: grad log L = grad L / max(L, eps)
    double clip_norm = 0;           // > 0: clip the update direction to this global norm
    double amortized_lr = 0.025;    // dto-amortized: Adam on the softmax logits w
    double amortized_decay = 0.01;  // its (L2) weight decay
    int refresh = 0;                // dto-amortized: every K > 0 steps an exact step resets pi
    int reeval_every = 1;           // dto-amortized: re-evaluate the losses (and learn pi) every K-th step
};

const std::vector<std::string> &policy_names();

class Collective;

struct PolicyContext {
    FlatArena &arena;
    FusedOptimizer &optimizer;
    KernelBackend backend;
    // Data-parallel runs: the ranks; the policy sums across them what its trade-off
    // needs, so every rank takes the same step (collective.h). Null: one process.
    Collective *collective = nullptr;
};

class TradeoffPolicy {
public:
    virtual ~TradeoffPolicy() = default;
    virtual std::string name() const = 0;
    // Gradient arenas the FlatArena needs for this policy over `objectives` objectives
    // (N for exact DTO, 1 for the single-backward policies).
    virtual int gradient_arenas(int /*objectives*/) const { return 1; }
    // True when every objective must be a function of the student logits alone.
    virtual bool needs_logit_objectives() const { return false; }
    // One step; `step` numbers it (from 0). Non-finite losses or gradients: the
    // step is skipped (parameters untouched) and StepStats::skipped says why.
    // Objective-specific modules step with their own objective's gradient: w_k dL_k/dphi_k
    // under fixed weights, grad log L_k under the DTO policies.
    virtual StepStats step(ObjectiveSet &objectives, PolicyContext &ctx, int64_t step) = 0;
    // What the policy carries from one step to the next (dto-amortized: its trade-off
    // logits, their Adam moments and counters; nothing for the others), for checkpoints:
    // a policy given load_state(state()) continues exactly as the one that wrote it.
    virtual std::vector<double> state() const { return {}; }
    // Throws std::invalid_argument when `state` is not one this policy wrote.
    virtual void load_state(const std::vector<double> &state);
};

// Throws std::invalid_argument for an unknown method (listing the known ones) or bad options.
std::unique_ptr<TradeoffPolicy> make_policy(const PolicyConfig &config);

}  // namespace dtokd
