// See host_readback.h.
#include "host_readback.h"

#include <ATen/ATen.h>

#include "cuda_device.h"

namespace dtokd {

std::vector<double> read_to_host(const at::Tensor &values) {
    const ExpectedDeviceWait expected;  // this wait is the point of the call
    const at::Tensor host = values.to(at::kCPU, at::kDouble).contiguous();
    return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
}

}  // namespace dtokd
