// `fitnet` (Romero et al. 2015, as mdistiller's FitNet computes it; shared/KD_LOSSES.md):
// L = mean squared error between ConvReg(student hint) and the teacher's hint
// feature (post-ReLU stage output, feats[2] by default). ConvReg bridges the shapes:
//   s_H == 2 t_H: Conv 3x3 stride 2 pad 1;  2 s_H == t_H: ConvTranspose 4x4 stride 2 pad 1;
//   s_H >= t_H: Conv with kernel (1 + s_H - t_H, 1 + s_W - t_W);
// each with bias, then BatchNorm(t_C) and ReLU. The regressor is objective 'fitnet's
// own trainable module: it steps with this objective's gradient only.
#include <torch/torch.h>

#include <stdexcept>

#include "objective_registry.h"

namespace dtokd {
namespace {

namespace nn = torch::nn;

struct ConvRegImpl : nn::Module {
    ConvRegImpl(at::IntArrayRef s, at::IntArrayRef t) {
        const int64_t s_c = s[1], s_h = s[2], s_w = s[3], t_c = t[1], t_h = t[2], t_w = t[3];
        if (s_h == 2 * t_h)
            conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(s_c, t_c, /*kernel_size=*/3).stride(2).padding(1)));
        else if (2 * s_h == t_h)
            deconv = register_module(
                "conv", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(s_c, t_c, /*kernel_size=*/4).stride(2).padding(1)));
        else if (s_h >= t_h && s_w >= t_w)
            conv = register_module(
                "conv", nn::Conv2d(nn::Conv2dOptions(s_c, t_c, /*kernel_size=*/{1 + s_h - t_h, 1 + s_w - t_w})));
        else
            throw std::invalid_argument("fitnet: student hint " + std::string(c10::str(s)) + " and teacher hint " +
                                        std::string(c10::str(t)) +
                                        ": no regressor bridges them (expected the student map 2x, 1/2x or at least "
                                        "as large as the teacher's)");
        bn = register_module("bn", nn::BatchNorm2d(t_c));
    }
    torch::Tensor forward(const torch::Tensor &x) {
        return torch::relu(bn(conv ? conv(x) : deconv(x)));
    }
    nn::Conv2d conv{nullptr};
    nn::ConvTranspose2d deconv{nullptr};
    nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvReg);

void check_map(const char *which, const std::vector<at::Tensor> &feats, int hint) {
    if (hint >= int(feats.size()))
        throw std::invalid_argument(std::string("fitnet: the ") + which + " gives " + std::to_string(feats.size()) +
                                    " stage features; hint layer " + std::to_string(hint) +
                                    " needs at least " + std::to_string(hint + 1));
    if (feats[size_t(hint)].dim() != 4)
        throw std::invalid_argument(std::string("fitnet: the ") + which + "'s hint feature is " +
                                    std::string(c10::str(feats[size_t(hint)].sizes())) +
                                    "; expected a [batch, channels, height, width] map");
}

class FitNetObjective : public Objective {
public:
    explicit FitNetObjective(int hint_layer) : hint_(hint_layer) {}
    std::string name() const override { return "fitnet"; }
    TapRequest student_taps() const override { return TapRequest::of(/*feats=*/true, false, false); }
    TapRequest teacher_taps() const override { return TapRequest::of(/*feats=*/true, false, false); }

    void prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &) override {
        if (student.feats.empty() || teacher.feats.empty())
            throw std::invalid_argument(std::string("fitnet needs stage features from ") +
                                        (student.feats.empty() ? "the student" : "the teacher") +
                                        ", which gives none");
        if (hint_ < 0) {
            const int common = int(std::min(student.feats.size(), teacher.feats.size()));
            hint_ = std::min(2, common - 1);
        }
        check_map("student", student.feats, hint_);
        check_map("teacher", teacher.feats, hint_);
        regressor_ = ConvReg(student.feats[size_t(hint_)].sizes(), teacher.feats[size_t(hint_)].sizes());
        regressor_->to(student.feats[size_t(hint_)].device());
    }
    torch::nn::Module *module() override { return regressor_ ? regressor_.get() : nullptr; }

    ObjectiveValue evaluate(const ObjectiveInputs &in) override {
        TORCH_CHECK(regressor_, "fitnet: evaluate() before prepare()");
        const at::Tensor fs = in.student.feats.at(size_t(hint_));
        const at::Tensor ft = in.teacher.feats.at(size_t(hint_)).detach();
        return ObjectiveValue::of_loss_tensor(torch::mse_loss(regressor_(fs), ft));
    }

private:
    int hint_;
    ConvReg regressor_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_fitnet_objective(int hint_layer) {
    return std::make_unique<FitNetObjective>(hint_layer);
}

}  // namespace dtokd
