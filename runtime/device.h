// Where a run's tensors live: "cpu", "cuda" or "cuda:N", parsed and checked before any
// model is built. Messages name the device and what was expected (the CLI adds its flag).
#pragma once
#include <c10/core/Device.h>

#include <string>

#include "kernels.h"

namespace dtokd {

// "cpu", "cuda" (= cuda:0) or "cuda:N"; anything else throws std::invalid_argument.
at::Device parse_device(const std::string &name);
// "cpu" or "cuda:N".
std::string device_name(const at::Device &device);

// Throws std::invalid_argument when this dtokd cannot run on `device`: a LibTorch built
// without CUDA, no visible GPU, or an index past the visible ones.
void check_device_usable(const at::Device &device);
// The halide back end on a GPU needs the Halide CUDA kernels linked into this dtokd.
void check_backend_on_device(KernelBackend backend, const at::Device &device);
// Data-parallel ranks exchange through Gloo on host memory: CUDA runs are one process.
void check_device_for_ranks(const at::Device &device, int world_size);

}  // namespace dtokd
