// `dkd`, `dkd_tckd`, `dkd_nckd` (Zhao et al. 2022, Decoupled KD, as mdistiller's DKD.py
// computes it; shared/KD_LOSSES.md): with p = softmax(z / T) for student and teacher,
//   TCKD = T^2 / B * sum_b KL([p_gt, 1 - p_gt]_t || [p_gt, 1 - p_gt]_s)   (binary target vs rest)
//   NCKD = T^2 / B * sum_b KL(softmax(z_t / T - 1000 gt) || softmax(z_s / T - 1000 gt))
// (the -1000 on the target logit is the reference's softmax over the C - 1 other classes);
//   dkd = w (alpha TCKD + beta NCKD),  dkd_tckd = w alpha TCKD,  dkd_nckd = w beta NCKD,
// w = warmup_factor(epoch) (loss_warmup.h). The split terms let a trade-off policy weigh
// TCKD and NCKD as two objectives; with weights (1, 1) they sum to dkd. Logit-level:
// the gradient w.r.t. the student logits comes from logit_autograd.
#include <ATen/ATen.h>

#include <stdexcept>

#include "logit_autograd.h"
#include "loss_warmup.h"
#include "objective_registry.h"

namespace dtokd {
namespace {

// Reduces class probabilities [B, C] to [p(target), p(others)] per row, as the
// reference's cat_mask does (a masked sum each, not 1 - p(target)).
at::Tensor target_vs_rest(const at::Tensor &p, const at::Tensor &gt_mask, const at::Tensor &other_mask) {
    return at::cat({(p * gt_mask).sum(1, /*keepdim=*/true), (p * other_mask).sum(1, /*keepdim=*/true)}, 1);
}

// sum over all entries of q (log q - log_p), as F.kl_div(log_p, q, reduction='sum')
// (xlogy: a zero teacher probability contributes 0, as in kl_div).
at::Tensor kl_sum(const at::Tensor &log_p, const at::Tensor &q) { return (at::xlogy(q, q) - q * log_p).sum(); }

class DkdObjective : public Objective {
public:
    DkdObjective(std::string name, bool tckd, bool nckd, const ObjectiveOptions &o)
        : name_(std::move(name)),
          tckd_(tckd),
          nckd_(nckd),
          alpha_(o.dkd_alpha),
          beta_(o.dkd_beta),
          t_(o.temperature),
          warmup_epochs_(o.warmup_epochs) {
        if (!(t_ > 0)) throw std::invalid_argument(name_ + ": temperature " + std::to_string(t_) + "; expected > 0");
    }
    std::string name() const override { return name_; }
    bool logits_only() const override { return true; }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        check_logit_pair(name_, student, teacher);
        const int64_t classes = student.logits.size(1);
        // With two classes NCKD's "other classes" are one class: the term is identically 0
        // and the split is meaningless (mdistiller issue #60).
        if (classes < 3)
            throw std::invalid_argument(name_ + ": the student has " + std::to_string(classes) +
                                        " classes; DKD needs at least 3 (target vs two or more non-target classes)");
    }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        if (!in.labels.defined() || in.labels.dim() != 1 || in.labels.size(0) != in.student.logits.size(0))
            throw std::invalid_argument(name_ + ": expected labels [" + std::to_string(in.student.logits.size(0)) +
                                        "] with the batch");
        const double w = warmup_factor(in.epoch, warmup_epochs_);
        const at::Tensor zt = in.teacher.logits.detach();
        const int64_t batch = zt.size(0);
        return logit_autograd(in.student.logits, [&](const at::Tensor &zs) {
            const at::Tensor gt = at::zeros_like(zs).scatter_(1, in.labels.reshape({-1, 1}), 1.0);
            const double scale = t_ * t_ / double(batch);
            at::Tensor loss = at::zeros({}, zs.options());
            if (tckd_) {
                const at::Tensor other = 1.0 - gt;
                const at::Tensor bs = target_vs_rest(at::softmax(zs / t_, 1), gt, other);
                const at::Tensor bt = target_vs_rest(at::softmax(zt / t_, 1), gt, other);
                loss = loss + (alpha_ * scale) * kl_sum(at::log(bs), bt);  // plain log, no eps (reference)
            }
            if (nckd_) {
                const at::Tensor log_ps = at::log_softmax(zs / t_ - 1000.0 * gt, 1);
                const at::Tensor pt = at::softmax(zt / t_ - 1000.0 * gt, 1);
                loss = loss + (beta_ * scale) * kl_sum(log_ps, pt);
            }
            return w * loss;
        });
    }

private:
    std::string name_;
    bool tckd_, nckd_;
    double alpha_, beta_, t_;
    int warmup_epochs_;
};

}  // namespace

std::unique_ptr<Objective> make_dkd_objective(const std::string &name, const ObjectiveOptions &options) {
    if (name == "dkd") return std::make_unique<DkdObjective>(name, true, true, options);
    if (name == "dkd_tckd") return std::make_unique<DkdObjective>(name, true, false, options);
    if (name == "dkd_nckd") return std::make_unique<DkdObjective>(name, false, true, options);
    throw std::invalid_argument("make_dkd_objective: '" + name + "'; expected dkd, dkd_tckd or dkd_nckd");
}

}  // namespace dtokd
