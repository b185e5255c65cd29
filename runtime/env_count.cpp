// See env_count.h.
#include "env_count.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dtokd {

int count_from_env(const char *name, int fallback) {
    const char *env = std::getenv(name);
    if (env == nullptr || *env == '\0') return fallback;
    char *end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (*end != '\0' || v < 1 || v > 4096)
        throw std::invalid_argument(std::string(name) + " is '" + env + "'; expected a positive integer");
    return int(v);
}

}  // namespace dtokd
