#include "host_allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace dtokd {

namespace {
constexpr int kMmapThreshold = 256 << 20;  // blocks above this still use mmap
constexpr int kTrimThreshold = 1 << 30;    // heap top kept up to this much free
std::string g_setting;

bool env_set(const char *name) {
    const char *v = std::getenv(name);
    return v != nullptr && *v != '\0';
}
}  // namespace

std::string configure_host_allocator() {
    const char *mode = std::getenv("DTOKD_MALLOC");
    if (mode != nullptr && *mode != '\0' && std::strcmp(mode, "default") != 0 && std::strcmp(mode, "tuned") != 0)
        throw std::invalid_argument(std::string("DTOKD_MALLOC is '") + mode + "'; expected 'default' or 'tuned'");
    if (mode != nullptr && std::strcmp(mode, "default") == 0) {
        g_setting = "glibc defaults (DTOKD_MALLOC=default)";
    } else if (env_set("MALLOC_MMAP_THRESHOLD_") || env_set("MALLOC_TRIM_THRESHOLD_")) {
        g_setting = "glibc from the environment (MALLOC_*_THRESHOLD_)";
    } else {
        const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                        mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
        g_setting = ok ? "glibc mmap threshold 256 MiB, trim threshold 1 GiB"
                       : "glibc defaults (mallopt refused the thresholds)";
    }
    return g_setting;
}

const std::string &host_allocator_setting() { return g_setting; }

}  // namespace dtokd
