// Input validation shared by both kernel back ends: one clear std::invalid_argument
// naming the kernel, the tensor, what it is and what was expected.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace dtokd::detail {

// "float32[3, 4] on cpu (contiguous)": used in every error message.
std::string describe(const at::Tensor &t);

// Defined, float32, contiguous, numel >= 1.
void check_float_tensor(const char *kernel, const char *name, const at::Tensor &t);
void check_same_numel(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                      const at::Tensor &b);
void check_same_device(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                       const at::Tensor &b);
void check_same_shape(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                      const at::Tensor &b);
void check_finite_scalar(const char *kernel, const char *name, double value);
void check_positive_scalar(const char *kernel, const char *name, double value);

}  // namespace dtokd::detail
