// make_model(): the zoo by name, for pipelines and tests. The result is both a
// torch::nn::Module (parameters, train()/eval(), to(), save/load) and a forward
// call; this header pulls only <torch/nn/module.h>, never <torch/torch.h>.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "classifier.h"

namespace dtokd {

// A fresh, randomly initialised `name` for `in_channels`-channel images and
// `num_classes` classes, in training mode on the CPU. Every model takes any input
// of at least 28x28 (3x32x32 CIFAR and 1x28x28 Fashion-MNIST included) and returns
// logits [B, num_classes]. Throws std::invalid_argument for an unknown name (the
// message lists model_names()) or for in_channels / num_classes < 1.
std::shared_ptr<ClassifierImpl> make_model(const std::string &name, int in_channels, int num_classes);

// Every name make_model() accepts, in a stable order (small CNNs, then the CIFAR zoo by family).
std::vector<std::string> model_names();

}  // namespace dtokd
