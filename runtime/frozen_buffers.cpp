// See frozen_buffers.h.
#include "frozen_buffers.h"

#include <torch/nn/module.h>

namespace dtokd {

FrozenBuffers::FrozenBuffers(torch::nn::Module &module) {
    at::NoGradGuard no_grad;
    for (const at::Tensor &b : module.buffers(/*recurse=*/true)) {
        live_.push_back(b);
        saved_.push_back(b.clone());
    }
}

FrozenBuffers::~FrozenBuffers() {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < live_.size(); i++) live_[i].copy_(saved_[i]);
}

}  // namespace dtokd
