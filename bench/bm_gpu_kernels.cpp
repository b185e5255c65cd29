// The kernels on a GPU (built against a CUDA LibTorch): the Gram of two gradients and the
// fused two-gradient SGD and AdamW updates, on CUDA tensors through the public kernel API,
// both back ends, beside a device-to-device copy of the same floats measured in the same
// run. Printed at the end: each kernel's bytes moved per second as a fraction of the copy's
// (issue 13's goal: >= 80% for the halide back end). The Gram's time includes its one read
// of the results back to the host, as the policies use it.
//   build-gpu/bench/bm_gpu_kernels [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cuda_device.h"
#include "kernels.h"
#include "median_time_reporter.h"

namespace {

using dtokd::KernelBackend;

const at::Device kGpu(at::kCUDA, 0);
constexpr int kCallsPerIteration = 20;  // back to back, then one wait for the device
const std::vector<int64_t> kSizes = {10'000'000, 50'000'000};

// Bytes read + written per call for n floats.
double copy_bytes(int64_t n) { return 2.0 * 4 * double(n); }
double gram_bytes(int64_t n) { return 2.0 * 4 * double(n); }       // reads two gradients
double sgd_bytes(int64_t n) { return (4.0 + 2.0) * 4 * double(n); }  // reads g0, g1, theta, buf; writes theta, buf
double adamw_bytes(int64_t n) { return (5.0 + 3.0) * 4 * double(n); }

template <class F>
void run_timed(benchmark::State &state, double bytes_per_call, F &&call) {
    if (dtokd::visible_gpus().empty()) {
        state.SkipWithError("no CUDA GPU is visible");
        return;
    }
    for (int i = 0; i < 3; i++) call();  // PTX JIT, module load, allocation caches
    torch::cuda::synchronize();
    for (auto _ : state) {
        for (int i = 0; i < kCallsPerIteration; i++) call();
        torch::cuda::synchronize();
    }
    state.SetBytesProcessed(int64_t(double(state.iterations()) * kCallsPerIteration * bytes_per_call));
}

void BM_GpuCopy(benchmark::State &state) {
    const int64_t n = state.range(0);
    if (dtokd::visible_gpus().empty()) return state.SkipWithError("no CUDA GPU is visible");
    const at::Tensor src = torch::randn({n}, kGpu);
    at::Tensor dst = torch::empty({n}, kGpu);
    run_timed(state, copy_bytes(n), [&] { dst.copy_(src); });
}

void BM_GpuGram(benchmark::State &state, KernelBackend backend) {
    const int64_t n = state.range(0);
    if (dtokd::visible_gpus().empty()) return state.SkipWithError("no CUDA GPU is visible");
    const at::Tensor a = torch::randn({n}, kGpu), b = torch::randn({n}, kGpu);
    run_timed(state, gram_bytes(n), [&] { benchmark::DoNotOptimize(dtokd::log_gram(a, b, 1.3, 0.7, 1e-8, backend)); });
}

void BM_GpuSgdUpdate(benchmark::State &state, KernelBackend backend) {
    const int64_t n = state.range(0);
    if (dtokd::visible_gpus().empty()) return state.SkipWithError("no CUDA GPU is visible");
    const at::Tensor a = torch::randn({n}, kGpu), b = torch::randn({n}, kGpu);
    at::Tensor theta = torch::randn({n}, kGpu), buf = torch::zeros({n}, kGpu);
    const dtokd::Direction d = dtokd::dto_direction(a, b, 0.6, 0.4, 1.3, 0.7, 1e-8);
    dtokd::SgdOptions o;
    o.lr = 1e-6;  // many calls on the same tensors: keep them finite
    o.weight_decay = 5e-4;
    run_timed(state, sgd_bytes(n), [&] { dtokd::sgd_update(theta, buf, d, o, false, backend); });
}

void BM_GpuAdamwUpdate(benchmark::State &state, KernelBackend backend) {
    const int64_t n = state.range(0);
    if (dtokd::visible_gpus().empty()) return state.SkipWithError("no CUDA GPU is visible");
    const at::Tensor a = torch::randn({n}, kGpu), b = torch::randn({n}, kGpu);
    at::Tensor theta = torch::randn({n}, kGpu), m = torch::zeros({n}, kGpu), v = torch::zeros({n}, kGpu);
    const dtokd::Direction d = dtokd::dto_direction(a, b, 0.6, 0.4, 1.3, 0.7, 1e-8);
    dtokd::AdamWOptions o;
    o.lr = 1e-6;
    run_timed(state, adamw_bytes(n), [&] { dtokd::adamw_update(theta, m, v, d, o, 10, backend); });
}

void register_all() {
    for (int64_t n : kSizes) {
        benchmark::RegisterBenchmark("BM_GpuCopy", BM_GpuCopy)->Arg(n)->UseRealTime();
        for (KernelBackend b : {KernelBackend::halide, KernelBackend::torch}) {
            const std::string s = b == KernelBackend::halide ? "Halide" : "Torch";
            benchmark::RegisterBenchmark(("BM_GpuGram_" + s).c_str(), BM_GpuGram, b)->Arg(n)->UseRealTime();
            benchmark::RegisterBenchmark(("BM_GpuSgdUpdate_" + s).c_str(), BM_GpuSgdUpdate, b)->Arg(n)->UseRealTime();
            benchmark::RegisterBenchmark(("BM_GpuAdamwUpdate_" + s).c_str(), BM_GpuAdamwUpdate, b)
                ->Arg(n)
                ->UseRealTime();
        }
    }
}

void print_fractions(const dtokd::bench::MedianTimeReporter &r) {
    std::printf("\nBytes moved per second as a fraction of the device-to-device copy (goal >= 0.80 for Halide):\n");
    for (int64_t n : kSizes) {
        const std::string arg = "/" + std::to_string(n) + "/real_time";
        const double copy = r.seconds("BM_GpuCopy" + arg);
        if (copy <= 0) continue;
        const double copy_rate = copy_bytes(n) / copy;
        std::printf("  n = %lld floats: copy %.0f GB/s\n", static_cast<long long>(n), copy_rate * kCallsPerIteration / 1e9);
        for (const char *backend : {"Halide", "Torch"}) {
            auto frac = [&](const char *kernel, double bytes) {
                const double t = r.seconds(std::string("BM_Gpu") + kernel + "_" + backend + arg);
                return t > 0 ? (bytes / t) / copy_rate : -1.0;
            };
            std::printf("    %-6s gram %.2f  sgd_update2 %.2f  adamw_update2 %.2f\n", backend, frac("Gram", gram_bytes(n)),
                        frac("SgdUpdate", sgd_bytes(n)), frac("AdamwUpdate", adamw_bytes(n)));
        }
    }
}

}  // namespace

int main(int argc, char **argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    dtokd::bench::MedianTimeReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    print_fractions(reporter);
    benchmark::Shutdown();
    return 0;
}
