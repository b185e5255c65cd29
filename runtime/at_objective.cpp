// `at` (Zagoruyko & Komodakis 2017, attention transfer, as mdistiller's AT.py computes
// it; shared/KD_LOSSES.md): for the stage features feats[1:] (post-ReLU, the stem f0
// left out), paired in order and cut to the shorter list (the reference's zip),
//   a(f) = normalize_rows(mean_c f^p reshaped [B, H W])   (L2, eps 1e-12)
//   at = sum_stages mean_{b, hw} (a(f_s) - a(f_t))^2
// A larger map is first adaptive-average-pooled to the smaller one's size (attention maps
// do not care about channel counts, so no module is needed). The reference compares the
// heights only and pools to a square of the smaller height; for square maps (every model
// here) this is the same as pooling each side to the smaller size, which is what is done.
#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>

#include "objective_registry.h"

namespace dtokd {
namespace {

class AtObjective : public Objective {
public:
    explicit AtObjective(const ObjectiveOptions &o) : p_(o.at_p) {
        if (!(p_ > 0)) throw std::invalid_argument("at: exponent p " + std::to_string(p_) + "; expected > 0");
    }
    std::string name() const override { return "at"; }
    TapRequest student_taps() const override { return TapRequest::of(/*feats=*/true, false, false); }
    TapRequest teacher_taps() const override { return TapRequest::of(/*feats=*/true, false, false); }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        check("student", student.feats);
        check("teacher", teacher.feats);
        for (size_t i = 1; i < stage_pairs(student, teacher) + 1; i++)
            if (student.feats[i].size(0) != teacher.feats[i].size(0))
                throw std::invalid_argument("at: stage " + std::to_string(i) + " has batch " +
                                            std::to_string(student.feats[i].size(0)) + " in the student and " +
                                            std::to_string(teacher.feats[i].size(0)) +
                                            " in the teacher; expected the same");
    }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        const size_t pairs = stage_pairs(in.student, in.teacher);
        if (pairs == 0) throw std::invalid_argument("at: evaluate() without stage features (prepare() checks them)");
        at::Tensor loss;
        for (size_t i = 1; i <= pairs; i++) {
            at::Tensor fs = in.student.feats[i], ft = in.teacher.feats[i].detach();
            const int64_t h = std::min(fs.size(2), ft.size(2)), w = std::min(fs.size(3), ft.size(3));
            if (fs.size(2) != h || fs.size(3) != w) fs = at::adaptive_avg_pool2d(fs, {h, w});
            if (ft.size(2) != h || ft.size(3) != w) ft = at::adaptive_avg_pool2d(ft, {h, w});
            const at::Tensor term = (attention(fs) - attention(ft)).pow(2).mean();
            loss = loss.defined() ? loss + term : term;
        }
        return ObjectiveValue::of_loss_tensor(loss);
    }

private:
    static size_t stage_pairs(const NetOutputs &s, const NetOutputs &t) {
        const size_t n = std::min(s.feats.size(), t.feats.size());
        return n > 0 ? n - 1 : 0;
    }
    static void check(const char *which, const std::vector<at::Tensor> &feats) {
        if (feats.size() < 2)
            throw std::invalid_argument(std::string("at: the ") + which + " gives " + std::to_string(feats.size()) +
                                        " stage features; expected at least 2 (the stem f0 and one stage after it)");
        for (size_t i = 1; i < feats.size(); i++)
            if (!feats[i].defined() || feats[i].dim() != 4)
                throw std::invalid_argument(std::string("at: the ") + which + "'s feats[" + std::to_string(i) +
                                            "] is " + (feats[i].defined() ? std::string(c10::str(feats[i].sizes())) : "undefined") +
                                            "; expected a [batch, channels, height, width] map");
    }
    // mean over channels of f^p, flattened per sample and L2-normalised (F.normalize's eps).
    at::Tensor attention(const at::Tensor &f) const {
        const at::Tensor a = f.pow(p_).mean(1).reshape({f.size(0), -1});
        return a / a.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    }
    double p_;
};

}  // namespace

std::unique_ptr<Objective> make_at_objective(const ObjectiveOptions &options) {
    return std::make_unique<AtObjective>(options);
}

}  // namespace dtokd
