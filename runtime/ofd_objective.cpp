// `ofd` (Heo et al. 2019, "A Comprehensive Overhaul of Feature Distillation", as mdistiller's
// OFD computes it; shared/KD_LOSSES.md): over the pre-ReLU stage features preact_feats[1:] of
// both networks (the lists aligned on their last min_len entries, the deepest stages),
//   L = sum_i 2^-(n-1-i) * sum_{c,h,w} mean_b partial_l2(connector_i(s_i), pool(t_i), margin_i)
// where connector_i = Conv1x1(s_C -> t_C, no bias) + BatchNorm(t_C), pool = adaptive average
// pooling of the teacher map to the student's H x W, and partial_l2 =
//   (s-m)^2 [s>m, t<=m] + (s-t)^2 [s>t, m<t<=0] + (s-t)^2 [t>0].
// margin_i (per channel, fixed at prepare) is E[x | x < 0] for x ~ N(beta, |gamma|^2) of the
// teacher BatchNorm before that tap (PrepareContext::teacher_preact_bn), or -3|gamma| where
// Phi(-beta/|gamma|) <= 0.001. The connectors are objective 'ofd's own trainable module; the
// margins are its buffers (checkpointed with it). The reference keeps the teacher's BatchNorm
// in train mode: teacher_train_mode() says so unless the options turn it off.
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "objective_registry.h"

namespace dtokd {
namespace {

namespace nn = torch::nn;

// The reference's margin rule per channel, in float64, stored as float32 as the reference
// stores it (torch.FloatTensor). |gamma| = 0 (the reference divides by zero): the formula's
// limit, min(beta, 0).
at::Tensor ofd_margin(const at::Tensor &bn_weight, const at::Tensor &bn_bias) {
    const at::Tensor w = bn_weight.detach().to(torch::kCPU, torch::kDouble).contiguous();
    const at::Tensor b = bn_bias.detach().to(torch::kCPU, torch::kDouble).contiguous();
    const int64_t channels = w.numel();
    at::Tensor margin = torch::empty({channels}, torch::kFloat);
    const double *wp = w.data_ptr<double>(), *bp = b.data_ptr<double>();
    float *out = margin.data_ptr<float>();
    const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * M_PI);
    for (int64_t c = 0; c < channels; c++) {
        const double s = std::abs(wp[c]), m = bp[c];
        double v;
        if (s == 0) {
            v = std::min(m, 0.0);
        } else {
            const double cdf = 0.5 * std::erfc((m / s) / std::sqrt(2.0));  // Phi(-m/s)
            v = cdf > 0.001 ? m - s * std::exp(-(m / s) * (m / s) / 2) * inv_sqrt_2pi / cdf : -3 * s;
        }
        out[c] = float(v);
    }
    return margin.view({1, channels, 1, 1});
}

struct OfdConnectorsImpl : nn::Module {
    OfdConnectorsImpl(const std::vector<int64_t> &s_channels, const std::vector<int64_t> &t_channels,
                      const std::vector<at::Tensor> &margins)
        : connectors(register_module("connectors", nn::ModuleList())) {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < s_channels.size(); i++) {
            nn::Conv2d conv(nn::Conv2dOptions(s_channels[i], t_channels[i], /*kernel_size=*/1).bias(false));
            // The reference's init: N(0, sqrt(2 / (k*k*out))); BN weight 1, bias 0 (the defaults).
            conv->weight.normal_(0.0, std::sqrt(2.0 / double(t_channels[i])));
            connectors->push_back(nn::Sequential(conv, nn::BatchNorm2d(t_channels[i])));
            this->margins.push_back(register_buffer("margin_" + std::to_string(i), margins[i]));
        }
    }
    nn::ModuleList connectors;
    std::vector<at::Tensor> margins;  // [1, t_C, 1, 1] each
};
TORCH_MODULE(OfdConnectors);

// The entries preact_feats[1:] of `net`, each checked to be a [B, C, H, W] map.
std::vector<at::Tensor> stage_maps(const std::vector<at::Tensor> &preact, const std::string &which) {
    if (preact.size() < 2)
        throw std::invalid_argument("ofd needs pre-ReLU stage features preact_feats[1:] from " + which + ", which gives " +
                                    std::to_string(preact.size()) + " preact_feats entries; expected at least 2 "
                                    "(the stem, then one per stage)");
    std::vector<at::Tensor> maps(preact.begin() + 1, preact.end());
    for (size_t i = 0; i < maps.size(); i++)
        if (maps[i].dim() != 4)
            throw std::invalid_argument("ofd: " + which + "'s preact_feats[" + std::to_string(i + 1) + "] is " +
                                        std::string(c10::str(maps[i].sizes())) +
                                        "; expected a [batch, channels, height, width] map");
    return maps;
}

class OfdObjective : public Objective {
public:
    explicit OfdObjective(bool teacher_train_mode) : teacher_train_mode_(teacher_train_mode) {}
    std::string name() const override { return "ofd"; }
    TapRequest student_taps() const override { return TapRequest::of(false, /*preact_feats=*/true, false); }
    TapRequest teacher_taps() const override { return TapRequest::of(false, /*preact_feats=*/true, false); }
    bool teacher_train_mode() const override { return teacher_train_mode_; }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &context) override {
        const std::string teacher_name = context.teacher_name.empty() ? "the teacher" : "teacher '" + context.teacher_name + "'";
        const std::vector<at::Tensor> s = stage_maps(student.preact_feats, "the student");
        const std::vector<at::Tensor> t = stage_maps(teacher.preact_feats, teacher_name);
        const size_t n = std::min(s.size(), t.size());
        first_s_ = 1 + s.size() - n;
        first_t_ = 1 + t.size() - n;
        if (context.teacher_preact_bn.size() != teacher.preact_feats.size())
            throw std::invalid_argument("ofd: " + teacher_name + " gives " +
                                        std::to_string(context.teacher_preact_bn.size()) +
                                        " BatchNorm (weight, bias) entries for its " +
                                        std::to_string(teacher.preact_feats.size()) +
                                        " preact_feats; expected one per entry (OFD's margins; TorchScript "
                                        "teachers do not give them)");
        std::vector<int64_t> s_channels, t_channels;
        std::vector<at::Tensor> margins;
        for (size_t i = 0; i < n; i++) {
            const size_t ti = first_t_ + i;
            const auto &[weight, bias] = context.teacher_preact_bn[ti];
            const int64_t t_c = teacher.preact_feats[ti].size(1);
            if (!weight.defined() || !bias.defined() || weight.numel() != t_c || bias.numel() != t_c)
                throw std::invalid_argument(
                    "ofd: " + teacher_name + " has no BatchNorm with " + std::to_string(t_c) +
                    " channels before preact_feats[" + std::to_string(ti) +
                    "]; OFD's margins need the (weight, bias) of the BatchNorm before each pre-ReLU stage "
                    "feature it reads (the reference's get_bn_before_relu)");
            s_channels.push_back(student.preact_feats[first_s_ + i].size(1));
            t_channels.push_back(t_c);
            margins.push_back(ofd_margin(weight, bias));
        }
        connectors_ = OfdConnectors(s_channels, t_channels, margins);
        connectors_->to(student.preact_feats[first_s_].device());
    }
    torch::nn::Module *module() override { return connectors_ ? connectors_.get() : nullptr; }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        TORCH_CHECK(connectors_, "ofd: evaluate() before prepare()");
        const size_t n = connectors_->connectors->size();
        at::Tensor loss;
        for (size_t i = 0; i < n; i++) {
            const at::Tensor s =
                connectors_->connectors[i]->as<nn::Sequential>()->forward(in.student.preact_feats.at(first_s_ + i));
            const at::Tensor t =
                torch::adaptive_avg_pool2d(in.teacher.preact_feats.at(first_t_ + i).detach(), {s.size(2), s.size(3)});
            const at::Tensor m = connectors_->margins[i].to(s.scalar_type());
            const at::Tensor partial = (s - m).pow(2) * ((s > m) & (t <= m)).to(s.scalar_type()) +
                                       (s - t).pow(2) * ((s > t) & (t > m) & (t <= 0)).to(s.scalar_type()) +
                                       (s - t).pow(2) * (t > 0).to(s.scalar_type());
            // Deeper stages weigh more: 1/4, 1/2, 1 for three stages.
            const at::Tensor stage = partial.abs().mean(0).sum() / std::pow(2.0, double(n - i - 1));
            loss = loss.defined() ? loss + stage : stage;
        }
        return ObjectiveValue::of_loss_tensor(loss);
    }

private:
    bool teacher_train_mode_;
    size_t first_s_ = 1, first_t_ = 1;  // the preact_feats index of the first stage used
    OfdConnectors connectors_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_ofd_objective(bool teacher_train_mode) {
    return std::make_unique<OfdObjective>(teacher_train_mode);
}

}  // namespace dtokd
