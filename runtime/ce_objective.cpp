// `ce`: the task loss, mean cross-entropy to the labels (optional label smoothing),
// from the fused KD kernel's pass over the logits (docs/method.md "Losses").
#include <ATen/ATen.h>

#include "objective_registry.h"

namespace dtokd {
namespace {

class CeObjective : public Objective {
public:
    std::string name() const override { return "ce"; }
    bool needs_teacher() const override { return false; }
    bool logits_only() const override { return true; }
    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const LogitKdResults &r = in.logit_kd();
        ObjectiveValue v;
        v.loss = r.losses.task;
        v.logit_grad = r.grad_task;
        return v;
    }
};

}  // namespace

std::unique_ptr<Objective> make_ce_objective() { return std::make_unique<CeObjective>(); }

}  // namespace dtokd
