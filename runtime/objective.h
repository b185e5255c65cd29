// One objective of a run, as the registry makes it (objective_registry.h): a loss
// over (student outputs, teacher outputs, labels, sample indices) that may own
// trainable modules. It says which network taps it reads, so a step keeps only those.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

// Which intermediate outputs of a network an objective reads (logits always come).
struct TapRequest {
    bool feats = false;         // per-stage outputs after ReLU
    bool preact_feats = false;  // the same before the last ReLU
    bool pooled = false;        // the pooled embedding
    bool any() const { return feats || preact_feats || pooled; }
    static TapRequest of(bool feats, bool preact_feats, bool pooled) { return {feats, preact_feats, pooled}; }
    TapRequest &operator|=(const TapRequest &o) {
        feats |= o.feats;
        preact_feats |= o.preact_feats;
        pooled |= o.pooled;
        return *this;
    }
};

// A network's outputs as objectives see them (the pipeline fills it from the model).
struct NetOutputs {
    at::Tensor logits;
    std::vector<at::Tensor> feats, preact_feats;
    at::Tensor pooled;
};

// The logit-level KD kernel's results for this batch, computed once and shared by
// every objective that reads them (ce and kd come from one fused pass).
struct LogitKdResults {
    KdLosses losses;
    at::Tensor grad_task, grad_distill;  // dL/d(student logits)
};

// What a batch carries besides the images, for the objectives that read it.
struct BatchTargets {
    BatchTargets() = default;
    // {labels} alone for objectives that read only labels; the rest as they are loaded.
    BatchTargets(at::Tensor labels_, at::Tensor indices_ = {}, at::Tensor contrast_indices_ = {}, int epoch_ = 0)
        : labels(std::move(labels_)),
          indices(std::move(indices_)),
          contrast_indices(std::move(contrast_indices_)),
          epoch(epoch_) {}
    at::Tensor labels;            // int64 [B]
    at::Tensor indices;           // int64 [B]: sample indices in the dataset (undefined when not loaded)
    at::Tensor contrast_indices;  // int64 [B, 1 + K]: own index, then K negatives (objectives that ask for them)
    int epoch = 0;                // 0-based epoch of the step (warmup ramps)
};

struct ObjectiveInputs {
    const NetOutputs &student;
    const NetOutputs &teacher;  // logits only, unless an objective asked for teacher taps
    const at::Tensor &labels;
    const at::Tensor &indices;  // sample indices in the dataset (undefined when not loaded)
    // The fused KD kernel on (student logits, teacher logits, labels), run on first use.
    std::function<const LogitKdResults &()> logit_kd;
    at::Tensor contrast_indices;  // see BatchTargets
    int epoch = 0;                // 0-based
    // False when the losses are re-evaluated after the update (dto-amortized): an
    // objective with state (memory banks) must then leave it as it is.
    bool update_state = true;
};

// Facts about the data and the teacher an objective may need once, before training.
struct PrepareContext {
    int64_t num_samples = 0;  // training set size (memory banks)
    int64_t num_classes = 0;
    // Per teacher preact_feats entry: the (weight, bias) of the BatchNorm whose output it is;
    // undefined tensors where the entry is not a BatchNorm output or the teacher does not say.
    std::vector<std::pair<at::Tensor, at::Tensor>> teacher_preact_bn;
    std::string teacher_name;  // for messages ("" when unknown)
};

// One objective's value on a batch: either the loss and its gradient w.r.t. the
// student logits (backward starts at the logits, no loss graph), or a scalar loss
// tensor with its autograd graph.
struct ObjectiveValue {
    double loss = 0;
    at::Tensor logit_grad;   // logit-level objectives
    at::Tensor loss_tensor;  // autograd objectives
    // A loss on a GPU whose value is not read yet (`loss` is NaN until then): reading it
    // would wait for the device, so ObjectiveBatch reads all of a batch's in one copy
    // (read_pending_losses). Undefined on the CPU, where `loss` is read at once.
    at::Tensor pending_loss;
    // An autograd objective's value: the scalar loss tensor and its value.
    static ObjectiveValue of_loss_tensor(at::Tensor loss);
    // `loss` from a scalar tensor: at once on the CPU, pending on a GPU.
    void set_loss(const at::Tensor &scalar);
};

// Reads every pending loss of `values` to the host in one copy (one wait for the device).
void read_pending_losses(std::vector<ObjectiveValue> &values);

class Objective {
public:
    virtual ~Objective() = default;
    virtual std::string name() const = 0;
    virtual TapRequest student_taps() const { return {}; }
    virtual TapRequest teacher_taps() const { return {}; }
    virtual bool needs_teacher() const { return true; }
    // True when the loss is a function of the student logits alone (`dto-logit`).
    virtual bool logits_only() const { return false; }
    // True when the reference runs the teacher in train mode (BatchNorm on batch statistics).
    virtual bool teacher_train_mode() const { return false; }
    // K > 0: every batch must carry K class-aware negative sample indices per sample
    // (BatchTargets::contrast_indices).
    virtual int64_t contrast_negatives() const { return 0; }

    // Called once before training with one probe forward of each network (eval mode,
    // no gradients): builds trainable modules from the feature shapes and checks that
    // the taps this objective reads exist. Throws std::invalid_argument naming the tap.
    virtual void prepare(const NetOutputs & /*student*/, const NetOutputs & /*teacher*/,
                         const PrepareContext & /*context*/) {}
    void prepare(const NetOutputs &student, const NetOutputs &teacher) { prepare(student, teacher, {}); }
    // The trainable parts this objective owns (null when none); valid after prepare().
    virtual torch::nn::Module *module() { return nullptr; }

    // The loss on a batch; with graph when grad mode is on.
    virtual ObjectiveValue evaluate(const ObjectiveInputs &in) = 0;
};

}  // namespace dtokd
