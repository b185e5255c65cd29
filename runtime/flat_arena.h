// All trainable parameters of a module in ONE contiguous float32 buffer, each
// parameter a view into it, and gradient arenas that backward writes into
// directly (each .grad is a view), so the Halide kernels see one flat buffer and
// no gather/scatter copy happens per step. Buffers (BatchNorm statistics) stay
// where they are. Exact DTO-KD uses N gradient arenas and switches the .grad
// views between them between its N backward passes.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace dtokd {

class FlatArena {
public:
    struct Slot {
        std::string name;
        std::vector<int64_t> shape;
        int64_t offset = 0;
        int64_t numel = 0;
    };

    // Moves every trainable parameter of `module` into the arena (values kept),
    // with `gradient_arenas` (1..kMaxObjectives) gradient buffers. The module must outlive the arena.
    FlatArena(torch::nn::Module &module, int gradient_arenas);

    int64_t numel() const { return params_.numel(); }
    const std::vector<Slot> &slots() const { return slots_; }
    at::Tensor &params() { return params_; }
    const at::Tensor &params() const { return params_; }
    at::Tensor &gradients(int arena) { return grads_.at(arena); }
    int gradient_arenas() const { return int(grads_.size()); }

    // Zero gradient arena `arena` and point every parameter's .grad at its slice,
    // so the next backward accumulates into it in place.
    void route_gradients_to(int arena);

    // True when every parameter is still a view at its slot and every .grad routed
    // to the arena it was last routed to; else `why` says which parameter broke.
    bool views_intact(std::string *why = nullptr) const;

    // Re-adopt the module's current parameter values (after something replaced
    // them, e.g. torch::load or Module::to): copies them in and re-views. The .grad
    // views are re-routed too, which zeroes the routed gradient arena.
    void rebind();

    // Moves the arena (parameters, gradients) to `device` and re-views; use this
    // instead of module.to(device), which would break the views. Like rebind(), it
    // zeroes the routed gradient arena.
    void to(const at::Device &device);

private:
    void bind_views();
    torch::nn::Module &module_;
    std::vector<Slot> slots_;
    std::vector<at::Tensor> param_refs_;  // the module's parameter variables
    at::Tensor params_;
    std::vector<at::Tensor> grads_;
    int routed_ = -1;
};

}  // namespace dtokd
