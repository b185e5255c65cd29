// See halide_cuda_bridge.h. Halide 14's CUDA runtime asks three hooks for its context and
// stream (HalideRuntimeCuda.h): they return the device's primary context, which LibTorch's
// runtime API uses (Halide's default would create a second context, where LibTorch's memory
// and streams are not valid), and LibTorch's current stream. The driver API is looked up in
// the libcuda LibTorch already loaded, so dtokd needs no link-time libcuda.
#include "halide_cuda_bridge.h"

#include <HalideRuntimeCuda.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <dlfcn.h>

#include <array>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "halide_bridge.h"
#include "tensor_checks.h"

namespace dtokd::detail::cuda_bridge {

namespace {

using CuDeviceGet = int (*)(int *, int);
using CuDevicePrimaryCtxRetain = int (*)(void **, int);

struct Driver {
    CuDeviceGet device_get = nullptr;
    CuDevicePrimaryCtxRetain primary_ctx_retain = nullptr;
};

// Null members when libcuda cannot be found (the hooks then report an error to Halide).
const Driver &driver() {
    static const Driver d = [] {
        Driver out;
        void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
        if (lib == nullptr) lib = dlopen("libcuda.so.1", RTLD_LAZY);
        if (lib == nullptr) return out;
        out.device_get = reinterpret_cast<CuDeviceGet>(dlsym(lib, "cuDeviceGet"));
        out.primary_ctx_retain = reinterpret_cast<CuDevicePrimaryCtxRetain>(dlsym(lib, "cuDevicePrimaryCtxRetain"));
        return out;
    }();
    return d;
}

constexpr int kMaxDevices = 64;
std::mutex contexts_mutex;
std::array<void *, kMaxDevices> primary_contexts{};  // retained once, never released

extern "C" int acquire_torch_context(void * /*user_context*/, void **ctx, bool create) {
    // Only Halide's cleanup asks without `create`: it gets nothing to release, so nothing
    // touches the driver while LibTorch may already be torn down.
    *ctx = nullptr;
    if (!create) return 0;
    const int device = c10::cuda::current_device();
    if (device < 0 || device >= kMaxDevices) return -1;
    std::lock_guard<std::mutex> lock(contexts_mutex);
    if (primary_contexts[size_t(device)] == nullptr) {
        const Driver &d = driver();
        int handle = 0;
        void *context = nullptr;
        if (d.device_get == nullptr || d.primary_ctx_retain == nullptr || d.device_get(&handle, device) != 0 ||
            d.primary_ctx_retain(&context, handle) != 0)
            return -1;
        primary_contexts[size_t(device)] = context;
    }
    *ctx = primary_contexts[size_t(device)];
    return 0;
}

extern "C" int release_torch_context(void * /*user_context*/) { return 0; }  // LibTorch's context is shared

extern "C" int torch_current_stream(void * /*user_context*/, void * /*context*/, void **stream) {
    // Called by halide_cuda_run just before the launch, on the calling (training) thread.
    *stream = c10::cuda::getCurrentCUDAStream().stream();
    return 0;
}

void hook_up_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        halide_set_cuda_acquire_context(acquire_torch_context);
        halide_set_cuda_release_context(release_torch_context);
        halide_set_cuda_get_stream(torch_current_stream);
        // Intermediate buffers are kept for the next call: a cuMemFree would synchronize the device.
        halide_reuse_device_allocations(nullptr, true);
    });
}

template <class T>
Halide::Runtime::Buffer<T> wrap(const at::Tensor &t, const std::vector<int> &extents, const char *what) {
    if (!t.is_cuda() || !t.is_contiguous())
        throw std::invalid_argument(std::string("CUDA buffer: ") + what + " is " + describe(t) +
                                    "; expected a contiguous CUDA tensor");
    for (int64_t n : t.sizes())
        if (n > INT32_MAX) throw std::invalid_argument(std::string("CUDA buffer: ") + what + " is too large for Halide");
    hook_up_once();
    // No host memory: an accidental copy to the host is a Halide error, not a silent
    // synchronous cuMemcpyDtoH.
    Halide::Runtime::Buffer<T> b(static_cast<T *>(nullptr), extents);
    check_halide_status(
        b.device_wrap_native(halide_cuda_device_interface(), uint64_t(reinterpret_cast<uintptr_t>(t.data_ptr()))),
        "CUDA buffer");
    b.set_host_dirty(false);
    b.set_device_dirty(false);  // the device memory is the truth
    return b;
}

}  // namespace

Halide::Runtime::Buffer<float> device_flat_buffer(const at::Tensor &t) {
    return wrap<float>(t, {int(t.numel())}, "a float tensor");
}
Halide::Runtime::Buffer<float> device_matrix_buffer(const at::Tensor &t) {
    return wrap<float>(t, {int(t.size(1)), int(t.size(0))}, "a float matrix");
}
Halide::Runtime::Buffer<int32_t> device_int_buffer(const at::Tensor &t) {
    return wrap<int32_t>(t, {int(t.numel())}, "an int32 tensor");
}
Halide::Runtime::Buffer<double> device_double_buffer(const at::Tensor &t) {
    return wrap<double>(t, {int(t.numel())}, "a float64 tensor");
}

}  // namespace dtokd::detail::cuda_bridge
