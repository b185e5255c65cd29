// A model the pipeline trains or distills from (a handle over the zoo module): the zoo module plus what a
// checkpoint must record about it. Teachers may also be TorchScript files.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "classifier.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

struct ModelHandle {
    std::string name;  // zoo name, or "torchscript:<file>"
    int in_channels = 0, height = 0, width = 0, num_classes = 0;
    std::shared_ptr<torch::nn::Module> module;  // null for TorchScript teachers
    std::function<at::Tensor(const at::Tensor &)> forward;
    std::function<void(bool)> set_train;  // train(true) / eval(false)
    // One forward keeping the requested intermediate features (models/classifier.h).
    std::function<ModelOutputs(const at::Tensor &, const FeatureRequest &)> forward_features;
    bool gives_features = false;  // false: logits only (forward_features serves empty requests)
};

// A fresh zoo model (models/make_model); unknown names list the known ones.
ModelHandle build_model(const std::string &name, int in_channels, int height, int width, int num_classes);

// A teacher from a dtokd checkpoint or a TorchScript file (torch.jit.save).
// Its input shape and class count are checked against the data (clear error before training).
ModelHandle load_teacher(const std::string &path, int in_channels, int height, int width, int num_classes);

}  // namespace dtokd
