// A model the pipeline trains or distills from (a handle over the zoo module): the zoo module plus what a
// checkpoint must record about it. Teachers may also be TorchScript files, which return logits alone or
// (logits, dict) with mdistiller's feature keys (README "TorchScript teachers").
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "classifier.h"  // FeatureRequest, ModelOutputs (torch/nn/module.h, not torch/torch.h)

namespace dtokd {

struct ModelHandle {
    std::string name;  // zoo name, or "torchscript:<file>"
    int in_channels = 0, height = 0, width = 0, num_classes = 0;
    // A dtokd checkpoint of an image-folder run: its class names in label order; else empty.
    std::vector<std::string> class_names;
    std::shared_ptr<torch::nn::Module> module;  // null for TorchScript teachers
    std::function<at::Tensor(const at::Tensor &)> forward;  // logits
    // The same one forward, also returning the requested intermediate features. Asking for a
    // tap outside `feature_taps` is a std::runtime_error naming the model (check_gives_features).
    std::function<ModelOutputs(const at::Tensor &, const FeatureRequest &)> forward_features;
    // The taps forward_features can fill: all of them for zoo models and dtokd checkpoints; for
    // a TorchScript file, what its output dict holds (none for a logits-only teacher).
    FeatureRequest feature_taps;
    bool gives_features() const { return feature_taps.any(); }
    std::function<void(bool)> set_train;  // train(true) / eval(false)
    // Per preact_feats entry, the (weight, bias) of the BatchNorm before it (ClassifierImpl::
    // preact_bn_affine; OFD's margins). Null for TorchScript teachers, which do not say.
    std::function<std::vector<std::pair<at::Tensor, at::Tensor>>()> preact_bn_affine;
    // Where its parameters and buffers are, and how to move them (move_to).
    at::Device device = at::kCPU;
    std::function<void(const at::Device &)> to;
};

// Moves the model's parameters and buffers to `device` (nothing when it is there already).
void move_to(ModelHandle &model, const at::Device &device);

// Throws a std::runtime_error naming `model` and the taps of `request` it does not give, so a
// trainer can fail before training when an objective needs features the teacher lacks.
void check_gives_features(const ModelHandle &model, const FeatureRequest &request);

// A fresh zoo model (models/make_model); unknown names list the known ones.
ModelHandle build_model(const std::string &name, int in_channels, int height, int width, int num_classes);

// A teacher from a dtokd checkpoint or a TorchScript file (torch.jit.save).
// Its input shape and class count are checked against the data (clear error before training),
// and a TorchScript teacher's output form is read once on a probe batch (logits, or
// (logits, dict) with 'feats' / 'preact_feats' lists and a 'pooled_feat' or 'pooled' tensor);
// any other form is a std::runtime_error naming the file and the accepted forms.
ModelHandle load_teacher(const std::string &path, int in_channels, int height, int width, int num_classes);

}  // namespace dtokd
