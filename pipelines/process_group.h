// The c10d process group of a data-parallel run: rendezvous through c10d's TCPStore at
// MASTER_ADDR:MASTER_PORT (rank 0 hosts it), then Gloo over TCP (the CPU backend of
// torch.distributed). Every wait is bounded by `timeout`: a rank that dies or hangs
// makes the others fail with an error instead of waiting forever.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

#include "c10d_collective.h"  // C10dGroup
#include "launch_env.h"

namespace dtokd {

// A TCPStore for `env` (rank 0 serves it); std::runtime_error naming the address when
// the rendezvous does not complete within `timeout`.
c10::intrusive_ptr<c10d::Store> make_rendezvous_store(const LaunchEnv &env, std::chrono::milliseconds timeout);

// A store shared by threads of one process (tests: ranks as threads).
c10::intrusive_ptr<c10d::Store> make_in_process_store();

// Gloo over `store`. Its TCP pairs bind to GLOO_SOCKET_IFNAME's interface when that is
// set (as torch.distributed does), else to `hostname`'s address ("" = this machine's name).
// std::runtime_error when this build had no Gloo headers (process_group.cpp).
c10::intrusive_ptr<C10dGroup> make_gloo_group(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                                              std::chrono::milliseconds timeout, const std::string &hostname = "");

}  // namespace dtokd
