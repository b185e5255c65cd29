// RAII: snapshot a module's buffers (BatchNorm running mean/var, counters) and
// restore them on scope exit, so an extra train-mode forward leaves no trace.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace torch::nn {
class Module;
}

namespace dtokd {

class FrozenBuffers {
public:
    explicit FrozenBuffers(torch::nn::Module &module);
    ~FrozenBuffers();
    FrozenBuffers(const FrozenBuffers &) = delete;
    FrozenBuffers &operator=(const FrozenBuffers &) = delete;

private:
    std::vector<at::Tensor> live_, saved_;
};

}  // namespace dtokd
