// See threads.h.
#include "threads.h"

#include <ATen/Parallel.h>
#include <HalideRuntime.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "blas_threads.h"
#include "env_count.h"

namespace dtokd {

namespace {
int applied_threads = 0;

// Halide's parallel loops run on LibTorch's intra-op pool (OpenMP here), so the two
// never compete: with two pools, OpenMP's spinning workers starved Halide's and a
// cnn_small DTO step took 175 ms instead of 19 ms on 2 cores.
int torch_do_par_for(void *user_context, halide_task_t task, int min, int extent, uint8_t *closure) {
    std::atomic<int> status{0};
    at::parallel_for(min, int64_t(min) + extent, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; i++) {
            const int r = task(user_context, int(i), closure);
            if (r != 0) status = r;
        }
    });
    return status.load();
}
}  // namespace

int configure_threads(int requested) {
    if (requested < 0)
        throw std::invalid_argument("--threads is " + std::to_string(requested) + "; expected >= 0 (0 = all)");
    int n = requested;
    if (n == 0) n = count_from_env("DTOKD_THREADS", int(std::max(1u, std::thread::hardware_concurrency())));
    at::set_num_threads(n);
    halide_set_num_threads(n);
    halide_set_custom_do_par_for(torch_do_par_for);
    configure_blas_threads(0);  // BLAS's own pool would fight this one (blas_threads.h)
    applied_threads = n;
    return n;
}

int configured_threads() { return applied_threads; }

}  // namespace dtokd
