// See build_info.h. Target lists and versions come from CMake definitions.
#include "build_info.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <iomanip>
#include <sstream>

#include "blas_threads.h"
#include "host_allocator.h"
#include "kernel_selection.h"

namespace dtokd {

namespace {
std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, sep);)
        if (!item.empty()) out.push_back(item);
    return out;
}

bool cpu_has(const std::string &feature) {
    // The features Halide's x86 targets name; __builtin_cpu_supports needs literals.
    if (feature == "sse41") return __builtin_cpu_supports("sse4.1");
    if (feature == "avx") return __builtin_cpu_supports("avx");
    if (feature == "avx2") return __builtin_cpu_supports("avx2");
    if (feature == "fma") return __builtin_cpu_supports("fma");
    if (feature == "f16c") return true;  // not queryable here; implied by avx2 machines in practice
    if (feature == "avx512" || feature == "avx512_skylake")
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd");
    return false;
}
}  // namespace

BuildInfo build_info() {
    BuildInfo info;
    info.dtokd_version = DTOKD_VERSION;
    info.torch_version = TORCH_VERSION;
    info.halide_version = DTOKD_HALIDE_VERSION;
    info.cpu_targets = split(DTOKD_CPU_TARGETS_STR, ',');
    info.kernels = split(DTOKD_KERNELS_STR, ',');
    info.cuda_target = DTOKD_CUDA_TARGET_STR;
#ifdef DTOKD_WITH_CUDA_KERNELS
    info.cuda_kernels_built = true;
#endif
    info.torch_cuda = torch_built_with_cuda();
    info.torch_cuda_version = torch_cuda_version();
    info.gpus = visible_gpus();
    info.halide_cuda_linked = halide_cuda_kernels_linked();
    for (const char *f : {"sse41", "avx", "avx2", "fma", "avx512_skylake"})
        if (cpu_has(f)) info.cpu_features.push_back(f);
    for (const std::string &target : info.cpu_targets) {
        bool ok = true;
        const auto parts = split(target, '-');
        for (size_t i = 3; i < parts.size(); i++) ok = ok && cpu_has(parts[i]);
        if (ok) {
            info.cpu_target_selected = target;
            break;
        }
    }
    info.threads = at::get_num_threads();
    info.blas = describe_blas();
    info.host_allocator = host_allocator_setting().empty() ? "glibc defaults" : host_allocator_setting();
    info.kernel_schedules = describe_kernel_selection();
    return info;
}

std::string format_build_info(const BuildInfo &info) {
    std::ostringstream os;
    os << "dtokd " << info.dtokd_version << "\n";
    os << "LibTorch " << info.torch_version << ", Halide " << info.halide_version << "\n";
    os << "threads (LibTorch intra-op and Halide): " << info.threads << "\n";
    os << "host allocator: " << info.host_allocator << "\n";
    os << "BLAS: " << info.blas << "\n";
    os << "CPU features:";
    for (const auto &f : info.cpu_features) os << " " << f;
    os << "\nCPU kernel targets (runtime dispatch, most specific first):\n";
    for (const auto &t : info.cpu_targets)
        os << "  " << t << (t == info.cpu_target_selected ? "   <- selected on this CPU" : "") << "\n";
    os << "CUDA kernel variants: "
       << (info.cuda_kernels_built ? "built for " + info.cuda_target : std::string("not built (DTOKD_CUDA=OFF)"))
       << "\n";
    if (!info.torch_cuda) {
        os << "GPU: none usable (this LibTorch was built without CUDA: --device cpu only)\n";
    } else {
        os << "GPU: LibTorch with CUDA " << info.torch_cuda_version << "; " << info.gpus.size() << " visible"
           << (info.gpus.empty() ? " (check the driver and CUDA_VISIBLE_DEVICES)" : "") << "\n";
        for (const GpuInfo &g : info.gpus)
            os << "  cuda:" << g.index << "  " << g.name << ", capability " << g.major << "." << g.minor << ", "
               << std::fixed << std::setprecision(1) << double(g.memory_bytes) / double(1 << 30) << " GiB, "
               << g.multiprocessors << " SMs\n";
        os << "  kernels on the GPU: torch" << (info.halide_cuda_linked ? " and halide" : " (no Halide CUDA kernels linked)")
           << "\n";
    }
    os << "kernels:";
    for (const auto &k : info.kernels) os << " " << k;
    os << "\nkernel schedules (dtokd autotune):\n" << info.kernel_schedules;
    return os.str();
}

}  // namespace dtokd
