// The reads of device values back to the host that a step needs (losses, Gram entries):
// on a GPU the only places a step waits for the device. Each is one copy, and it is the
// one wait LibTorch's sync debug mode lets pass (tests/cuda: any other wait is an error).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace dtokd {

// Every element of `values` (any shape, any floating or integer type) as doubles.
std::vector<double> read_to_host(const at::Tensor &values);

}  // namespace dtokd
