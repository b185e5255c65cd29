// runtime/threads.h: the thread count reaches both LibTorch's intra-op pool and Halide's
// runtime, and Halide's parallel loops run through the handler that puts them on
// LibTorch's pool (wrapped here to see where a real Halide kernel's tasks run).
#include <ATen/Parallel.h>
#include <HalideRuntime.h>
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <atomic>

#include "kernels.h"
#include "threads.h"

namespace {

halide_do_par_for_t configured_handler = nullptr;
halide_task_t original_task = nullptr;  // one parallel loop at a time (the Gram kernel has one level)
std::atomic<int> tasks_seen{0}, tasks_in_torch_pool{0};

int observed_task(void *user_context, int i, uint8_t *closure) {
    tasks_seen++;
    if (at::in_parallel_region()) tasks_in_torch_pool++;
    return original_task(user_context, i, closure);
}

int observing_do_par_for(void *user_context, halide_task_t task, int min, int extent, uint8_t *closure) {
    original_task = task;
    return configured_handler(user_context, observed_task, min, extent, closure);
}

TEST(Threads, CountReachesLibTorchAndHalide) {
    const int before = dtokd::configured_threads();
    for (int n : {1, 2, 3}) {
        SCOPED_TRACE(n);
        EXPECT_EQ(dtokd::configure_threads(n), n);
        EXPECT_EQ(at::get_num_threads(), n);
        EXPECT_EQ(halide_set_num_threads(n), n);  // returns the count set before it: configure_threads' n
        EXPECT_EQ(dtokd::configured_threads(), n);
    }
    dtokd::configure_threads(before > 0 ? before : 0);
}

TEST(Threads, HalideParallelLoopsRunOnLibTorchsPool) {
    const int before = dtokd::configured_threads();
    dtokd::configure_threads(2);
    configured_handler = halide_set_custom_do_par_for(observing_do_par_for);
    ASSERT_NE(configured_handler, nullptr);
    const at::Tensor a = torch::randn({1 << 22}), b = torch::randn({1 << 22});
    const dtokd::Gram g = dtokd::log_gram(a, b, 1.0, 1.0, 1e-8, dtokd::KernelBackend::halide);
    halide_set_custom_do_par_for(configured_handler);
    dtokd::configure_threads(before > 0 ? before : 0);
    EXPECT_GT(tasks_seen.load(), 1) << "the Gram kernel's parallel loop did not reach the configured handler";
    EXPECT_EQ(tasks_in_torch_pool.load(), tasks_seen.load()) << "a Halide task ran outside LibTorch's pool";
    const double g11 = a.to(torch::kDouble).dot(a.to(torch::kDouble)).item<double>();
    EXPECT_NEAR(g.g11, g11, 1e-5 * g11);
}

}  // namespace
