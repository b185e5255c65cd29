// The torchrun launch convention (python3 -m torch.distributed.run, and dtokd's own
// --nproc): each process learns its place from RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT. None of them set: one process.
#pragma once
#include <functional>
#include <string>

namespace dtokd {

struct LaunchEnv {
    int rank = 0, world_size = 1;
    int local_rank = 0, local_world_size = 1;
    std::string master_addr;  // the rendezvous (c10d TCPStore) host, rank 0's
    int master_port = 0;
    // torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT
    // (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client.
    bool agent_store = false;
    bool distributed() const { return world_size > 1; }
};

// Reads the variables through `get` (getenv in dtokd; tests pass their own). A value
// that is not a whole number in range, a rank outside the world, or a partial set (e.g.
// WORLD_SIZE without RANK) is one std::invalid_argument naming the variable and what
// was expected.
LaunchEnv launch_env_from(const std::function<const char *(const char *)> &get);
LaunchEnv launch_env();

}  // namespace dtokd
