// The trade-off policies over N objectives (see tradeoff_policy.h, docs/method.md).
// Shared pieces: the non-finite checks, clipping from a known squared norm, the
// single-backward step (fixed weights, dto-logit, dto-amortized) and the exact
// N-backward step (dto, dto-amortized's refresh). With N = 2 every policy runs the
// same float operations as the two-objective code it replaced (the 2-gradient Gram
// kernel and Theorem 3.1's closed form), so results are bit-for-bit the same.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "collective.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "min_norm.h"
#include "objective_set.h"
#include "tradeoff_policy.h"

namespace dtokd {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<double> losses_of(const StepStats &s) { return {s.loss.begin(), s.loss.begin() + s.objectives}; }

// This rank's losses into s (the mean over its share of the batch).
void local_losses(const ObjectiveSet &obj, StepStats &s) {
    s.objectives = obj.size();
    if (s.objectives < 1 || s.objectives > kMaxObjectives)
        throw std::invalid_argument("a step has " + std::to_string(s.objectives) + " objectives; expected 1.." +
                                    std::to_string(kMaxObjectives));
    for (int k = 0; k < s.objectives; k++) s.loss[size_t(k)] = obj.loss(k);
}

// Data-parallel: the ranks' equal shares of the global batch make the global mean loss
// the mean of the ranks' losses. A non-finite loss on any rank reaches every rank, so
// all of them skip the step together.
void agree_on_losses(const PolicyContext &ctx, StepStats &s) {
    if (!distributed(ctx.collective)) return;
    std::vector<double> l(s.loss.begin(), s.loss.begin() + s.objectives);
    sum_values(*ctx.collective, l);
    for (int k = 0; k < s.objectives; k++) s.loss[size_t(k)] = l[size_t(k)] / ctx.collective->world_size();
}

// False (and a skip reason naming the objective) when a loss is not finite.
bool losses_finite(const ObjectiveSet &obj, StepStats &s) {
    int bad = -1;
    for (int k = 0; k < s.objectives && bad < 0; k++)
        if (!std::isfinite(s.loss[size_t(k)])) bad = k;
    fill_pair_view(s);
    if (bad < 0) return true;
    std::ostringstream os;
    os << "non-finite loss (L_" << obj.name(bad) << "):";
    for (int k = 0; k < s.objectives; k++) os << " L_" << obj.name(k) << "=" << s.loss[size_t(k)];
    s.skipped = true;
    s.skip_reason = os.str();
    return false;
}

// Records the (global) losses; false when one is not finite.
bool read_losses(const ObjectiveSet &obj, const PolicyContext &ctx, StepStats &s) {
    local_losses(obj, s);
    agree_on_losses(ctx, s);
    return losses_finite(obj, s);
}

// Data-parallel: the mean over ranks of the gradient arenas and the objectives' module
// gradients (the gradient of the global batch's mean loss), in one collective call.
void average_gradients(ObjectiveSet &obj, PolicyContext &ctx, int arenas) {
    if (!distributed(ctx.collective)) return;
    std::vector<at::Tensor> grads;
    for (int k = 0; k < arenas; k++) grads.push_back(ctx.arena.gradients(k));
    for (const at::Tensor &g : obj.module_gradients()) grads.push_back(g);
    ctx.collective->sum(grads);
    const double inv = 1.0 / ctx.collective->world_size();
    for (at::Tensor &g : grads) g.mul_(inv);
}

double clip_scale(double clip_norm, double sq_norm) {
    if (clip_norm <= 0) return 1.0;
    const double norm = std::sqrt(sq_norm);
    return norm > clip_norm ? clip_norm / norm : 1.0;
}

std::vector<double> unit(int n, int k) {
    std::vector<double> e(size_t(n), 0.0);
    e[size_t(k)] = 1.0;
    return e;
}

// One backward of sum_k weights[k] L_k into arena 0, then one fused update. The
// squared norm pass doubles as the non-finite gradient check and gives clipping.
bool single_backward_step(ObjectiveSet &obj, PolicyContext &ctx, const PolicyConfig &cfg,
                          const std::vector<double> &weights, StepStats &s) {
    ctx.arena.route_gradients_to(0);
    obj.zero_module_grads();
    obj.backward(weights, /*retain_graph=*/false);
    average_gradients(obj, ctx, 1);
    at::Tensor &g = ctx.arena.gradients(0);
    const double sq = log_gram(g, g, 1.0, 1.0, cfg.eps, ctx.backend).g11;
    if (!std::isfinite(sq)) {
        s.skipped = true;
        s.skip_reason = "non-finite gradient (||g||^2 = " + std::to_string(sq) + ")";
        return false;
    }
    s.direction_norm = std::sqrt(sq);
    ctx.optimizer.step(ctx.arena.params(), single_direction(g, clip_scale(cfg.clip_norm, sq)));
    return true;
}

// pi* and the diagnostics from one log-gradient Gram. N = 2 goes through the
// two-objective closed form (Theorem 3.1) exactly as before; N >= 3 through the QP.
struct Solved {
    GramMatrix gram;
    std::vector<double> pi;
    double sq_norm = 0;  // ||g*||^2
};

Solved solve(const GramMatrix &g) {
    Solved out;
    out.gram = g;
    if (g.n == 2) {
        const Gram g2{g(0, 0), g(0, 1), g(1, 1)};
        const Tradeoff t = min_norm_tradeoff(g2);
        out.pi = {t.pi1, t.pi2};
        out.sq_norm = dto_direction_sq_norm(g2, t.pi1, t.pi2);
    } else {
        out.pi = min_norm_weights(g);
        out.sq_norm = dto_direction_sq_norm(g, out.pi);
    }
    return out;
}

// The first objective whose log-gradient Gram row is not finite (-1: all finite).
int non_finite_row(const GramMatrix &g) {
    for (int k = 0; k < g.n; k++)
        for (int l = 0; l < g.n; l++)
            if (!std::isfinite(g(k, l))) return std::isfinite(g(k, k)) ? l : k;
    return -1;
}

void record_tradeoff(const Solved &sol, const std::vector<double> &losses, double eps, StepStats &s) {
    const GramMatrix &g = sol.gram;
    const GramDiagnostics d = gram_diagnostics(g, sol.pi);  // N = 2: bit-identical to the pair's formulas
    for (int k = 0; k < g.n; k++) {
        s.pi[size_t(k)] = sol.pi[size_t(k)];
        s.grad_norm[size_t(k)] = d.norms[size_t(k)];
        s.dot_direction[size_t(k)] = d.dot_direction[size_t(k)];
    }
    s.min_cos = d.min_cosine;
    if (g.n == 2) {
        s.cos_ab = d.cosines[1];
        const double ld = std::max(losses[0], eps), lt = std::max(losses[1], eps);
        s.log_grad_norm_ratio = g(1, 1) > 0 ? std::sqrt(g(0, 0) / g(1, 1)) : StepStats::nan;
        s.norm_ratio = s.log_grad_norm_ratio * ld / lt;
    }
    s.direction_norm = std::sqrt(sol.sq_norm);
    fill_pair_view(s);
}

GramMatrix gram_of(const std::vector<const at::Tensor *> &grads, const std::vector<double> &losses, double eps,
                   KernelBackend backend) {
    if (grads.size() != 2) return log_gram(grads, losses, eps, backend);
    const Gram g2 = log_gram(*grads[0], *grads[1], losses[0], losses[1], eps, backend);
    GramMatrix g;
    g.n = 2;
    g(0, 0) = g2.g11;
    g(0, 1) = g(1, 0) = g2.g12;
    g(1, 1) = g2.g22;
    return g;
}

class FixedWeightPolicy : public TradeoffPolicy {
public:
    FixedWeightPolicy(std::string name, PolicyConfig cfg) : name_(std::move(name)), cfg_(std::move(cfg)) {}
    std::string name() const override { return name_; }
    StepStats step(ObjectiveSet &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        s.step = step;
        const std::vector<double> w = weights_for(obj);
        for (size_t k = 0; k < w.size(); k++) s.pi[k] = w[k];
        if (read_losses(obj, ctx, s) && single_backward_step(obj, ctx, cfg_, w, s))
            obj.step_modules(std::vector<double>(w.size(), 1.0));  // w_k dL_k/dphi_k, as the baselines step
        fill_pair_view(s);
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    std::vector<double> weights_for(const ObjectiveSet &obj) const {
        const int n = obj.size();
        std::vector<double> w = cfg_.weights;
        if (w.empty()) {
            if (name_ == "kd" && n == 2) {
                w = {cfg_.alpha_distill, cfg_.alpha_task};
            } else if (name_ == "ce") {  // the task loss alone: the objective named "ce"
                w.assign(size_t(n), 0.0);
                for (int k = 0; k < n; k++)
                    if (obj.name(k) == "ce") w[size_t(k)] = 1.0;
                if (std::find(w.begin(), w.end(), 1.0) == w.end())
                    throw std::invalid_argument("ce: no objective named 'ce' among the " + std::to_string(n));
            } else {
                w.assign(size_t(n), 1.0);
            }
        }
        if (int(w.size()) != n)
            throw std::invalid_argument(name_ + ": " + std::to_string(w.size()) + " weights for " + std::to_string(n) +
                                        " objectives; expected one weight per objective");
        return w;
    }
    std::string name_;
    PolicyConfig cfg_;
};

// Exact DTO-KD step: N backward passes into N arenas, the N x N log-gradient Gram
// in one pass, the min-norm point of the convex hull, the fused N-gradient update.
StepStats exact_dto_step(ObjectiveSet &obj, PolicyContext &ctx, const PolicyConfig &cfg, int64_t step,
                         std::vector<double> *pi_out = nullptr) {
    StepStats s;
    s.step = step;
    s.exact = true;
    if (!read_losses(obj, ctx, s)) return s;
    const int n = s.objectives;
    if (ctx.arena.gradient_arenas() < n)
        throw std::invalid_argument("exact DTO over " + std::to_string(n) + " objectives needs " + std::to_string(n) +
                                    " gradient arenas; the arena has " + std::to_string(ctx.arena.gradient_arenas()));
    obj.zero_module_grads();
    std::vector<const at::Tensor *> grads;
    for (int k = 0; k < n; k++) {
        ctx.arena.route_gradients_to(k);
        obj.backward(unit(n, k), /*retain_graph=*/k + 1 < n);
        grads.push_back(&ctx.arena.gradients(k));
    }
    average_gradients(obj, ctx, n);
    const std::vector<double> losses = losses_of(s);
    const GramMatrix g = gram_of(grads, losses, cfg.eps, ctx.backend);
    const int bad = non_finite_row(g);
    if (bad >= 0) {
        s.skipped = true;
        s.skip_reason = "non-finite gradient (grad L_" + obj.name(bad) + ")";
        return s;
    }
    const Solved sol = solve(g);
    record_tradeoff(sol, losses, cfg.eps, s);
    const double clip = clip_scale(cfg.clip_norm, sol.sq_norm);
    ctx.optimizer.step(ctx.arena.params(),
                       n == 2 ? dto_direction(*grads[0], *grads[1], sol.pi[0], sol.pi[1], losses[0], losses[1],
                                              cfg.eps, clip)
                              : dto_direction(grads, sol.pi, losses, cfg.eps, clip));
    // Each module got dL_k/dphi_k from its own pass; it steps along grad log L_k, the
    // objective DTO optimizes, so that its step too is blind to a constant loss weight
    // (with the raw gradient, OFD's connectors, L ~ 1e4 at start, diverge in a few steps).
    std::vector<double> module_scale(static_cast<size_t>(n));
    for (int k = 0; k < n; k++) module_scale[size_t(k)] = 1.0 / std::max(losses[size_t(k)], cfg.eps);
    obj.step_modules(module_scale);
    if (pi_out) *pi_out = sol.pi;
    return s;
}

class DtoPolicy : public TradeoffPolicy {
public:
    explicit DtoPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto"; }
    int gradient_arenas(int objectives) const override { return objectives; }
    StepStats step(ObjectiveSet &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s = exact_dto_step(obj, ctx, cfg_, step);
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    PolicyConfig cfg_;
};

// Amortized DTO-KD (Eq. 18 read after FAMO): pi = softmax(w); one backward of
// sum_k pi_k log L_k; step; re-evaluate the losses on the same batch (every
// reeval_every-th step); w.grad = J^T delta (J = diag(pi) - pi pi^T, delta = drop
// in log-loss); Adam on w. Between re-evaluations pi is held.
class DtoAmortizedPolicy : public TradeoffPolicy {
public:
    explicit DtoAmortizedPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto-amortized"; }
    int gradient_arenas(int objectives) const override { return cfg_.refresh > 0 ? objectives : 1; }

    StepStats step(ObjectiveSet &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        resize(obj.size());
        if (cfg_.refresh > 0 && step % cfg_.refresh == 0) {
            std::vector<double> pi;
            s = exact_dto_step(obj, ctx, cfg_, step, &pi);
            if (!s.skipped) reset_to(pi);
            s.seconds = seconds_since(t0);
            return s;
        }
        s.step = step;
        const std::vector<double> pi = weights();
        const int n = int(pi.size());
        for (int k = 0; k < n; k++) s.pi[size_t(k)] = pi[size_t(k)];
        if (!read_losses(obj, ctx, s)) {
            s.seconds = seconds_since(t0);
            return s;
        }
        const size_t count = size_t(n);
        std::vector<double> l(count), w(count), module_scale(count);
        for (int k = 0; k < n; k++) {
            l[size_t(k)] = std::max(s.loss[size_t(k)], cfg_.eps);
            w[size_t(k)] = pi[size_t(k)] / l[size_t(k)];
            // The module got (pi_k / L_k) dL_k/dphi_k: it steps along grad log L_k, as under dto.
            module_scale[size_t(k)] = pi[size_t(k)] > 0 ? 1.0 / pi[size_t(k)] : 0.0;
        }
        if (single_backward_step(obj, ctx, cfg_, w, s)) {
            obj.step_modules(module_scale);
            if (reevals_due_++ % cfg_.reeval_every == 0) {
                std::vector<double> after = obj.reevaluate();
                if (distributed(ctx.collective)) {  // the global batch's losses after the step
                    sum_values(*ctx.collective, after);
                    for (double &a : after) a /= ctx.collective->world_size();
                }
                bool finite = true;
                for (double a : after) finite = finite && std::isfinite(a);
                if (finite) {
                    std::vector<double> delta(count);
                    for (int k = 0; k < n; k++) {
                        delta[size_t(k)] = std::log(l[size_t(k)]) - std::log(std::max(after[size_t(k)], cfg_.eps));
                        s.improve[size_t(k)] = delta[size_t(k)];
                    }
                    update_weights(pi, delta);
                }
            }
        }
        fill_pair_view(s);
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    void resize(int n) {
        if (int(w_.size()) == n) return;
        if (!w_.empty())
            throw std::invalid_argument("dto-amortized: the run had " + std::to_string(w_.size()) +
                                        " objectives and now has " + std::to_string(n));
        w_.assign(size_t(n), 0.0);
        m_.assign(size_t(n), 0.0);
        v_.assign(size_t(n), 0.0);
    }

    std::vector<double> weights() const {
        if (w_.size() == 2) {
            const double pi1 = 1 / (1 + std::exp(w_[1] - w_[0]));  // softmax of two, as before
            return {pi1, 1 - pi1};
        }
        const double top = *std::max_element(w_.begin(), w_.end());
        std::vector<double> pi;
        double sum = 0;
        for (double wk : w_) sum += std::exp(wk - top);
        for (double wk : w_) pi.push_back(std::exp(wk - top) / sum);
        return pi;
    }

    void update_weights(const std::vector<double> &pi, const std::vector<double> &delta) {
        // J^T delta for the softmax Jacobian J = diag(pi) - pi pi^T.
        double mean = 0;
        for (size_t k = 0; k < pi.size(); k++) mean += pi[k] * delta[k];
        // Adam with L2 weight decay (torch.optim.Adam(weight_decay=...)), as FAMO uses.
        const double b1 = 0.9, b2 = 0.999, adam_eps = 1e-8;
        t_++;
        for (size_t k = 0; k < pi.size(); k++) {
            const double gk = pi[k] * (delta[k] - mean) + cfg_.amortized_decay * w_[k];
            m_[k] = b1 * m_[k] + (1 - b1) * gk;
            v_[k] = b2 * v_[k] + (1 - b2) * gk * gk;
            const double mhat = m_[k] / (1 - std::pow(b1, double(t_)));
            const double vhat = v_[k] / (1 - std::pow(b2, double(t_)));
            w_[k] -= cfg_.amortized_lr * mhat / (std::sqrt(vhat) + adam_eps);
        }
    }

    // After an exact step: softmax(w) = pi* (each clamped to >= 1e-3), and Adam starts
    // afresh so stale moments do not push w straight back away from the refreshed pi.
    void reset_to(const std::vector<double> &pi) {
        if (pi.size() == 2) {
            const double p = std::clamp(pi[0], 1e-3, 1 - 1e-3);
            w_[0] = 0.5 * std::log(p / (1 - p));
            w_[1] = -w_[0];
        } else {
            double mean = 0;
            for (size_t k = 0; k < pi.size(); k++) {
                w_[k] = std::log(std::max(pi[k], 1e-3));
                mean += w_[k] / double(pi.size());
            }
            for (double &wk : w_) wk -= mean;
        }
        std::fill(m_.begin(), m_.end(), 0.0);
        std::fill(v_.begin(), v_.end(), 0.0);
        t_ = 0;
    }

    PolicyConfig cfg_;
    std::vector<double> w_, m_, v_;
    int64_t t_ = 0;
    int64_t reevals_due_ = 0;

public:
    // [n, w (n), m (n), v (n), t, reevals_due]; n = 0 before the first step.
    std::vector<double> state() const override {
        std::vector<double> out = {double(w_.size())};
        for (const auto *a : {&w_, &m_, &v_}) out.insert(out.end(), a->begin(), a->end());
        out.push_back(double(t_));
        out.push_back(double(reevals_due_));
        return out;
    }
    void load_state(const std::vector<double> &state) override {
        const size_t n = state.empty() ? 0 : size_t(state[0]);
        if (state.empty() || state.size() != 3 + 3 * n || n > size_t(kMaxObjectives))
            throw std::invalid_argument("dto-amortized: policy state of " + std::to_string(state.size()) +
                                        " values is not one this policy wrote");
        w_.assign(state.begin() + 1, state.begin() + 1 + long(n));
        m_.assign(state.begin() + 1 + long(n), state.begin() + 1 + 2 * long(n));
        v_.assign(state.begin() + 1 + 2 * long(n), state.begin() + 1 + 3 * long(n));
        t_ = int64_t(state[1 + 3 * n]);
        reevals_due_ = int64_t(state[2 + 3 * n]);
    }
};

// Logit-space DTO-KD (after MGDA-UB): the min-norm point on the Gram of
// u_k = dL_k/dz / L_k (B x C numbers each), then one backward.
class DtoLogitPolicy : public TradeoffPolicy {
public:
    explicit DtoLogitPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto-logit"; }
    bool needs_logit_objectives() const override { return true; }
    StepStats step(ObjectiveSet &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        s.step = step;
        local_losses(obj, s);
        const int n = s.objectives;
        std::vector<at::Tensor> u;
        std::vector<const at::Tensor *> grads;
        auto logit_grads = [&] {
            for (int k = 0; k < n; k++) {
                u.push_back(obj.output_grad(k));
                if (!u.back().defined())
                    throw std::invalid_argument("dto-logit needs every objective to be a function of the student "
                                                "logits; objective '" + obj.name(k) + "' is not");
            }
            for (const at::Tensor &t : u) grads.push_back(&t);
        };
        GramMatrix g;
        bool finite = false;
        if (distributed(ctx.collective)) {  // every rank takes part, whatever its own losses
            logit_grads();
            g = global_logit_gram(grads, ctx, s);
            finite = losses_finite(obj, s);
        } else if ((finite = losses_finite(obj, s))) {  // as before: no logit gradients for a skipped step
            logit_grads();
            g = gram_of(grads, losses_of(s), cfg_.eps, ctx.backend);
        }
        if (finite) {
            const std::vector<double> losses = losses_of(s);
            if (non_finite_row(g) >= 0) {
                s.skipped = true;
                s.skip_reason = "non-finite logit gradient (L_" + obj.name(non_finite_row(g)) + ")";
            } else {
                const Solved sol = solve(g);
                record_tradeoff(sol, losses, cfg_.eps, s);  // in logit space
                std::vector<double> w(losses.size());
                for (int k = 0; k < n; k++) w[size_t(k)] = sol.pi[size_t(k)] / std::max(losses[size_t(k)], cfg_.eps);
                single_backward_step(obj, ctx, cfg_, w, s);
            }
        }
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    // Data-parallel: the logit-space Gram is a sum over the global batch's samples. With
    // u_k = dL_k/dz of this rank's mean loss, the global mean's is u_k / R, so the global
    // Gram of raw dots is sum_r G_r / R^2; its N(N+1)/2 numbers and the N losses go in one
    // call (no gradient traffic beyond kd's arena), then the log scaling by the global losses.
    GramMatrix global_logit_gram(const std::vector<const at::Tensor *> &u, PolicyContext &ctx, StepStats &s) const {
        const int n = s.objectives;
        const GramMatrix raw = gram_of(u, std::vector<double>(size_t(n), 1.0), cfg_.eps, ctx.backend);
        std::vector<double> values(s.loss.begin(), s.loss.begin() + n);
        for (int k = 0; k < n; k++)
            for (int l = k; l < n; l++) values.push_back(raw(k, l));
        sum_values(*ctx.collective, values);
        const double r = ctx.collective->world_size();
        GramMatrix g;
        g.n = n;
        size_t at = size_t(n);
        for (int k = 0; k < n; k++) s.loss[size_t(k)] = values[size_t(k)] / r;
        for (int k = 0; k < n; k++)
            for (int l = k; l < n; l++, at++)
                g(k, l) = g(l, k) = values[at] / (r * r) / (std::max(s.loss[size_t(k)], cfg_.eps) *
                                                              std::max(s.loss[size_t(l)], cfg_.eps));
        return g;
    }

    PolicyConfig cfg_;
};

}  // namespace

void TradeoffPolicy::load_state(const std::vector<double> &state) {
    if (!state.empty())
        throw std::invalid_argument(name() + ": carries no state between steps, but was given " +
                                    std::to_string(state.size()) + " values (a checkpoint of another method?)");
}

const std::vector<std::string> &policy_names() {
    static const std::vector<std::string> names = {"ce", "kd", "sum", "dto", "dto-amortized", "dto-logit"};
    return names;
}

std::unique_ptr<TradeoffPolicy> make_policy(const PolicyConfig &cfg) {
    if (!(cfg.eps > 0)) throw std::invalid_argument("eps is " + std::to_string(cfg.eps) + "; expected > 0");
    if (cfg.clip_norm < 0)
        throw std::invalid_argument("clip_norm is " + std::to_string(cfg.clip_norm) + "; expected >= 0 (0 = off)");
    if (cfg.refresh < 0)
        throw std::invalid_argument("dto-refresh is " + std::to_string(cfg.refresh) + "; expected >= 0 (0 = off)");
    if (cfg.reeval_every < 1)
        throw std::invalid_argument("dto-reeval-every is " + std::to_string(cfg.reeval_every) + "; expected >= 1");
    if (int(cfg.weights.size()) > kMaxObjectives)
        throw std::invalid_argument(std::to_string(cfg.weights.size()) + " weights; expected at most " +
                                    std::to_string(kMaxObjectives));
    for (double w : cfg.weights)
        if (!std::isfinite(w) || w < 0)
            throw std::invalid_argument("weight " + std::to_string(w) + "; expected a finite value >= 0");
    if (cfg.method == "ce" || cfg.method == "kd" || cfg.method == "sum")
        return std::make_unique<FixedWeightPolicy>(cfg.method, cfg);
    if (cfg.method == "dto") return std::make_unique<DtoPolicy>(cfg);
    if (cfg.method == "dto-amortized") return std::make_unique<DtoAmortizedPolicy>(cfg);
    if (cfg.method == "dto-logit") return std::make_unique<DtoLogitPolicy>(cfg);
    std::string known;
    for (const auto &n : policy_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("method '" + cfg.method + "' is unknown; expected one of: " + known);
}

}  // namespace dtokd
