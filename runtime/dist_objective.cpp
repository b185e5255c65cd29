// `dist`, `dist_inter`, `dist_intra` (Huang et al. 2022, DIST, as hunto's
// image_classification_sota lib/models/losses/dist_kd.py computes it; shared/KD_LOSSES.md):
// with y = softmax(z / tau) [B, C] for student and teacher and the row-wise Pearson
// correlation pearson(a, b) = <a - mean a, b - mean b> / (|a - mean a| |b - mean b| + 1e-8),
//   inter = 1 - mean_b pearson(y_s[b, :], y_t[b, :])      (over classes, per sample)
//   intra = 1 - mean_c pearson(y_s[:, c], y_t[:, c])      (over the batch, per class)
//   dist = tau^2 (beta inter + gamma intra),  dist_inter = tau^2 beta inter,
//   dist_intra = tau^2 gamma intra.
// intra depends on the whole batch; with a batch of 1 the centred columns are 0, the
// correlation is 0 (the 1e-8 keeps it finite) and intra = 1 with zero gradient, as in
// the reference. Logit-level: the gradient w.r.t. the student logits comes from logit_autograd.
#include <ATen/ATen.h>

#include <stdexcept>

#include "logit_autograd.h"
#include "objective_registry.h"

namespace dtokd {
namespace {

// 1 - mean over rows of the Pearson correlation of a's and b's rows.
at::Tensor one_minus_mean_pearson(const at::Tensor &a, const at::Tensor &b) {
    const at::Tensor ac = a - a.mean(1, /*keepdim=*/true), bc = b - b.mean(1, /*keepdim=*/true);
    const at::Tensor r = (ac * bc).sum(1) / (ac.norm(2, {1}) * bc.norm(2, {1}) + 1e-8);
    return 1.0 - r.mean();
}

class DistObjective : public Objective {
public:
    DistObjective(std::string name, bool inter, bool intra, const ObjectiveOptions &o)
        : name_(std::move(name)), inter_(inter), intra_(intra), beta_(o.dist_beta), gamma_(o.dist_gamma), tau_(o.temperature) {
        if (!(tau_ > 0)) throw std::invalid_argument(name_ + ": temperature " + std::to_string(tau_) + "; expected > 0");
    }
    std::string name() const override { return name_; }
    bool logits_only() const override { return true; }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        check_logit_pair(name_, student, teacher);
    }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const at::Tensor yt = at::softmax(in.teacher.logits.detach() / tau_, 1);
        return logit_autograd(in.student.logits, [&](const at::Tensor &zs) {
            const at::Tensor ys = at::softmax(zs / tau_, 1);
            at::Tensor loss = at::zeros({}, zs.options());
            if (inter_) loss = loss + (tau_ * tau_ * beta_) * one_minus_mean_pearson(ys, yt);
            if (intra_) loss = loss + (tau_ * tau_ * gamma_) * one_minus_mean_pearson(ys.t(), yt.t());
            return loss;
        });
    }

private:
    std::string name_;
    bool inter_, intra_;
    double beta_, gamma_, tau_;
};

}  // namespace

std::unique_ptr<Objective> make_dist_objective(const std::string &name, const ObjectiveOptions &options) {
    if (name == "dist") return std::make_unique<DistObjective>(name, true, true, options);
    if (name == "dist_inter") return std::make_unique<DistObjective>(name, true, false, options);
    if (name == "dist_intra") return std::make_unique<DistObjective>(name, false, true, options);
    throw std::invalid_argument("make_dist_objective: '" + name + "'; expected dist, dist_inter or dist_intra");
}

}  // namespace dtokd
