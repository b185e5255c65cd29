// `kd` (Hinton et al. 2015): T^2 * mean KL(softmax(z_t/T) || softmax(z_s/T)), from
// the fused KD kernel's pass over the logits (docs/method.md "Losses").
#include <ATen/ATen.h>

#include "objective_registry.h"

namespace dtokd {
namespace {

class KdObjective : public Objective {
public:
    std::string name() const override { return "kd"; }
    bool logits_only() const override { return true; }
    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const LogitKdResults &r = in.logit_kd();
        ObjectiveValue v;
        v.loss = r.losses.distill;
        v.logit_grad = r.grad_distill;
        return v;
    }
};

}  // namespace

std::unique_ptr<Objective> make_kd_objective() { return std::make_unique<KdObjective>(); }

}  // namespace dtokd
