// See step_stats.h.
#include "step_stats.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace dtokd {

void StepStatsWindow::Mean::add(double v) {
    if (std::isfinite(v)) {
        sum += v;
        n++;
    }
}

double StepStatsWindow::Mean::value() const { return n > 0 ? sum / double(n) : StepStats::nan; }

void StepStatsWindow::add(const StepStats &s) {
    count_++;
    if (s.skipped) {
        skipped_++;
        return;
    }
    exact_ += s.exact ? 1 : 0;
    loss_distill_.add(s.loss_distill);
    loss_task_.add(s.loss_task);
    pi1_.add(s.pi1);
    pi2_.add(s.pi2);
    if (std::isfinite(s.cos_ab)) {
        cos_seen_++;
        conflicts_ += s.cos_ab < 0 ? 1 : 0;
    }
    cos_.add(s.cos_ab);
    if (s.norm_ratio > 0) ln_norm_ratio_.add(std::log(s.norm_ratio));
    if (s.log_grad_norm_ratio > 0) ln_log_grad_norm_ratio_.add(std::log(s.log_grad_norm_ratio));
    a_dot_g_.add(s.a_dot_g);
    b_dot_g_.add(s.b_dot_g);
    improve_distill_.add(s.improve_distill);
    improve_task_.add(s.improve_task);
    seconds_.add(s.seconds);
    min_cos_.add(s.min_cos);
    if (s.objectives > 2 && std::isfinite(s.min_cos)) {  // N = 2: counted from cos_ab above
        cos_seen_++;
        conflicts_ += s.min_cos < 0 ? 1 : 0;
    }
    for (int k = 0; k < s.objectives; k++) {
        loss_[size_t(k)].add(s.loss[size_t(k)]);
        pi_[size_t(k)].add(s.pi[size_t(k)]);
        if (s.grad_norm[size_t(k)] > 0) ln_grad_norm_[size_t(k)].add(std::log(s.grad_norm[size_t(k)]));
        dot_direction_[size_t(k)].add(s.dot_direction[size_t(k)]);
        improve_[size_t(k)].add(s.improve[size_t(k)]);
    }
}

void fill_pair_view(StepStats &s) {
    if (s.objectives == 1) {
        s.loss_task = s.loss[0];
        s.pi1 = 0;
        s.pi2 = s.pi[0];
        return;
    }
    if (s.objectives != 2) return;
    s.loss_distill = s.loss[0];
    s.loss_task = s.loss[1];
    s.pi1 = s.pi[0];
    s.pi2 = s.pi[1];
    s.a_dot_g = s.dot_direction[0];
    s.b_dot_g = s.dot_direction[1];
    s.improve_distill = s.improve[0];
    s.improve_task = s.improve[1];
}

namespace {
void put(std::ostringstream &os, const char *key, double v) {
    os << ",\"" << key << "\":";
    if (std::isfinite(v))
        os << v;
    else
        os << "null";
}
}  // namespace

std::string StepStatsWindow::to_json(int64_t last_step) const {
    std::ostringstream os;
    os.precision(8);
    os << "{\"step\":" << last_step << ",\"steps\":" << count_ << ",\"skipped\":" << skipped_
       << ",\"exact_steps\":" << exact_;
    put(os, "loss_distill", loss_distill_.value());
    put(os, "loss_task", loss_task_.value());
    put(os, "pi1", pi1_.value());
    put(os, "pi2", pi2_.value());
    put(os, "cos_ab", cos_.value());
    put(os, "conflict_fraction", cos_seen_ > 0 ? double(conflicts_) / double(cos_seen_) : StepStats::nan);
    // Geometric mean: the ratio spans orders of magnitude.
    put(os, "norm_ratio", std::exp(ln_norm_ratio_.value()));
    put(os, "log_grad_norm_ratio", std::exp(ln_log_grad_norm_ratio_.value()));
    put(os, "a_dot_g", a_dot_g_.value());
    put(os, "b_dot_g", b_dot_g_.value());
    put(os, "improve_distill", improve_distill_.value());
    put(os, "improve_task", improve_task_.value());
    put(os, "step_seconds", seconds_.value());
    put(os, "min_cos", min_cos_.value());
    for (size_t k = 0; k < names_.size() && k < size_t(kMaxObjectives); k++) {
        const std::string &n = names_[k];
        put(os, ("loss_" + n).c_str(), loss_[k].value());
        put(os, ("pi_" + n).c_str(), pi_[k].value());
        put(os, ("grad_norm_" + n).c_str(), std::exp(ln_grad_norm_[k].value()));
        put(os, ("dot_direction_" + n).c_str(), dot_direction_[k].value());
        put(os, ("improve_" + n).c_str(), improve_[k].value());
    }
    os << "}";
    return os.str();
}

void NonFiniteGuard::record(const StepStats &s) {
    if (!s.skipped) {
        consecutive_ = 0;
        return;
    }
    total_++;
    if (++consecutive_ >= limit_) {
        std::ostringstream os;
        os << "training stopped at step " << s.step << ": " << consecutive_
           << " consecutive steps skipped (limit " << limit_ << "); last reason: " << s.skip_reason;
        throw std::runtime_error(os.str());
    }
}

}  // namespace dtokd
