// See flat_arena.h.
#include "flat_arena.h"

#include <torch/nn/module.h>

#include <stdexcept>

#include "kernels.h"

namespace dtokd {

FlatArena::FlatArena(torch::nn::Module &module, int gradient_arenas) : module_(module) {
    if (gradient_arenas < 1 || gradient_arenas > kMaxObjectives)
        throw std::invalid_argument("FlatArena: gradient_arenas is " + std::to_string(gradient_arenas) +
                                    "; expected 1.." + std::to_string(kMaxObjectives));
    int64_t total = 0;
    for (const auto &item : module.named_parameters(/*recurse=*/true)) {
        const at::Tensor &p = item.value();
        if (!p.requires_grad()) continue;
        if (p.scalar_type() != at::kFloat)
            throw std::invalid_argument("FlatArena: parameter '" + item.key() + "' is " +
                                        std::string(c10::toString(p.scalar_type())) + "; expected float32");
        slots_.push_back({item.key(), p.sizes().vec(), total, p.numel()});
        param_refs_.push_back(p);
        total += p.numel();
    }
    if (total == 0) throw std::invalid_argument("FlatArena: the module has no trainable parameters");
    const at::Device device = param_refs_.front().device();
    params_ = at::empty({total}, at::TensorOptions().dtype(at::kFloat).device(device));
    for (int k = 0; k < gradient_arenas; k++) grads_.push_back(at::zeros_like(params_));
    rebind();
}

void FlatArena::bind_views() {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < slots_.size(); i++) {
        const Slot &s = slots_[i];
        param_refs_[i].set_data(params_.narrow(0, s.offset, s.numel).view(s.shape));
    }
    if (routed_ >= 0) route_gradients_to(routed_);
}

void FlatArena::rebind() {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < slots_.size(); i++) {
        const Slot &s = slots_[i];
        const at::Tensor &p = param_refs_[i];
        if (p.sizes().vec() != s.shape)
            throw std::invalid_argument("FlatArena: parameter '" + s.name + "' changed shape");
        // Skip the copy when it is still our view (e.g. after an in-place load).
        if (p.data_ptr() != params_.data_ptr<float>() + s.offset)
            params_.narrow(0, s.offset, s.numel).copy_(p.reshape({-1}));
    }
    bind_views();
}

void FlatArena::to(const at::Device &device) {
    params_ = params_.to(device);
    for (auto &g : grads_) g = g.to(device);
    bind_views();
}

void FlatArena::route_gradients_to(int arena) {
    at::Tensor &g = grads_.at(arena);
    g.zero_();
    for (size_t i = 0; i < slots_.size(); i++) {
        const Slot &s = slots_[i];
        param_refs_[i].mutable_grad() = g.narrow(0, s.offset, s.numel).view(s.shape);
    }
    routed_ = arena;
}

bool FlatArena::views_intact(std::string *why) const {
    const float *base = params_.data_ptr<float>();
    for (size_t i = 0; i < slots_.size(); i++) {
        const Slot &s = slots_[i];
        const at::Tensor &p = param_refs_[i];
        if (p.data_ptr() != static_cast<const void *>(base + s.offset)) {
            if (why) *why = "parameter '" + s.name + "' no longer views the arena";
            return false;
        }
        if (routed_ >= 0) {
            const at::Tensor &g = p.grad();
            const float *gbase = grads_[routed_].data_ptr<float>();
            if (!g.defined() || g.data_ptr() != static_cast<const void *>(gbase + s.offset)) {
                if (why) *why = "gradient of '" + s.name + "' no longer views arena " + std::to_string(routed_);
                return false;
            }
        }
    }
    return true;
}

}  // namespace dtokd
