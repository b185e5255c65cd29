// runtime/device: parsing --device values and the checks that refuse a device this build
// or machine cannot use, with the messages a user sees (the CLI adds "--device: ").
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_device.h"
#include "device.h"

namespace {

std::string message_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const std::invalid_argument &e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Device, ParsesCpuCudaAndAnIndex) {
    EXPECT_EQ(dtokd::parse_device("cpu"), at::Device(at::kCPU));
    EXPECT_EQ(dtokd::parse_device("cuda"), at::Device(at::kCUDA, 0));
    EXPECT_EQ(dtokd::parse_device("cuda:0"), at::Device(at::kCUDA, 0));
    EXPECT_EQ(dtokd::parse_device("cuda:3"), at::Device(at::kCUDA, 3));
    EXPECT_EQ(dtokd::device_name(dtokd::parse_device("cuda")), "cuda:0");
    EXPECT_EQ(dtokd::device_name(dtokd::parse_device("cpu")), "cpu");
    for (const std::string bad : {"gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:1:2", "cpu:0", "", "cuda:12345"})
        EXPECT_EQ(message_of([&] { dtokd::parse_device(bad); }),
                  "device '" + bad + "' is unknown; expected cpu, cuda or cuda:N")
            << bad;
}

TEST(Device, TheCpuIsAlwaysUsable) {
    EXPECT_NO_THROW(dtokd::check_device_usable(at::Device(at::kCPU)));
    EXPECT_NO_THROW(dtokd::check_backend_on_device(dtokd::KernelBackend::halide, at::Device(at::kCPU)));
    EXPECT_NO_THROW(dtokd::check_device_for_ranks(at::Device(at::kCPU), 4));
}

TEST(Device, CudaOnThisBuildOrMachine) {
    const std::string m = message_of([] { dtokd::check_device_usable(at::Device(at::kCUDA, 0)); });
    if (!dtokd::torch_built_with_cuda()) {
        EXPECT_EQ(m.rfind("device 'cuda:0': this dtokd is built against a LibTorch without CUDA (LibTorch ", 0), 0u)
            << m;
        EXPECT_NE(m.find("build it against a CUDA LibTorch"), std::string::npos) << m;
        return;
    }
    const int visible = int(dtokd::visible_gpus().size());
    if (visible == 0)
        EXPECT_EQ(m, "device 'cuda:0': no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)");
    else
        EXPECT_EQ(m, "(no error)");
    const std::string past = message_of([&] { dtokd::check_device_usable(at::Device(at::kCUDA, at::DeviceIndex(visible))); });
    if (visible > 0) EXPECT_NE(past.find("only " + std::to_string(visible) + " CUDA device"), std::string::npos) << past;
}

TEST(Device, HalideOnAGpuNeedsItsCudaKernelsLinked) {
    const std::string m =
        message_of([] { dtokd::check_backend_on_device(dtokd::KernelBackend::halide, at::Device(at::kCUDA, 1)); });
    if (dtokd::halide_cuda_kernels_linked())
        EXPECT_EQ(m, "(no error)");
    else
        EXPECT_EQ(m, "kernels 'halide' on device 'cuda:1': this dtokd links no Halide CUDA kernels; use kernels "
                     "'torch' on a GPU");
    EXPECT_NO_THROW(dtokd::check_backend_on_device(dtokd::KernelBackend::torch, at::Device(at::kCUDA, 1)));
}

TEST(Device, DataParallelRanksStayOnTheCpu) {
    EXPECT_NO_THROW(dtokd::check_device_for_ranks(at::Device(at::kCUDA, 0), 1));
    EXPECT_EQ(message_of([] { dtokd::check_device_for_ranks(at::Device(at::kCUDA, 0), 2); }),
              "device 'cuda:0' with 2 data-parallel ranks: not supported (the ranks exchange gradients through Gloo "
              "on host memory); run one process");
}

}  // namespace
