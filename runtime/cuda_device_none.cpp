// cuda_device.h for a LibTorch built without CUDA (Debian's 1.13): no GPU is usable.
#include "cuda_device.h"

namespace dtokd {

bool torch_built_with_cuda() { return false; }
std::string torch_cuda_version() { return ""; }
std::vector<GpuInfo> visible_gpus() { return {}; }
ExpectedDeviceWait::ExpectedDeviceWait() = default;
ExpectedDeviceWait::~ExpectedDeviceWait() = default;

}  // namespace dtokd
