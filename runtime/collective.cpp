// See collective.h.
#include "collective.h"

#include <ATen/ATen.h>

#include <cstring>

namespace dtokd {

void Collective::count(const std::vector<at::Tensor> &tensors) {
    for (const at::Tensor &t : tensors) bytes_ += int64_t(t.numel()) * int64_t(t.element_size());
}

void sum_values(Collective &c, std::vector<double> &values) {
    if (values.empty()) return;
    std::vector<at::Tensor> t = {at::empty({int64_t(values.size())}, at::kDouble)};
    std::memcpy(t[0].data_ptr<double>(), values.data(), values.size() * sizeof(double));
    c.sum(t);
    std::memcpy(values.data(), t[0].data_ptr<double>(), values.size() * sizeof(double));
}

}  // namespace dtokd
