// The five trade-off policies (see tradeoff_policy.h and shared/METHOD.md).
// Shared pieces: the non-finite checks, clipping from a known squared norm, and
// the single-backward step used by ce, kd, dto-logit and dto-amortized.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "flat_arena.h"
#include "fused_optimizer.h"
#include "min_norm.h"
#include "objective_pair.h"
#include "tradeoff_policy.h"

namespace dtokd {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool finite_gram(const Gram &g) { return std::isfinite(g.g11) && std::isfinite(g.g12) && std::isfinite(g.g22); }

// Records the losses; false (and a skip reason) when one is not finite.
bool read_losses(const ObjectivePair &obj, StepStats &s) {
    s.loss_distill = obj.loss_distill();
    s.loss_task = obj.loss_task();
    if (std::isfinite(s.loss_distill) && std::isfinite(s.loss_task)) return true;
    std::ostringstream os;
    os << "non-finite loss (" << (std::isfinite(s.loss_distill) ? "L_task" : "L_distill")
       << "): L_distill=" << s.loss_distill << " L_task=" << s.loss_task;
    s.skipped = true;
    s.skip_reason = os.str();
    return false;
}

double clip_scale(double clip_norm, double sq_norm) {
    if (clip_norm <= 0) return 1.0;
    const double norm = std::sqrt(sq_norm);
    return norm > clip_norm ? clip_norm / norm : 1.0;
}

// One backward of w_d L_d + w_t L_t into arena 0, then one fused update. The
// squared norm pass doubles as the non-finite gradient check and gives clipping.
bool single_backward_step(ObjectivePair &obj, PolicyContext &ctx, const PolicyConfig &cfg, double w_distill,
                          double w_task, StepStats &s) {
    ctx.arena.route_gradients_to(0);
    obj.backward(w_distill, w_task, /*retain_graph=*/false);
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

class FixedWeightPolicy : public TradeoffPolicy {
public:
    FixedWeightPolicy(std::string name, PolicyConfig cfg, double w_distill, double w_task)
        : name_(std::move(name)), cfg_(std::move(cfg)), w_distill_(w_distill), w_task_(w_task) {}
    std::string name() const override { return name_; }
    StepStats step(ObjectivePair &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        s.step = step;
        s.pi1 = w_distill_;
        s.pi2 = w_task_;
        if (read_losses(obj, s)) single_backward_step(obj, ctx, cfg_, w_distill_, w_task_, s);
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    std::string name_;
    PolicyConfig cfg_;
    double w_distill_, w_task_;
};

// Exact DTO-KD step (Theorem 3.1): two backward passes into two arenas, the
// log-gradient Gram, the closed form, then the fused two-gradient update.
StepStats exact_dto_step(ObjectivePair &obj, PolicyContext &ctx, const PolicyConfig &cfg, int64_t step,
                         Tradeoff *out = nullptr) {
    StepStats s;
    s.step = step;
    s.exact = true;
    if (!read_losses(obj, s)) return s;
    ctx.arena.route_gradients_to(0);
    obj.backward(1.0, 0.0, /*retain_graph=*/true);
    ctx.arena.route_gradients_to(1);
    obj.backward(0.0, 1.0, /*retain_graph=*/false);
    at::Tensor &a = ctx.arena.gradients(0), &b = ctx.arena.gradients(1);
    const Gram g = log_gram(a, b, s.loss_distill, s.loss_task, cfg.eps, ctx.backend);
    if (!finite_gram(g)) {
        s.skipped = true;
        s.skip_reason = "non-finite gradient (" +
                        std::string(std::isfinite(g.g11) ? "grad L_task" : "grad L_distill") + ")";
        return s;
    }
    const Tradeoff t = min_norm_tradeoff(g);
    s.pi1 = t.pi1;
    s.pi2 = t.pi2;
    s.cos_ab = gram_cosine(g);
    const double ld = std::max(s.loss_distill, cfg.eps), lt = std::max(s.loss_task, cfg.eps);
    s.log_grad_norm_ratio = g.g22 > 0 ? std::sqrt(g.g11 / g.g22) : StepStats::nan;
    s.norm_ratio = s.log_grad_norm_ratio * ld / lt;
    s.a_dot_g = a_dot_direction(g, t);
    s.b_dot_g = b_dot_direction(g, t);
    const double sq = dto_direction_sq_norm(g, t.pi1, t.pi2);
    s.direction_norm = std::sqrt(sq);
    ctx.optimizer.step(ctx.arena.params(), dto_direction(a, b, t.pi1, t.pi2, s.loss_distill, s.loss_task, cfg.eps,
                                                         clip_scale(cfg.clip_norm, sq)));
    if (out) *out = t;
    return s;
}

class DtoPolicy : public TradeoffPolicy {
public:
    explicit DtoPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto"; }
    int gradient_arenas() const override { return 2; }
    StepStats step(ObjectivePair &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s = exact_dto_step(obj, ctx, cfg_, step);
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    PolicyConfig cfg_;
};

// Amortized DTO-KD (Eq. 18 read after FAMO): pi = softmax(w); one backward of
// pi1 log L_d + pi2 log L_t; step; re-evaluate both losses on the same batch;
// w.grad = J^T delta (J = diag(pi) - pi pi^T, delta = drop in log-loss); Adam on w.
class DtoAmortizedPolicy : public TradeoffPolicy {
public:
    explicit DtoAmortizedPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto-amortized"; }
    int gradient_arenas() const override { return cfg_.refresh > 0 ? 2 : 1; }

    StepStats step(ObjectivePair &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        if (cfg_.refresh > 0 && step % cfg_.refresh == 0) {
            Tradeoff t;
            s = exact_dto_step(obj, ctx, cfg_, step, &t);
            if (!s.skipped) reset_to(t.pi1);
            s.seconds = seconds_since(t0);
            return s;
        }
        s.step = step;
        const double pi1 = 1 / (1 + std::exp(w_[1] - w_[0]));  // softmax of two
        const double pi2 = 1 - pi1;
        s.pi1 = pi1;
        s.pi2 = pi2;
        if (!read_losses(obj, s)) {
            s.seconds = seconds_since(t0);
            return s;
        }
        const double ld = std::max(s.loss_distill, cfg_.eps), lt = std::max(s.loss_task, cfg_.eps);
        if (single_backward_step(obj, ctx, cfg_, pi1 / ld, pi2 / lt, s)) {
            const auto [ld_after, lt_after] = obj.reevaluate();
            if (std::isfinite(ld_after) && std::isfinite(lt_after)) {
                s.improve_distill = std::log(ld) - std::log(std::max(ld_after, cfg_.eps));
                s.improve_task = std::log(lt) - std::log(std::max(lt_after, cfg_.eps));
                update_weights(pi1, pi2, s.improve_distill, s.improve_task);
            }
        }
        s.seconds = seconds_since(t0);
        return s;
    }

    double pi1() const { return 1 / (1 + std::exp(w_[1] - w_[0])); }

private:
    void update_weights(double pi1, double pi2, double d1, double d2) {
        // J^T delta for the softmax Jacobian J = diag(pi) - pi pi^T.
        const double mean = pi1 * d1 + pi2 * d2;
        double grad[2] = {pi1 * (d1 - mean), pi2 * (d2 - mean)};
        // Adam with L2 weight decay (torch.optim.Adam(weight_decay=...)), as FAMO uses.
        const double b1 = 0.9, b2 = 0.999, adam_eps = 1e-8;
        t_++;
        for (int i = 0; i < 2; i++) {
            const double gi = grad[i] + cfg_.amortized_decay * w_[i];
            m_[i] = b1 * m_[i] + (1 - b1) * gi;
            v_[i] = b2 * v_[i] + (1 - b2) * gi * gi;
            const double mhat = m_[i] / (1 - std::pow(b1, double(t_)));
            const double vhat = v_[i] / (1 - std::pow(b2, double(t_)));
            w_[i] -= cfg_.amortized_lr * mhat / (std::sqrt(vhat) + adam_eps);
        }
    }

    // After an exact step: softmax(w) = pi*, and Adam starts afresh so stale
    // moments do not push w straight back away from the refreshed pi.
    void reset_to(double pi1) {
        const double p = std::clamp(pi1, 1e-3, 1 - 1e-3);
        w_[0] = 0.5 * std::log(p / (1 - p));
        w_[1] = -w_[0];
        m_[0] = m_[1] = v_[0] = v_[1] = 0;
        t_ = 0;
    }

    PolicyConfig cfg_;
    double w_[2] = {0, 0};
    double m_[2] = {0, 0}, v_[2] = {0, 0};
    int64_t t_ = 0;
};

// Logit-space DTO-KD (after MGDA-UB): the closed form on the Gram of
// u = dL_d/dz / L_d and v = dL_t/dz / L_t (B x C numbers), then one backward.
class DtoLogitPolicy : public TradeoffPolicy {
public:
    explicit DtoLogitPolicy(PolicyConfig cfg) : cfg_(std::move(cfg)) {}
    std::string name() const override { return "dto-logit"; }
    StepStats step(ObjectivePair &obj, PolicyContext &ctx, int64_t step) override {
        const auto t0 = Clock::now();
        StepStats s;
        s.step = step;
        if (read_losses(obj, s)) {
            const at::Tensor u = obj.output_grad_distill(), v = obj.output_grad_task();
            if (!u.defined() || !v.defined())
                throw std::invalid_argument("dto-logit needs objectives computed from the student logits");
            const Gram g = log_gram(u, v, s.loss_distill, s.loss_task, cfg_.eps, ctx.backend);
            if (!finite_gram(g)) {
                s.skipped = true;
                s.skip_reason = "non-finite logit gradient";
            } else {
                const Tradeoff t = min_norm_tradeoff(g);
                s.pi1 = t.pi1;
                s.pi2 = t.pi2;
                s.cos_ab = gram_cosine(g);  // in logit space
                const double ld = std::max(s.loss_distill, cfg_.eps), lt = std::max(s.loss_task, cfg_.eps);
                s.log_grad_norm_ratio = g.g22 > 0 ? std::sqrt(g.g11 / g.g22) : StepStats::nan;
                s.norm_ratio = s.log_grad_norm_ratio * ld / lt;
                s.a_dot_g = a_dot_direction(g, t);
                s.b_dot_g = b_dot_direction(g, t);
                single_backward_step(obj, ctx, cfg_, t.pi1 / ld, t.pi2 / lt, s);
            }
        }
        s.seconds = seconds_since(t0);
        return s;
    }

private:
    PolicyConfig cfg_;
};

}  // namespace

const std::vector<std::string> &policy_names() {
    static const std::vector<std::string> names = {"ce", "kd", "dto", "dto-amortized", "dto-logit"};
    return names;
}

std::unique_ptr<TradeoffPolicy> make_policy(const PolicyConfig &cfg) {
    if (!(cfg.eps > 0)) throw std::invalid_argument("eps is " + std::to_string(cfg.eps) + "; expected > 0");
    if (cfg.clip_norm < 0)
        throw std::invalid_argument("clip_norm is " + std::to_string(cfg.clip_norm) + "; expected >= 0 (0 = off)");
    if (cfg.refresh < 0)
        throw std::invalid_argument("dto-refresh is " + std::to_string(cfg.refresh) + "; expected >= 0 (0 = off)");
    if (cfg.method == "ce") return std::make_unique<FixedWeightPolicy>("ce", cfg, 0.0, 1.0);
    if (cfg.method == "kd") return std::make_unique<FixedWeightPolicy>("kd", cfg, cfg.alpha_distill, cfg.alpha_task);
    if (cfg.method == "dto") return std::make_unique<DtoPolicy>(cfg);
    if (cfg.method == "dto-amortized") return std::make_unique<DtoAmortizedPolicy>(cfg);
    if (cfg.method == "dto-logit") return std::make_unique<DtoLogitPolicy>(cfg);
    std::string known;
    for (const auto &n : policy_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("method '" + cfg.method + "' is unknown; expected one of: " + known);
}

}  // namespace dtokd
