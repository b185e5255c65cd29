// cuda_device.h for a CUDA LibTorch (built only with DTOKD_WITH_TORCH_CUDA).
#include "cuda_device.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>

namespace dtokd {

bool torch_built_with_cuda() { return true; }

std::string torch_cuda_version() {
#ifdef CUDA_VERSION
    return std::to_string(CUDA_VERSION / 1000) + "." + std::to_string(CUDA_VERSION % 1000 / 10);
#else
    return "unknown";
#endif
}

// The mode is process-wide; steps run on one thread, so a save and restore is enough.
ExpectedDeviceWait::ExpectedDeviceWait() : saved_mode_(int(c10::cuda::warning_state().get_sync_debug_mode())) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
}
ExpectedDeviceWait::~ExpectedDeviceWait() {
    c10::cuda::warning_state().set_sync_debug_mode(static_cast<c10::cuda::SyncDebugMode>(saved_mode_));
}

std::vector<GpuInfo> visible_gpus() {
    std::vector<GpuInfo> out;
    const int n = int(c10::cuda::device_count());
    for (int i = 0; i < n; i++) {
        const cudaDeviceProp *p = at::cuda::getDeviceProperties(i);
        GpuInfo g;
        g.index = i;
        g.name = p->name;
        g.major = p->major;
        g.minor = p->minor;
        g.memory_bytes = int64_t(p->totalGlobalMem);
        g.multiprocessors = p->multiProcessorCount;
        out.push_back(g);
    }
    return out;
}

}  // namespace dtokd
