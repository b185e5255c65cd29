// Per-step diagnostics every policy records from numbers it already computed,
// their aggregation per log interval (one JSON object per interval), and the
// guard that stops training after too many consecutive non-finite steps.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"

namespace dtokd {

struct StepStats {
    static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    using PerObjective = std::array<double, kMaxObjectives>;
    static PerObjective nans() {
        PerObjective a;
        a.fill(nan);
        return a;
    }
    int64_t step = 0;
    // Per objective k < objectives (the run's order).
    int objectives = 0;
    PerObjective loss = nans();           // L_k before the update
    PerObjective pi = nans();             // weight of grad log L_k (dto*) or of grad L_k (fixed weights)
    PerObjective grad_norm = nans();      // ||grad log L_k|| (exact policies; dto-logit: in logit space)
    PerObjective dot_direction = nans();  // <grad log L_k, g*> (exact policies)
    PerObjective improve = nans();        // log L_k(before) - log L_k(after) (amortized re-evaluations)
    double min_cos = nan;                 // min over pairs of cos(grad L_k, grad L_l): conflict when < 0
    // The two-objective view (objective 0 = distillation, 1 = task; N = 1: the task),
    // kept for the metrics of earlier runs and the study plots.
    double loss_distill = nan, loss_task = nan;  // before the update
    double pi1 = nan, pi2 = nan;                 // weights of grad log L_distill, grad log L_task
    double cos_ab = nan;                         // cos(grad L_d, grad L_t): conflict when < 0
    double norm_ratio = nan;                     // ||grad L_d|| / ||grad L_t||: dominance
    double log_grad_norm_ratio = nan;            // ||a|| / ||b|| = ||grad log L_d|| / ||grad log L_t||
    double a_dot_g = nan, b_dot_g = nan;         // <grad log L_i, g*> (exact policies)
    double improve_distill = nan, improve_task = nan;  // log L(before) - log L(after) (amortized)
    double direction_norm = nan;                 // ||update direction|| before clipping
    bool exact = false;                          // an exact (two-backward) DTO step
    bool skipped = false;
    std::string skip_reason;
    double seconds = 0;
};

// Means over the steps of one log interval. Fields that were NaN for a step are
// averaged over the steps that had them.
class StepStatsWindow {
public:
    // `names`: the objectives' names, for the per-objective keys (loss_<name>, pi_<name>, ...).
    explicit StepStatsWindow(std::vector<std::string> names = {}) : names_(std::move(names)) {}
    void add(const StepStats &s);
    int64_t count() const { return count_; }
    // The interval as (key, value) in a fixed order: step (the last one), steps, skipped,
    // exact_steps, the means of the pair view, then per objective (loss_<name>, pi_<name>,
    // ...). NaN where no step of the interval had the value (JSON writers print null).
    std::vector<std::pair<std::string, double>> fields(int64_t last_step) const;
    void clear() { *this = StepStatsWindow(names_); }
    // Every accumulator, for checkpoints: a window restored from state() continues as if
    // never interrupted (resume keeps the metrics lines of an uninterrupted run).
    std::vector<double> state() const;
    void restore(const std::vector<double> &state);

private:
    template <typename Window, typename VisitCount, typename VisitMean>
    friend void visit_window_accumulators(Window &w, VisitCount &&visit_count, VisitMean &&visit_mean);
    size_t state_size() const;
    struct Mean {
        double sum = 0;
        int64_t n = 0;
        void add(double v);
        double value() const;
    };
    int64_t count_ = 0, skipped_ = 0, exact_ = 0, conflicts_ = 0, cos_seen_ = 0;
    Mean loss_distill_, loss_task_, pi1_, pi2_, cos_, ln_norm_ratio_, ln_log_grad_norm_ratio_, a_dot_g_, b_dot_g_;
    Mean improve_distill_, improve_task_, seconds_, min_cos_;
    std::vector<std::string> names_;
    std::array<Mean, kMaxObjectives> loss_, pi_, ln_grad_norm_, dot_direction_, improve_;
};

// Fills the two-objective fields of `s` from the per-objective ones (N = 1 or 2).
void fill_pair_view(StepStats &s);

// Throws std::runtime_error after `limit` consecutive skipped steps, naming the
// step and the reason of the last one.
class NonFiniteGuard {
public:
    explicit NonFiniteGuard(int limit) : limit_(limit) {}
    void record(const StepStats &s);
    int64_t total_skipped() const { return total_; }
    int consecutive_skipped() const { return consecutive_; }
    // For resume: the counters as a checkpoint recorded them.
    void restore(int consecutive, int64_t total) {
        consecutive_ = consecutive;
        total_ = total;
    }

private:
    int limit_;
    int consecutive_ = 0;
    int64_t total_ = 0;
};

}  // namespace dtokd
