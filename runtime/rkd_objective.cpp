// `rkd`, `rkd_distance`, `rkd_angle` (Park et al. 2019, relational KD, as mdistiller's
// RKD.py computes it; shared/KD_LOSSES.md) on the pooled embeddings e [B, D] (D may
// differ between student and teacher: only relations between samples are compared):
//   pdist(e)_ij = sqrt(max(|e_i|^2 + |e_j|^2 - 2 e_i.e_j, 1e-12)), diagonal 0, divided by
//     the mean of its positive entries;  L_d = smooth_l1(pdist(e_s), pdist(e_t)) (beta 1, mean over B^2)
//   n_ij = normalize(e_j - e_i) (eps 1e-12), A_ijk = n_ij . n_ik;  L_a = smooth_l1(A_s, A_t) (mean over B^3)
//   rkd = w_d L_d + w_a L_a,  rkd_distance = w_d L_d,  rkd_angle = w_a L_a.
// Memory: the angle term holds a few [B, B, B] float64 tensors per network (see angles()).
// Deviation: with a batch of 1 there is no pair; the reference's mean over the empty set
// of positive distances is NaN. Here L_d is 0 with a zero gradient (L_a is 0 there anyway).
#include <ATen/ATen.h>

#include <stdexcept>

#include "objective_registry.h"

namespace dtokd {
namespace {

constexpr double kEps = 1e-12;

// Pairwise Euclidean distances (not squared), divided by their mean over the positive
// entries. The mean is a masked sum over a count, not boolean indexing: the same value
// and gradient without a device-to-host copy. Needs B >= 2.
at::Tensor normalized_pdist(const at::Tensor &e) {
    const at::Tensor sq = e.pow(2).sum(1);
    at::Tensor d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * e.mm(e.t())).clamp_min(kEps).sqrt();
    d = d * (1.0 - at::eye(e.size(0), d.options()));  // zero diagonal; its gradient is 0, as the reference's clone+assign
    const at::Tensor positive = (d > 0).to(d.scalar_type());
    return d / ((d * positive).sum() / positive.sum());
}

// A_ijk = <normalize(e_j - e_i), normalize(e_k - e_i)>, flattened to B^3, from the Gram
// matrix G = e e^T: <e_j - e_i, e_k - e_i> = G_jk - G_ij - G_ik + G_ii and
// |e_j - e_i|^2 = G_jj - 2 G_ij + G_ii. That is O(B^2 D + B^3) work and memory where the
// reference's [B, B, D] differences and their batched product are O(B^3 D): 784-wide
// embeddings at batch 128 took 200 ms a step. Float64 keeps the cancellation in the
// differences of G far below float32's rounding. Pairs closer than 1e-5 of their norms are
// coincident: the reference's difference there is (near) zero and its angle 0, and so is
// it here (also for j == i or k == i). Deviation: the reference divides that zero
// difference by eps = 1e-12, so a sample repeated in a batch gets a gradient ~1e12 times
// the others; here coincident pairs add no gradient.
at::Tensor angles(const at::Tensor &e) {
    const int64_t b = e.size(0);
    const at::Tensor x = e.to(at::kDouble);
    const at::Tensor g = x.mm(x.t());
    const at::Tensor sq_norm = g.diagonal();
    const at::Tensor both = sq_norm.unsqueeze(0) + sq_norm.unsqueeze(1);  // [i, j] = |e_i|^2 + |e_j|^2
    const at::Tensor sq = (both - 2.0 * g).clamp_min(0.0);                  // [i, j] = |e_j - e_i|^2
    const at::Tensor apart = sq.detach() > 1e-10 * both.detach();
    // Coincident pairs get norm 1 (their angles are masked to 0), so no gradient sees 1/0.
    const at::Tensor norm = at::where(apart, sq.clamp_min(kEps * kEps).sqrt(), at::ones_like(sq));
    const at::Tensor dot = g.unsqueeze(0) - g.unsqueeze(2) - g.unsqueeze(1) + sq_norm.view({b, 1, 1});
    const at::Tensor a = dot / (norm.unsqueeze(2) * norm.unsqueeze(1));
    const at::Tensor keep = apart.unsqueeze(2).logical_and(apart.unsqueeze(1));
    return at::where(keep, a, at::zeros_like(a)).to(e.scalar_type()).reshape({-1});
}

void check_pooled(const std::string &name, const char *which, const at::Tensor &pooled) {
    if (!pooled.defined() || pooled.dim() < 2)
        throw std::invalid_argument(name + ": the " + which + "'s pooled embedding is " +
                                    (pooled.defined() ? std::string(c10::str(pooled.sizes())) : "not given") +
                                    "; expected [batch, features]");
}

class RkdObjective : public Objective {
public:
    RkdObjective(std::string name, bool distance, bool angle, const ObjectiveOptions &o)
        : name_(std::move(name)),
          distance_(distance),
          angle_(angle),
          w_d_(o.rkd_distance_weight),
          w_a_(o.rkd_angle_weight) {}
    std::string name() const override { return name_; }
    TapRequest student_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }
    TapRequest teacher_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        check_pooled(name_, "student", student.pooled);
        check_pooled(name_, "teacher", teacher.pooled);
        if (student.pooled.size(0) != teacher.pooled.size(0))
            throw std::invalid_argument(name_ + ": pooled batch " + std::to_string(student.pooled.size(0)) +
                                        " in the student and " + std::to_string(teacher.pooled.size(0)) +
                                        " in the teacher; expected the same");
    }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const at::Tensor s = in.student.pooled.reshape({in.student.pooled.size(0), -1});
        const at::Tensor t = in.teacher.pooled.detach().reshape({in.teacher.pooled.size(0), -1});
        at::Tensor loss = s.sum() * 0.0;  // keeps the graph when no term has a pair (batch of 1)
        if (distance_ && s.size(0) >= 2)
            loss = loss + w_d_ * at::smooth_l1_loss(normalized_pdist(s), normalized_pdist(t), at::Reduction::Mean, 1.0);
        if (angle_) loss = loss + w_a_ * at::smooth_l1_loss(angles(s), angles(t), at::Reduction::Mean, 1.0);
        return ObjectiveValue::of_loss_tensor(loss);
    }

private:
    std::string name_;
    bool distance_, angle_;
    double w_d_, w_a_;
};

}  // namespace

std::unique_ptr<Objective> make_rkd_objective(const std::string &name, const ObjectiveOptions &options) {
    if (name == "rkd") return std::make_unique<RkdObjective>(name, true, true, options);
    if (name == "rkd_distance") return std::make_unique<RkdObjective>(name, true, false, options);
    if (name == "rkd_angle") return std::make_unique<RkdObjective>(name, false, true, options);
    throw std::invalid_argument("make_rkd_objective: '" + name + "'; expected rkd, rkd_distance or rkd_angle");
}

}  // namespace dtokd
