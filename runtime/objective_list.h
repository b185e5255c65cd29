// The objectives of a run, kept across steps: their names and taps, and the
// trainable modules they own (a regressor, connectors) with one optimizer of the
// same kind and hyper-parameters as the student's (torch::optim; these modules are
// small and not part of the trade-off, so the fused arena kernels do not serve them).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fused_optimizer.h"
#include "objective.h"

namespace torch::optim {
class Optimizer;
}

namespace dtokd {

class ObjectiveList {
public:
    // 1..kMaxObjectives objectives with distinct names.
    explicit ObjectiveList(std::vector<std::unique_ptr<Objective>> objectives);
    ~ObjectiveList();

    int size() const { return int(objectives_.size()); }
    Objective &at(int k) { return *objectives_.at(size_t(k)); }
    std::vector<std::string> names() const;
    TapRequest student_taps() const;
    TapRequest teacher_taps() const;
    bool needs_teacher() const;
    // The first objective that is not a function of the student logits alone ("" when none).
    std::string first_not_logits_only() const;
    // The first objective that wants the teacher in train mode ("" when none).
    std::string teacher_train_mode() const;
    // The most negatives per sample any objective asks for (0: no contrast indices).
    int64_t contrast_negatives() const;

    // Once, before training, with one probe forward of each network: builds the
    // objectives' modules, then their optimizer.
    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &context,
                 const OptimizerConfig &optimizer);
    void prepare(const NetOutputs &student, const NetOutputs &teacher, const OptimizerConfig &optimizer) {
        prepare(student, teacher, PrepareContext{}, optimizer);
    }

    bool has_modules() const { return !module_params_.empty(); }
    void set_train(bool train);
    void set_lr(double lr);
    void zero_module_grads();
    // Objective k's parameter gradients *= scale[k], then one optimizer step.
    void step_modules(const std::vector<double> &scale);
    // The modules' defined parameter gradients, in parameter order.
    std::vector<at::Tensor> module_gradients();
    // Every module (null where an objective owns none), for buffer snapshots.
    std::vector<torch::nn::Module *> modules();
    // Parameters and buffers as "<objective>.<name>" (checkpoint entries).
    std::vector<std::pair<std::string, at::Tensor>> named_state();
    // Copies entries named as named_state() names them back into the modules; every
    // parameter and buffer must be there with its shape (std::runtime_error naming it).
    void load_named_state(const std::vector<std::pair<std::string, at::Tensor>> &state);
    // The modules' optimizer state (momentum or Adam moments, step counts) as bytes in a
    // uint8 tensor (empty when no objective owns a module), and back.
    at::Tensor optimizer_state() const;
    void load_optimizer_state(const at::Tensor &bytes);

private:
    std::vector<std::unique_ptr<Objective>> objectives_;
    std::vector<std::pair<int, at::Tensor>> module_params_;  // (objective, parameter)
    std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace dtokd
