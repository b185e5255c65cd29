// See step_stats.h.
#include "step_stats.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

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

std::vector<std::pair<std::string, double>> StepStatsWindow::fields(int64_t last_step) const {
    std::vector<std::pair<std::string, double>> f = {
        {"step", double(last_step)},
        {"steps", double(count_)},
        {"skipped", double(skipped_)},
        {"exact_steps", double(exact_)},
        {"loss_distill", loss_distill_.value()},
        {"loss_task", loss_task_.value()},
        {"pi1", pi1_.value()},
        {"pi2", pi2_.value()},
        {"cos_ab", cos_.value()},
        {"conflict_fraction", cos_seen_ > 0 ? double(conflicts_) / double(cos_seen_) : StepStats::nan},
        // Geometric mean: the ratio spans orders of magnitude.
        {"norm_ratio", std::exp(ln_norm_ratio_.value())},
        {"log_grad_norm_ratio", std::exp(ln_log_grad_norm_ratio_.value())},
        {"a_dot_g", a_dot_g_.value()},
        {"b_dot_g", b_dot_g_.value()},
        {"improve_distill", improve_distill_.value()},
        {"improve_task", improve_task_.value()},
        {"step_seconds", seconds_.value()},
        {"min_cos", min_cos_.value()},
    };
    for (size_t k = 0; k < names_.size() && k < size_t(kMaxObjectives); k++) {
        const std::string &n = names_[k];
        f.emplace_back("loss_" + n, loss_[k].value());
        f.emplace_back("pi_" + n, pi_[k].value());
        f.emplace_back("grad_norm_" + n, std::exp(ln_grad_norm_[k].value()));
        f.emplace_back("dot_direction_" + n, dot_direction_[k].value());
        f.emplace_back("improve_" + n, improve_[k].value());
    }
    return f;
}

// The window's accumulators in one fixed order (state() and restore() share it).
template <typename Window, typename VisitCount, typename VisitMean>
void visit_window_accumulators(Window &w, VisitCount &&visit_count, VisitMean &&visit_mean) {
    for (auto *c : {&w.count_, &w.skipped_, &w.exact_, &w.conflicts_, &w.cos_seen_}) visit_count(*c);
    for (auto *m : {&w.loss_distill_, &w.loss_task_, &w.pi1_, &w.pi2_, &w.cos_, &w.ln_norm_ratio_,
                    &w.ln_log_grad_norm_ratio_, &w.a_dot_g_, &w.b_dot_g_, &w.improve_distill_, &w.improve_task_,
                    &w.seconds_, &w.min_cos_})
        visit_mean(*m);
    for (auto *a : {&w.loss_, &w.pi_, &w.ln_grad_norm_, &w.dot_direction_, &w.improve_})
        for (auto &m : *a) visit_mean(m);
}

std::vector<double> StepStatsWindow::state() const {
    std::vector<double> out;
    visit_window_accumulators(
        *this, [&](const int64_t &c) { out.push_back(double(c)); },
        [&](const Mean &m) {
            out.push_back(m.sum);
            out.push_back(double(m.n));
        });
    return out;
}

void StepStatsWindow::restore(const std::vector<double> &state) {
    const size_t expected = state_size();
    if (state.size() != expected)
        throw std::invalid_argument("metrics window state has " + std::to_string(state.size()) + " values; expected " +
                                    std::to_string(expected));
    size_t i = 0;
    visit_window_accumulators(
        *this, [&](int64_t &c) { c = int64_t(state[i++]); },
        [&](Mean &m) {
            m.sum = state[i++];
            m.n = int64_t(state[i++]);
        });
}

size_t StepStatsWindow::state_size() const { return state().size(); }

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
