// What the linked LibTorch offers for CUDA: a CUDA build (cuda_device.cpp) or not
// (cuda_device_none.cpp), chosen by CMake from the LibTorch it found (DTOKD_WITH_TORCH_CUDA).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtokd {

struct GpuInfo {
    int index = 0;
    std::string name;
    int major = 0, minor = 0;  // compute capability
    int64_t memory_bytes = 0;
    int multiprocessors = 0;
};

// True when this dtokd is built against a LibTorch with CUDA (decided at build time: a
// CPU LibTorch and a CUDA LibTorch on a machine without a GPU look alike at run time).
bool torch_built_with_cuda();
// The CUDA runtime version LibTorch was built with ("" without CUDA), e.g. "13.0".
std::string torch_cuda_version();
// The GPUs this process sees (none without CUDA).
std::vector<GpuInfo> visible_gpus();
// While alive, a wait for the device on this thread is not reported by LibTorch's sync debug
// mode (c10::cuda::warning_state()): the intended reads of results (host_readback.h).
// Nothing on a LibTorch without CUDA.
class ExpectedDeviceWait {
public:
    ExpectedDeviceWait();
    ~ExpectedDeviceWait();
    ExpectedDeviceWait(const ExpectedDeviceWait &) = delete;
    ExpectedDeviceWait &operator=(const ExpectedDeviceWait &) = delete;

private:
    int saved_mode_ = 0;
};

// True when the Halide CUDA kernels are linked into dtokd, so the halide back end runs on
// a GPU too (halide_cuda_kernels.cpp; false from halide_cuda_kernels_none.cpp).
bool halide_cuda_kernels_linked();

}  // namespace dtokd
