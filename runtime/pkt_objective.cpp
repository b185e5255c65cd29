// `pkt` (Passalis & Tefas 2018, probabilistic knowledge transfer, as mdistiller's PKT.py
// computes it; shared/KD_LOSSES.md) on the pooled embeddings [B, D] (D may differ
// between student and teacher: only B x B similarities are compared):
//   f <- f / (|f| + 1e-7) per row (NaN -> 0);  S = (f f^T + 1) / 2, each row divided by its sum;
//   pkt = mean_{B x B} S_t log((S_t + 1e-7) / (S_s + 1e-7)).
// Deviation: |f| is at::norm, not the reference's sqrt(sum f^2). The values agree; at an
// all-zero row the reference's sqrt has an infinite derivative and its gradient is NaN
// (0 * inf), at::norm's is 0 there, so the gradient stays finite (it is then 1/1e-7 times
// the upstream gradient, as for any row much shorter than the eps).
#include <ATen/ATen.h>

#include <stdexcept>

#include "objective_registry.h"

namespace dtokd {
namespace {

constexpr double kEps = 1e-7;

// The row-normalised similarity distribution of the rows of f [B, D].
at::Tensor similarity(at::Tensor f) {
    f = f / (f.norm(2, {1}, /*keepdim=*/true) + kEps);
    f = at::where(at::isnan(f), at::zeros_like(f), f);
    const at::Tensor s = (f.mm(f.t()) + 1.0) / 2.0;
    return s / s.sum(1, /*keepdim=*/true);
}

void check_pooled(const char *which, const at::Tensor &pooled) {
    if (!pooled.defined() || pooled.dim() < 2)
        throw std::invalid_argument(std::string("pkt: the ") + which + "'s pooled embedding is " +
                                    (pooled.defined() ? std::string(c10::str(pooled.sizes())) : "not given") +
                                    "; expected [batch, features]");
}

class PktObjective : public Objective {
public:
    std::string name() const override { return "pkt"; }
    TapRequest student_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }
    TapRequest teacher_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        check_pooled("student", student.pooled);
        check_pooled("teacher", teacher.pooled);
        if (student.pooled.size(0) != teacher.pooled.size(0))
            throw std::invalid_argument("pkt: pooled batch " + std::to_string(student.pooled.size(0)) +
                                        " in the student and " + std::to_string(teacher.pooled.size(0)) +
                                        " in the teacher; expected the same");
    }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const at::Tensor fs = in.student.pooled, ft = in.teacher.pooled.detach();
        const at::Tensor ss = similarity(fs.reshape({fs.size(0), -1}));
        const at::Tensor st = similarity(ft.reshape({ft.size(0), -1}));
        return ObjectiveValue::of_loss_tensor((st * at::log((st + kEps) / (ss + kEps))).mean());
    }

};

}  // namespace

std::unique_ptr<Objective> make_pkt_objective() { return std::make_unique<PktObjective>(); }

}  // namespace dtokd
