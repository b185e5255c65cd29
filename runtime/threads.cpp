// See threads.h.
#include "threads.h"

#include <ATen/Parallel.h>
#include <HalideRuntime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace dtokd {

namespace {
int applied_threads = 0;
}

int configure_threads(int requested) {
    if (requested < 0)
        throw std::invalid_argument("--threads is " + std::to_string(requested) + "; expected >= 0 (0 = all)");
    int n = requested;
    if (n == 0) {
        if (const char *env = std::getenv("DTOKD_THREADS"); env != nullptr && *env != '\0') {
            char *end = nullptr;
            const long v = std::strtol(env, &end, 10);
            if (*end != '\0' || v < 1 || v > 4096)
                throw std::invalid_argument(std::string("DTOKD_THREADS is '") + env +
                                            "'; expected a positive integer");
            n = int(v);
        } else {
            n = int(std::max(1u, std::thread::hardware_concurrency()));
        }
    }
    at::set_num_threads(n);
    halide_set_num_threads(n);
    applied_threads = n;
    return n;
}

int configured_threads() { return applied_threads; }

}  // namespace dtokd
