// See process_group.h. Compiled with USE_C10D_GLOO (pipelines/CMakeLists.txt): the
// Gloo process group's header is only visible with it.
#include "process_group.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// ProcessGroupGloo.hpp includes Gloo's own headers. Debian's LibTorch has them
// (libgloo-dev); the LibTorch inside a pip wheel of PyTorch ships none (PyTorch builds
// Gloo with GLOO_INSTALL=OFF, cmake/Dependencies.cmake), so without them the rest of
// dtokd still builds and make_gloo_group says why it cannot run.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/algorithm.h>)
#define DTOKD_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define DTOKD_HAVE_GLOO 0
#endif

#include <cstdlib>
#include <stdexcept>

#include "error_text.h"

namespace dtokd {

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
                                 " s) failed: " + message_without_backtrace(e));
    }
}

c10::intrusive_ptr<c10d::Store> make_in_process_store() { return c10::make_intrusive<c10d::HashStore>(); }

c10::intrusive_ptr<C10dGroup> make_gloo_group(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                                              std::chrono::milliseconds timeout, const std::string &hostname) {
#if DTOKD_HAVE_GLOO
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
                                 std::to_string(timeout.count() / 1000) + " s: " + message_without_backtrace(e));
    }
#else
    (void)store;
    (void)timeout;
    (void)hostname;
    throw std::runtime_error("rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
                             ": this dtokd was built without Gloo's headers (gloo/algorithm.h), so it has no "
                             "c10d Gloo group; rebuild with the headers of the Gloo this LibTorch was built "
                             "with on the include path (-DCMAKE_CXX_FLAGS=-I<dir>)");
#endif
}

}  // namespace dtokd
