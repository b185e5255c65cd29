// See launch_env.h.
#include "launch_env.h"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dtokd {

namespace {

// A whole number in [lo, hi], all of the text; std::invalid_argument naming `name` otherwise.
int whole_number(const char *name, const char *text, long lo, long hi) {
    errno = 0;
    char *end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        throw std::invalid_argument(std::string(name) + " is '" + text + "'; expected a whole number in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return int(v);
}

}  // namespace

LaunchEnv launch_env_from(const std::function<const char *(const char *)> &get) {
    LaunchEnv e;
    const char *world = get("WORLD_SIZE"), *rank = get("RANK");
    if (world == nullptr && rank == nullptr) return e;  // not launched as a group: one process
    if (world == nullptr || rank == nullptr)
        throw std::invalid_argument(std::string(world ? "RANK" : "WORLD_SIZE") + " is not set, but " +
                                    (world ? "WORLD_SIZE" : "RANK") +
                                    " is; a distributed launch sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT "
                                    "(torchrun does)");
    e.world_size = whole_number("WORLD_SIZE", world, 1, 1 << 16);
    e.rank = whole_number("RANK", rank, 0, e.world_size - 1);
    const char *local_world = get("LOCAL_WORLD_SIZE"), *local_rank = get("LOCAL_RANK");
    e.local_world_size = local_world ? whole_number("LOCAL_WORLD_SIZE", local_world, 1, e.world_size) : 1;
    e.local_rank = local_rank ? whole_number("LOCAL_RANK", local_rank, 0, e.local_world_size - 1) : 0;
    if (e.world_size > 1) {
        const char *addr = get("MASTER_ADDR"), *port = get("MASTER_PORT");
        if (addr == nullptr || addr[0] == '\0')
            throw std::invalid_argument("MASTER_ADDR is not set; expected the host of rank 0 (e.g. 127.0.0.1)");
        if (port == nullptr) throw std::invalid_argument("MASTER_PORT is not set; expected a TCP port (1..65535)");
        e.master_addr = addr;
        e.master_port = whole_number("MASTER_PORT", port, 1, 65535);
        const char *agent = get("TORCHELASTIC_USE_AGENT_STORE");
        e.agent_store = agent != nullptr && std::string(agent) == "True";
    }
    return e;
}

LaunchEnv launch_env() {
    return launch_env_from([](const char *name) { return std::getenv(name); });
}

}  // namespace dtokd
