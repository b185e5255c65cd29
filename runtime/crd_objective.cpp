// `crd` (Tian et al. 2020, Contrastive Representation Distillation, as mdistiller's CRD
// and RepDistiller's crd/ compute it; shared/KD_LOSSES.md):
//   v_s = normalize(Embed_s(student pooled)), v_t = normalize(Embed_t(teacher pooled)),
//   each a Linear to `dim` then x / ||x||_2 (no eps, as the reference);
//   P_s[b,k] = exp(<memory_t[idx[b,k]], v_s[b]> / T) / Z_s, P_t[b,k] = exp(<memory_s[idx[b,k]], v_t[b]> / T) / Z_t
//   over idx = the batch's contrast indices (own index, then K other-class negatives);
//   NCE with m = K, Pn = 1/N:  L_x = -(sum_b log(P_0 / (P_0 + m Pn + 1e-7)) + sum_{b,k>=1} log(m Pn / (P_k + m Pn + 1e-7))) / B,
//   L = L_s + L_t.
// Z_s, Z_t are set once, on the first batch, to mean(exp scores) * N, then frozen (buffers,
// so checkpoints keep them). After scoring, each memory bank's rows of the batch's own
// samples move to normalize(momentum * row + (1 - momentum) * v) (no gradient).
// Gathered memory rows are copies without gradient and the teacher's pooled feature is
// detached, so L_t reaches only Embed_t and L_s reaches Embed_s and the student.
// Memory: two banks of N x dim, and per step either two gathers of B x (K + 1) x dim or,
// when N is at most 16 (K + 1), two B x N score matrices and bank snapshots (exp_scores).
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "objective_registry.h"

namespace dtokd {
namespace {

namespace nn = torch::nn;

struct CrdModuleImpl : nn::Module {
    CrdModuleImpl(int64_t student_dim, int64_t teacher_dim, int64_t dim, int64_t num_samples)
        : embed_s(register_module("embed_s", nn::Linear(student_dim, dim))),
          embed_t(register_module("embed_t", nn::Linear(teacher_dim, dim))) {
        // U(-s, s), s = 1/sqrt(dim/3): rows of about unit norm, as the reference starts them.
        const double s = 1.0 / std::sqrt(double(dim) / 3.0);
        memory_s = register_buffer("memory_s", torch::rand({num_samples, dim}).mul_(2 * s).add_(-s));
        memory_t = register_buffer("memory_t", torch::rand({num_samples, dim}).mul_(2 * s).add_(-s));
        // -1: not set yet (the first batch sets them).
        z_s = register_buffer("z_s", torch::full({1}, -1.0));
        z_t = register_buffer("z_t", torch::full({1}, -1.0));
    }
    nn::Linear embed_s, embed_t;
    torch::Tensor memory_s;  // student embeddings per sample (the reference's memory_v1)
    torch::Tensor memory_t;  // teacher embeddings per sample (memory_v2)
    torch::Tensor z_s, z_t;  // normalization constants of P_s, P_t
};
TORCH_MODULE(CrdModule);

torch::Tensor embed(nn::Linear &linear, const torch::Tensor &pooled) {
    const torch::Tensor x = linear(pooled.reshape({pooled.size(0), -1}));
    return x / x.pow(2).sum(1, /*keepdim=*/true).sqrt();
}

// exp(<memory[idx[b,k]], v[b]> / T): [B, K+1], from the bank as it is before this
// batch's update. Two ways to the same dot products:
//  - gather (the reference's): copy the B (K+1) rows, one batched product; memory
//    B (K+1) dim, which autograd keeps for backward (537 MB per bank in fp32 at B 64,
//    K 16384, dim 128), and LibTorch's row gather is slow on the CPU (3.4 s for those
//    rows on the 2-core test machine);
//  - dense: all N scores by one GEMM, then the batch's columns; memory B N plus one
//    snapshot of the bank for backward (the bank is updated in place after scoring),
//    about 38 MB per bank at N 50000, and 0.1 s on that machine.
// Dense is taken while its GEMM does at most kDenseRatio times the gather's row copies.
constexpr int64_t kDenseRatio = 16;
torch::Tensor exp_scores(const torch::Tensor &memory, const torch::Tensor &idx, const torch::Tensor &v,
                         double temperature, bool update_follows) {
    const int64_t b = idx.size(0), cols = idx.size(1), n = memory.size(0);
    torch::Tensor dots;
    if (n <= kDenseRatio * cols) {
        const bool backward_reads_bank = update_follows && v.requires_grad();
        dots = torch::mm(v, (backward_reads_bank ? memory.clone() : memory).t()).gather(1, idx);
    } else {
        // index_select copies the rows, so the update after scoring does not touch them.
        const torch::Tensor rows = memory.index_select(0, idx.reshape({-1})).view({b, cols, memory.size(1)});
        dots = torch::bmm(rows, v.unsqueeze(2)).squeeze(2);
    }
    return dots.div(temperature).exp();
}

// The reference's ContrastLoss on P [B, K+1] (column 0 the positive).
torch::Tensor nce_loss(const torch::Tensor &p, int64_t num_samples) {
    const double eps = 1e-7, m = double(p.size(1) - 1), mpn = m / double(num_samples);
    const torch::Tensor pos = p.select(1, 0), neg = p.narrow(1, 1, p.size(1) - 1);
    const torch::Tensor log_d1 = (pos / (pos + (mpn + eps))).log();
    const torch::Tensor log_d0 = (mpn / (neg + (mpn + eps))).log();
    return -(log_d1.sum() + log_d0.sum()) / double(p.size(0));
}

// Z on the first batch (stored unless the state is frozen), then the stored value.
// The stored value is read back, so Z is rounded to the buffer's dtype as the reference's.
double normalizer(torch::Tensor &z, const torch::Tensor &scores, int64_t num_samples, bool update_state) {
    const double stored = z.item<double>();
    if (stored >= 0) return stored;
    const double first = scores.detach().mean().item<double>() * double(num_samples);
    if (!update_state) return first;
    z.fill_(first);
    return z.item<double>();
}

// memory[y] = normalize(momentum * memory[y] + (1 - momentum) * v), without gradient.
void update_memory(torch::Tensor &memory, const torch::Tensor &y, const torch::Tensor &v, double momentum) {
    torch::NoGradGuard no_grad;
    torch::Tensor rows = memory.index_select(0, y).mul_(momentum).add_(v.detach() * (1 - momentum));
    rows = rows / rows.pow(2).sum(1, /*keepdim=*/true).sqrt();
    memory.index_copy_(0, y, rows);
}

class CrdObjective : public Objective {
public:
    explicit CrdObjective(const ObjectiveOptions &o)
        : dim_(o.crd_dim), negatives_(o.crd_negatives), temperature_(o.crd_temperature), momentum_(o.crd_momentum) {}
    std::string name() const override { return "crd"; }
    TapRequest student_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }
    TapRequest teacher_taps() const override { return TapRequest::of(false, false, /*pooled=*/true); }
    int64_t contrast_negatives() const override { return negatives_; }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &context) override {
        if (dim_ < 1) throw std::invalid_argument("crd: embedding size " + std::to_string(dim_) + "; expected >= 1");
        if (!(temperature_ > 0))
            throw std::invalid_argument("crd: temperature " + std::to_string(temperature_) + "; expected > 0");
        if (!(momentum_ >= 0 && momentum_ < 1))
            throw std::invalid_argument("crd: memory momentum " + std::to_string(momentum_) + "; expected in [0, 1)");
        if (context.num_samples <= 0)
            throw std::invalid_argument("crd needs the training set size for its memory banks; got " +
                                        std::to_string(context.num_samples) + " samples (expected > 0)");
        if (negatives_ < 1 || negatives_ >= context.num_samples)
            throw std::invalid_argument("crd: K = " + std::to_string(negatives_) +
                                        " negatives per sample; expected 1 <= K < " +
                                        std::to_string(context.num_samples) + " (the training set size)");
        const int64_t s_dim = pooled_dim("student", student), t_dim = pooled_dim("teacher", teacher);
        num_samples_ = context.num_samples;
        module_ = CrdModule(s_dim, t_dim, dim_, num_samples_);
        module_->to(student.pooled.device());
    }
    torch::nn::Module *module() override { return module_ ? module_.get() : nullptr; }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        TORCH_CHECK(module_, "crd: evaluate() before prepare()");
        const int64_t b = in.student.pooled.size(0);
        const torch::Tensor idx = checked_indices(in.contrast_indices, b);
        // The reference updates the memory at the batch's sample indices; in its "exact"
        // mode (the only one here) they are column 0, which this objective uses.
        if (in.indices.defined() && !torch::equal(in.indices.to(idx.device()).reshape({-1}), idx.select(1, 0)))
            throw std::invalid_argument("crd: column 0 of the contrast indices must be each sample's own index "
                                        "(the batch's sample indices); they differ");
        const torch::Tensor v_s = embed(module_->embed_s, in.student.pooled);
        const torch::Tensor v_t = embed(module_->embed_t, in.teacher.pooled.detach());
        const torch::Tensor out_s = exp_scores(module_->memory_t, idx, v_s, temperature_, in.update_state);
        const torch::Tensor out_t = exp_scores(module_->memory_s, idx, v_t, temperature_, in.update_state);
        const double z_s = normalizer(module_->z_s, out_s, num_samples_, in.update_state);
        const double z_t = normalizer(module_->z_t, out_t, num_samples_, in.update_state);
        const ObjectiveValue v =
            ObjectiveValue::of_loss_tensor(nce_loss(out_s / z_s, num_samples_) + nce_loss(out_t / z_t, num_samples_));
        if (in.update_state) {
            const torch::Tensor y = idx.select(1, 0).contiguous();
            update_memory(module_->memory_s, y, v_s, momentum_);
            update_memory(module_->memory_t, y, v_t, momentum_);
        }
        return v;
    }

private:
    static int64_t pooled_dim(const char *which, const NetOutputs &out) {
        if (!out.pooled.defined() || out.pooled.dim() < 2 || out.pooled.size(0) < 1 || out.pooled.numel() == 0)
            throw std::invalid_argument(std::string("crd reads the ") + which +
                                        "'s pooled embedding (expected [batch, features]); the " + which +
                                        (out.pooled.defined() ? " gives " + std::string(c10::str(out.pooled.sizes()))
                                                              : std::string(" gives none")));
        return out.pooled.numel() / out.pooled.size(0);
    }
    at::Tensor checked_indices(const at::Tensor &idx, int64_t batch) const {
        const std::string expected = "crd needs sample indices and K negatives per sample from the data loader: "
                                     "expected int64 contrast indices [" +
                                     std::to_string(batch) + ", " + std::to_string(negatives_ + 1) + "] (K = " +
                                     std::to_string(negatives_) + ")";
        if (!idx.defined()) throw std::invalid_argument(expected + "; the batch has none");
        if (idx.dim() != 2 || idx.size(0) != batch || idx.size(1) != negatives_ + 1 || idx.scalar_type() != at::kLong)
            throw std::invalid_argument(expected + "; got " + std::string(c10::toString(idx.scalar_type())) + " " +
                                        std::string(c10::str(idx.sizes())));
        const at::Tensor on = idx.to(module_->memory_s.device());
        const int64_t lo = on.min().item<int64_t>(), hi = on.max().item<int64_t>();
        if (lo < 0 || hi >= num_samples_)
            throw std::invalid_argument("crd: contrast indices span [" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + "]; expected sample indices in [0, " +
                                        std::to_string(num_samples_) + ")");
        return on;
    }

    int64_t dim_, negatives_;
    double temperature_, momentum_;
    int64_t num_samples_ = 0;
    CrdModule module_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_crd_objective(const ObjectiveOptions &options) {
    return std::make_unique<CrdObjective>(options);
}

}  // namespace dtokd
