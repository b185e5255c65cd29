// Input validation for the kernel API (see tensor_checks.h).
#include "tensor_checks.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace dtokd::detail {

std::string describe(const at::Tensor &t) {
    if (!t.defined()) return "an undefined tensor";
    std::ostringstream os;
    os << c10::toString(t.scalar_type()) << t.sizes() << " on " << t.device()
       << (t.is_contiguous() ? " (contiguous)" : " (non-contiguous)");
    return os.str();
}

namespace {
[[noreturn]] void fail(const char *kernel, const std::string &what) {
    throw std::invalid_argument(std::string(kernel) + ": " + what);
}
}  // namespace

void check_float_tensor(const char *kernel, const char *name, const at::Tensor &t) {
    if (!t.defined()) fail(kernel, std::string(name) + " is an undefined tensor; expected a float32 tensor");
    if (t.scalar_type() != at::kFloat)
        fail(kernel, std::string(name) + " is " + describe(t) + "; expected dtype float32");
    if (!t.is_contiguous())
        fail(kernel, std::string(name) + " is " + describe(t) + "; expected a contiguous tensor");
    if (t.numel() < 1) fail(kernel, std::string(name) + " is " + describe(t) + "; expected at least 1 element");
}

void check_same_numel(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                      const at::Tensor &b) {
    if (a.numel() != b.numel())
        fail(kernel, std::string(name_a) + " is " + describe(a) + " but " + name_b + " is " + describe(b) +
                         "; expected the same number of elements");
}

void check_same_device(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                       const at::Tensor &b) {
    if (a.device() != b.device())
        fail(kernel, std::string(name_a) + " is " + describe(a) + " but " + name_b + " is " + describe(b) +
                         "; expected the same device");
}

void check_same_shape(const char *kernel, const char *name_a, const at::Tensor &a, const char *name_b,
                      const at::Tensor &b) {
    if (a.sizes() != b.sizes())
        fail(kernel, std::string(name_a) + " is " + describe(a) + " but " + name_b + " is " + describe(b) +
                         "; expected the same shape");
}

void check_finite_scalar(const char *kernel, const char *name, double value) {
    if (!std::isfinite(value))
        fail(kernel, std::string(name) + " is " + std::to_string(value) + "; expected a finite number");
}

void check_positive_scalar(const char *kernel, const char *name, double value) {
    if (!(value > 0) || !std::isfinite(value))
        fail(kernel, std::string(name) + " is " + std::to_string(value) + "; expected a finite number > 0");
}

}  // namespace dtokd::detail
