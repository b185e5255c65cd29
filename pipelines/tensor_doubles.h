// A list of doubles as a float64 tensor and back: how checkpoints store small states
// (a policy's logits and moments, the loop's measures, the metrics window).
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace dtokd {

inline at::Tensor doubles_to_tensor(const std::vector<double> &v) {
    at::Tensor t = at::empty({int64_t(v.size())}, at::kDouble);
    for (size_t i = 0; i < v.size(); i++) t.data_ptr<double>()[i] = v[i];
    return t;
}

inline std::vector<double> tensor_to_doubles(const at::Tensor &t) {
    const at::Tensor c = t.to(at::kDouble).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace dtokd
