// Tensor -> Halide buffer wrapping and Halide error capture (see halide_bridge.h).
#include "halide_bridge.h"

#include <HalideRuntime.h>

#include <stdexcept>
#include <string>

#include "tensor_checks.h"

namespace dtokd::detail {

namespace {
thread_local std::string last_halide_error;

extern "C" void capture_halide_error(void * /*user_context*/, const char *message) {
    last_halide_error = message ? message : "";
}

// Installed once before the first kernel call; Halide's default handler would
// only print to stderr.
const bool error_handler_installed = [] {
    halide_set_error_handler(capture_halide_error);
    return true;
}();
}  // namespace

void check_cpu(const char *kernel, const char *name, const at::Tensor &t) {
    if (!t.device().is_cpu())
        throw std::invalid_argument(std::string(kernel) + ": " + name + " is " + describe(t) +
                                    "; the halide back end runs on CPU tensors (use --kernels=torch)");
}

namespace {
int checked_extent(int64_t n, const char *what) {
    if (n > INT32_MAX)
        throw std::invalid_argument(std::string(what) + " has " + std::to_string(n) +
                                    " elements; Halide buffers hold at most 2^31-1 per dimension");
    return static_cast<int>(n);
}
}  // namespace

Halide::Runtime::Buffer<float> flat_buffer(const at::Tensor &t) {
    checked_extent(t.numel(), "tensor");
    return Halide::Runtime::Buffer<float>(t.data_ptr<float>(), static_cast<int>(t.numel()));
}

Halide::Runtime::Buffer<float> matrix_buffer(const at::Tensor &t) {
    return Halide::Runtime::Buffer<float>(t.data_ptr<float>(), static_cast<int>(t.size(1)),
                                          static_cast<int>(t.size(0)));
}

Halide::Runtime::Buffer<int32_t> int_buffer(const at::Tensor &t) {
    return Halide::Runtime::Buffer<int32_t>(t.data_ptr<int32_t>(), static_cast<int>(t.numel()));
}

void check_halide_status(int status, const char *kernel) {
    (void)error_handler_installed;
    if (status == 0) return;
    std::string message = last_halide_error;
    last_halide_error.clear();
    throw std::runtime_error(std::string(kernel) + ": Halide error " + std::to_string(status) +
                             (message.empty() ? "" : ": " + message));
}

}  // namespace dtokd::detail
