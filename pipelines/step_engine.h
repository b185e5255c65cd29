// One training step, the same in the trainer and the benchmarks: the student on its
// flat gradient arena, the fused optimizer, the trade-off policy and the objectives
// (with the modules they own); the teacher's outputs for a batch come from a forward
// or from rows of the teacher-logit cache. It knows no files, loaders or configs.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fused_optimizer.h"
#include "kernels.h"
#include "model_handle.h"
#include "objective.h"
#include "objective_batch.h"
#include "objective_list.h"
#include "step_stats.h"
#include "tradeoff_policy.h"

namespace dtokd {

class Collective;
class FlatArena;

struct StepEngineOptions {
    OptimizerConfig optimizer;
    KernelBackend backend = KernelBackend::halide;
    KdLossOptions kd;
    int min_gradient_arenas = 1;  // benchmarks route extra backward passes into a spare arena
    // Data-parallel: the ranks. The engine starts every rank from rank 0's parameters and
    // buffers and, before each step, gives every rank rank 0's buffers (batch-norm running
    // statistics), as PyTorch's DistributedDataParallel does by default; the policy sums
    // across ranks what its trade-off needs. Null: one process.
    Collective *collective = nullptr;
    // Where the student, the teacher, the arenas, the optimizer and the objectives' modules
    // live; batches must be on it. The policy's scalar state stays on the host.
    at::Device device = at::kCPU;
};

// Named tensors, as checkpoints store them.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class StepEngine {
public:
    // One probe forward of each network on `probe_images` builds the objectives' modules
    // from the feature shapes (and checks every tap they read); then the arena over the
    // student's parameters and the optimizer. `teacher` is empty (no module) when no
    // objective reads a teacher.
    StepEngine(ModelHandle student, ModelHandle teacher, std::unique_ptr<ObjectiveList> objectives,
               std::unique_ptr<TradeoffPolicy> policy, const at::Tensor &probe_images, const PrepareContext &context,
               StepEngineOptions options);
    ~StepEngine();

    // Teacher logits per dataset row [N, C] (the teacher-logit cache): teacher_outputs()
    // then reads rows by index instead of running the teacher.
    void use_cached_teacher_logits(at::Tensor logits);
    // The teacher's outputs on a batch (no grad; the taps the objectives read). Without a
    // teacher: uniform logits, which the KD kernel needs and no objective reads.
    NetOutputs teacher_outputs(const at::Tensor &images, const at::Tensor &indices);
    // The objectives on a batch (one student forward, run by the policy's first loss read).
    ObjectiveBatch make_batch(const at::Tensor &images, NetOutputs teacher, const BatchTargets &targets);
    // One step of the policy; `step` numbers it from 0 across the run.
    StepStats step(const at::Tensor &images, NetOutputs teacher, const BatchTargets &targets, int64_t step);

    void set_lr(double lr);
    void set_train(bool train);  // the student and the objectives' modules

    ModelHandle &student() { return student_; }
    ObjectiveList &objectives() { return *objectives_; }
    TradeoffPolicy &policy() { return *policy_; }
    FlatArena &arena() { return *arena_; }
    FusedOptimizer &optimizer() { return *optimizer_; }
    bool has_teacher() const { return teacher_.module != nullptr || bool(teacher_.forward); }

    // Everything later steps depend on besides the student's weights: optimizer state,
    // the objectives' modules and their optimizer, the policy's state. load_state() of
    // what state() gave continues the run exactly (std::runtime_error naming what does not fit).
    NamedTensors state() const;
    void load_state(const NamedTensors &state);

private:
    // Rank 0's tensors to every rank: buffers only, or parameters too.
    void broadcast_from_rank0(bool parameters);

    ModelHandle student_, teacher_;
    std::unique_ptr<ObjectiveList> objectives_;
    std::unique_ptr<TradeoffPolicy> policy_;
    StepEngineOptions options_;
    TapRequest student_taps_, teacher_taps_;
    bool teacher_train_mode_ = false;
    at::Tensor cached_teacher_logits_;
    std::unique_ptr<FlatArena> arena_;
    std::unique_ptr<FusedOptimizer> optimizer_;
};

}  // namespace dtokd
