// The common base of every zoo model: an image classifier mapping [B, C, H, W]
// to logits [B, classes], and on request the intermediate features distillation
// losses read (the convention of the reference KD code, mdistiller/RepDistiller).
// One virtual forward lets make_model() hand out any family behind one pointer that
// is also a torch::nn::Module (parameters, train()/eval(), to(), save/load). Only
// <torch/nn/module.h>, not <torch/torch.h>, so that model_factory.h stays light.
#pragma once
#include <torch/nn/module.h>

#include <utility>
#include <vector>

namespace dtokd {

// Which intermediate features one forward keeps. Nothing by default: a plain
// (logit-only) step keeps no activation it would not keep anyway.
struct FeatureRequest {
    bool feats = false;         // per-stage outputs after ReLU
    bool preact_feats = false;  // the same stages before their last ReLU
    bool pooled = false;        // the pooled embedding the classifier reads
    bool any() const { return feats || preact_feats || pooled; }
};

// What one forward returns. Empty vectors / undefined tensors for what was not requested.
// Each family's header states its taps; as in mdistiller, the stem entry of preact_feats
// is f0 itself, and wide ResNets / MobileNetV2 follow their reference's own convention.
struct ModelOutputs {
    torch::Tensor logits;                     // [B, classes]
    std::vector<torch::Tensor> feats;         // f0 (stem, where there is one), f1..fS, post-ReLU
    std::vector<torch::Tensor> preact_feats;  // the same list before the last ReLU of each
    torch::Tensor pooled;                     // [B, D]
};

// Appends one stage's taps to `out`, each only when `request` asks for it (so a
// logit-only forward holds no extra reference). Every family's forward_features uses it.
inline void record_stage(ModelOutputs &out, const FeatureRequest &request, const torch::Tensor &feat,
                         const torch::Tensor &preact) {
    if (request.feats) out.feats.push_back(feat);
    if (request.preact_feats) out.preact_feats.push_back(preact);
}

struct ClassifierImpl : torch::nn::Module {
    virtual torch::Tensor forward(torch::Tensor x) = 0;
    // One forward that records the requested taps on the way (never a second pass).
    // Every zoo family overrides it; this base serves logit-only requests.
    virtual ModelOutputs forward_features(torch::Tensor x, const FeatureRequest &request) {
        TORCH_CHECK(!request.any(), name(), " gives no intermediate features");
        ModelOutputs out;
        out.logits = forward(std::move(x));
        return out;
    }
    // Per preact_feats entry: the (weight, bias) parameters of the BatchNorm that the reference's
    // get_bn_before_relu names for that stage (OFD's margins come from them), the live tensors;
    // undefined where there is none (stems; families the reference does not support). Where the
    // entry adds a shortcut to that BN's output (ResNet blocks) the BN is still the reference's pick.
    // Empty: the model does not say.
    virtual std::vector<std::pair<torch::Tensor, torch::Tensor>> preact_bn_affine() { return {}; }
};

}  // namespace dtokd
