// `reviewkd` (Chen et al. 2021, "Distilling Knowledge via Knowledge Review", as mdistiller's
// ReviewKD computes it; shared/KD_LOSSES.md): the student's levels feats[1:] + [pooled as
// B x D x 1 x 1] run deepest first through a chain of ABFs (attention-based fusion): each level
// maps through Conv1x1 + BN to `mid` channels, fuses (per-pixel sigmoid attention over the
// pair) with the deeper level's residual upsampled (nearest) to its size, resizes to the
// teacher's size at that level (nearest), and Conv3x3 + BN maps it to the teacher's channels.
// The targets are the teacher's preact_feats[1:] + [pooled]; the two level lists are aligned on
// their deepest min_len entries.
//   L = warmup_factor(epoch, warmup_epochs) * sum_levels HCL(out_l, t_l),
// HCL = (mse(s, t) + sum_{k in 4,2,1; k < h} w_k mse(avgpool_k(s), avgpool_k(t))) / (1 + sum w_k),
// w halving from 1/2 at each pooled size used. The channels, sizes and mid width
// (min(512, student pooled width)) come from the probe shapes, where the reference reads
// per-architecture tables; for resnet32x4 -> resnet8x4 they are the reference's. The ABFs are
// objective 'reviewkd's own trainable module. The 5.0 outer weight of the fixed-weight baseline
// is not here (configs set it).
#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "loss_warmup.h"
#include "objective_registry.h"

namespace dtokd {
namespace {

namespace nn = torch::nn;

struct AbfImpl : nn::Module {
    AbfImpl(int64_t in, int64_t mid, int64_t out, bool fuse)
        : conv1(register_module(
              "conv1", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, mid, /*kernel_size=*/1).bias(false)),
                                      nn::BatchNorm2d(mid)))),
          conv2(register_module(
              "conv2", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(mid, out, /*kernel_size=*/3).padding(1).bias(false)),
                                      nn::BatchNorm2d(out)))) {
        if (fuse)
            att_conv = register_module(
                "att_conv", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(2 * mid, 2, /*kernel_size=*/1)), nn::Sigmoid()));
        // The reference's init: kaiming_uniform(a=1) on both convs; att_conv keeps the default.
        nn::init::kaiming_uniform_(conv1[0]->as<nn::Conv2d>()->weight, /*a=*/1);
        nn::init::kaiming_uniform_(conv2[0]->as<nn::Conv2d>()->weight, /*a=*/1);
    }

    // (output at the teacher's size, residual for the next shallower level).
    std::pair<at::Tensor, at::Tensor> forward(const at::Tensor &input, const at::Tensor &residual,
                                              at::IntArrayRef out_size) {
        const int64_t n = input.size(0), h = input.size(2), w = input.size(3);
        at::Tensor x = conv1->forward(input);
        if (att_conv) {
            const at::Tensor y = torch::upsample_nearest2d(residual, {h, w});
            const at::Tensor z = att_conv->forward(torch::cat({x, y}, 1));
            x = x * z.select(1, 0).view({n, 1, h, w}) + y * z.select(1, 1).view({n, 1, h, w});
        }
        if (x.size(2) != out_size[0] || x.size(3) != out_size[1]) x = torch::upsample_nearest2d(x, out_size);
        return {conv2->forward(x), x};
    }

    nn::Sequential conv1, conv2, att_conv{nullptr};
};
TORCH_MODULE(Abf);

// deepest first, as the reference orders its ABFs (checkpoint names abfs.0 = the pooled level).
struct AbfChainImpl : nn::Module {
    AbfChainImpl(const std::vector<int64_t> &in, int64_t mid, const std::vector<int64_t> &out)
        : abfs(register_module("abfs", nn::ModuleList())) {
        for (size_t i = 0; i < in.size(); i++) abfs->push_back(Abf(in[i], mid, out[i], /*fuse=*/i > 0));
    }
    nn::ModuleList abfs;
};
TORCH_MODULE(AbfChain);

// net's stage maps after the stem, then its pooled embedding as a 1 x 1 map: the levels.
std::vector<at::Tensor> levels(const std::vector<at::Tensor> &stages, const at::Tensor &pooled) {
    std::vector<at::Tensor> out;
    if (stages.size() > 1) out.assign(stages.begin() + 1, stages.end());
    out.push_back(pooled.reshape({pooled.size(0), pooled.size(1), 1, 1}));
    return out;
}

// The levels of one network, checked: [B, C, H, W] maps whose size does not grow with depth
// (the chain upsamples each deeper residual to the next shallower level).
std::vector<at::Tensor> checked_levels(const std::vector<at::Tensor> &stages, const at::Tensor &pooled,
                                       const std::string &which, const char *stage_tap) {
    if (!pooled.defined() || pooled.dim() != 2)
        throw std::invalid_argument("reviewkd needs " + which + "'s pooled embedding as [batch, width]; it gives " +
                                    (pooled.defined() ? std::string(c10::str(pooled.sizes())) : std::string("none")));
    for (size_t i = 1; i < stages.size(); i++)
        if (stages[i].dim() != 4)
            throw std::invalid_argument("reviewkd: " + which + "'s " + stage_tap + "[" + std::to_string(i) + "] is " +
                                        std::string(c10::str(stages[i].sizes())) +
                                        "; expected a [batch, channels, height, width] map");
    std::vector<at::Tensor> out = levels(stages, pooled);
    if (out.size() < 2)
        throw std::invalid_argument("reviewkd needs at least one stage feature after the stem from " + which +
                                    " (" + stage_tap + "[1:]); it gives " + std::to_string(stages.size()) +
                                    " entries");
    for (size_t i = 0; i + 1 < out.size(); i++)
        if (out[i + 1].size(2) > out[i].size(2) || out[i + 1].size(3) > out[i].size(3))
            throw std::invalid_argument(
                "reviewkd: " + which + "'s level " + std::to_string(i + 1) + " " +
                std::string(c10::str(out[i + 1].sizes())) + " is larger than the shallower level " +
                std::string(c10::str(out[i].sizes())) +
                "; no ABF chain bridges it (the chain upsamples each deeper level to the next shallower one)");
    return out;
}

// mdistiller's hcl_loss for one level.
at::Tensor hcl_level(const at::Tensor &s, const at::Tensor &t) {
    at::Tensor loss = torch::mse_loss(s, t);
    double weight = 1.0, total = 1.0;
    for (int64_t k : {4, 2, 1}) {
        if (k >= s.size(2)) continue;
        weight /= 2.0;
        loss = loss + torch::mse_loss(torch::adaptive_avg_pool2d(s, {k, k}), torch::adaptive_avg_pool2d(t, {k, k})) * weight;
        total += weight;
    }
    return loss / total;
}

class ReviewKdObjective : public Objective {
public:
    explicit ReviewKdObjective(int warmup_epochs) : warmup_epochs_(warmup_epochs) {}
    std::string name() const override { return "reviewkd"; }
    TapRequest student_taps() const override { return TapRequest::of(/*feats=*/true, false, /*pooled=*/true); }
    TapRequest teacher_taps() const override { return TapRequest::of(false, /*preact_feats=*/true, /*pooled=*/true); }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &context) override {
        const std::string teacher_name =
            context.teacher_name.empty() ? "the teacher" : "teacher '" + context.teacher_name + "'";
        const std::vector<at::Tensor> s = checked_levels(student.feats, student.pooled, "the student", "feats");
        const std::vector<at::Tensor> t = checked_levels(teacher.preact_feats, teacher.pooled, teacher_name, "preact_feats");
        const size_t n = std::min(s.size(), t.size());
        first_s_ = s.size() - n;
        first_t_ = t.size() - n;
        std::vector<int64_t> in, out;  // deepest first
        out_sizes_.clear();
        for (size_t j = n; j-- > 0;) {
            in.push_back(s[first_s_ + j].size(1));
            out.push_back(t[first_t_ + j].size(1));
            out_sizes_.push_back({t[first_t_ + j].size(2), t[first_t_ + j].size(3)});
        }
        chain_ = AbfChain(in, std::min<int64_t>(512, in.front()), out);
        chain_->to(student.pooled.device());
    }
    torch::nn::Module *module() override { return chain_ ? chain_.get() : nullptr; }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        TORCH_CHECK(chain_, "reviewkd: evaluate() before prepare()");
        const std::vector<at::Tensor> s = levels(in.student.feats, in.student.pooled);
        const std::vector<at::Tensor> t = levels(in.teacher.preact_feats, in.teacher.pooled);
        const size_t n = out_sizes_.size();
        std::vector<at::Tensor> level_loss(n);
        at::Tensor residual;
        for (size_t k = 0; k < n; k++) {  // deepest first
            const size_t j = n - 1 - k;
            auto [out, res] = chain_->abfs[k]->as<AbfImpl>()->forward(s.at(first_s_ + j), residual, out_sizes_[k]);
            residual = res;
            level_loss[j] = hcl_level(out, t.at(first_t_ + j).detach());
        }
        at::Tensor loss = level_loss[0];  // summed shallowest first, as the reference does
        for (size_t j = 1; j < n; j++) loss = loss + level_loss[j];
        loss = loss * warmup_factor(in.epoch, warmup_epochs_);
        return ObjectiveValue::of_loss_tensor(loss);
    }

private:
    int warmup_epochs_;
    size_t first_s_ = 0, first_t_ = 0;      // index into each net's levels of the first level used
    std::vector<std::vector<int64_t>> out_sizes_;  // the teacher's (H, W) per level, deepest first
    AbfChain chain_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_reviewkd_objective(int warmup_epochs) {
    return std::make_unique<ReviewKdObjective>(warmup_epochs);
}

}  // namespace dtokd
