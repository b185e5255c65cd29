// Zero-copy bridge from torch::Tensor to Halide::Runtime::Buffer, and the error
// path for generated kernels: a non-zero return code becomes one exception that
// names the kernel and carries the message Halide reported.
#pragma once
#include <ATen/core/Tensor.h>
#include <HalideBuffer.h>

#include <cstdint>

namespace dtokd::detail {

// A 1-D float view over all elements of a contiguous float32 CPU tensor.
Halide::Runtime::Buffer<float> flat_buffer(const at::Tensor &t);
// A [B, C] row-major float32 CPU tensor as a Halide buffer with dim 0 = C, dim 1 = B.
Halide::Runtime::Buffer<float> matrix_buffer(const at::Tensor &t);
Halide::Runtime::Buffer<int32_t> int_buffer(const at::Tensor &t);

// Throws std::runtime_error("<kernel>: Halide error <status>: <message>") when status != 0.
void check_halide_status(int status, const char *kernel);

// The Halide kernels here are CPU kernels: throws std::invalid_argument otherwise.
void check_cpu(const char *kernel, const char *name, const at::Tensor &t);

}  // namespace dtokd::detail
