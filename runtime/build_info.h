// What this binary was built with and what the machine offers: printed by `dtokd info`
// and recorded in each run's metadata.
#pragma once
#include <string>
#include <vector>

#include "cuda_device.h"

namespace dtokd {

struct BuildInfo {
    std::string dtokd_version;
    std::string torch_version;
    std::string halide_version;
    std::vector<std::string> cpu_targets;  // multi-target list, most specific first
    std::string cpu_target_selected;       // the first one this CPU can run
    bool cuda_kernels_built = false;
    std::string cuda_target;
    bool torch_cuda = false;        // LibTorch built with CUDA (--device cuda possible)
    std::string torch_cuda_version;
    std::vector<GpuInfo> gpus;      // visible to this process
    bool halide_cuda_linked = false;
    std::vector<std::string> kernels;  // generated kernel libraries (default schedules)
    std::string kernel_schedules;      // selected schedule variant per kernel, one line each
    std::vector<std::string> cpu_features;
    int threads = 0;
    std::string host_allocator;  // configure_host_allocator's setting
    std::string blas;            // describe_blas()
};

BuildInfo build_info();
std::string format_build_info(const BuildInfo &info);

}  // namespace dtokd
