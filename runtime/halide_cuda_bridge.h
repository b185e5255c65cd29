// Halide buffers over CUDA tensors' device memory (no host allocation, no copy), with
// Halide's CUDA runtime hooked up, on first use, to LibTorch's context and current stream:
// a generated CUDA kernel then reads and writes LibTorch's memory in stream order, without
// a host round trip or a synchronization. CUDA builds only (DTOKD_WITH_HALIDE_CUDA).
#pragma once
#include <ATen/core/Tensor.h>
#include <HalideBuffer.h>

#include <cstdint>

namespace dtokd::detail::cuda_bridge {

// A 1-D view over all elements of a contiguous float32 CUDA tensor.
Halide::Runtime::Buffer<float> device_flat_buffer(const at::Tensor &t);
// A [B, C] row-major float32 CUDA tensor as dim 0 = C, dim 1 = B (as matrix_buffer on the CPU).
Halide::Runtime::Buffer<float> device_matrix_buffer(const at::Tensor &t);
Halide::Runtime::Buffer<int32_t> device_int_buffer(const at::Tensor &t);
Halide::Runtime::Buffer<double> device_double_buffer(const at::Tensor &t);

}  // namespace dtokd::detail::cuda_bridge
