// See device.h.
#include "device.h"

#include <torch/version.h>

#include <stdexcept>

#include "cuda_device.h"

namespace dtokd {

at::Device parse_device(const std::string &name) {
    if (name == "cpu") return at::Device(at::kCPU);
    if (name == "cuda") return at::Device(at::kCUDA, 0);
    const std::string prefix = "cuda:";
    if (name.rfind(prefix, 0) == 0) {
        const std::string index = name.substr(prefix.size());
        if (!index.empty() && index.size() <= 2 && index.find_first_not_of("0123456789") == std::string::npos)
            return at::Device(at::kCUDA, at::DeviceIndex(std::stoi(index)));
    }
    throw std::invalid_argument("device '" + name + "' is unknown; expected cpu, cuda or cuda:N");
}

std::string device_name(const at::Device &device) {
    return device.is_cuda() ? "cuda:" + std::to_string(device.has_index() ? device.index() : 0) : device.str();
}

void check_device_usable(const at::Device &device) {
    if (device.is_cpu()) return;
    const std::string name = "device '" + device_name(device) + "'";
    if (!torch_built_with_cuda())
        throw std::invalid_argument(name + ": this dtokd is built against a LibTorch without CUDA (LibTorch " +
                                    TORCH_VERSION +
                                    "); build it against a CUDA LibTorch (README, \"GPU builds and --device cuda\")");
    const int visible = int(visible_gpus().size());
    if (visible == 0)
        throw std::invalid_argument(name + ": no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)");
    if (device.index() >= visible)
        throw std::invalid_argument(name + ": only " + std::to_string(visible) + " CUDA device" +
                                    (visible == 1 ? " is" : "s are") + " visible (cuda:0" +
                                    (visible > 1 ? " to cuda:" + std::to_string(visible - 1) : std::string()) + ")");
}

void check_backend_on_device(KernelBackend backend, const at::Device &device) {
    if (device.is_cuda() && backend == KernelBackend::halide && !halide_cuda_kernels_linked())
        throw std::invalid_argument("kernels 'halide' on device '" + device_name(device) +
                                    "': this dtokd links no Halide CUDA kernels; use kernels 'torch' on a GPU");
}

void check_device_for_ranks(const at::Device &device, int world_size) {
    if (device.is_cuda() && world_size > 1)
        throw std::invalid_argument("device '" + device_name(device) + "' with " + std::to_string(world_size) +
                                    " data-parallel ranks: not supported (the ranks exchange gradients through "
                                    "Gloo on host memory); run one process");
}

}  // namespace dtokd
