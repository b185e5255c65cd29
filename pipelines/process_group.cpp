// See process_group.h. Compiled with USE_C10D_GLOO (pipelines/CMakeLists.txt): the
// Gloo process group's header is only visible with it.
#include "process_group.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <stdexcept>

namespace dtokd {

namespace {

std::string message_of(const std::exception &e) {
    if (const auto *c = dynamic_cast<const c10::Error *>(&e)) return c->what_without_backtrace();
    return e.what();
}

}  // namespace

c10::intrusive_ptr<c10d::Store> make_rendezvous_store(const LaunchEnv &env, std::chrono::milliseconds timeout) {
    c10d::TCPStoreOptions options;
    options.port = uint16_t(env.master_port);
    options.isServer = env.rank == 0 && !env.agent_store;
    options.numWorkers = size_t(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    try {
        return c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    } catch (const std::exception &e) {
        throw std::runtime_error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                                 ": the rendezvous at " + env.master_addr + ":" + std::to_string(env.master_port) +
                                 " (MASTER_ADDR:MASTER_PORT; limit " + std::to_string(timeout.count() / 1000) +
                                 " s) failed: " + message_of(e));
    }
}

c10::intrusive_ptr<c10d::Store> make_in_process_store() { return c10::make_intrusive<c10d::HashStore>(); }

c10::intrusive_ptr<c10d::ProcessGroup> make_gloo_group(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                                                       std::chrono::milliseconds timeout, const std::string &hostname) {
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    try {
        const char *ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname && *ifname)
            options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (!hostname.empty())
            options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
        else
            options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
    } catch (const std::exception &e) {
        throw std::runtime_error("rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
                                 ": the Gloo process group could not connect within " +
                                 std::to_string(timeout.count() / 1000) + " s: " + message_of(e));
    }
}

}  // namespace dtokd
