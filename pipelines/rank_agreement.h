// Before a data-parallel run trains, its ranks check through the rendezvous store that
// they agree: the same world size and the same resolved config (a rank started with
// another --lr would silently train another model). A disagreement is one error at start,
// on every rank, naming the rank and the options that differ.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <string>

#include "launch_env.h"

namespace dtokd {

// Throws std::invalid_argument naming the differences; std::runtime_error when a rank's
// entry does not arrive within the store's timeout.
void check_ranks_agree(c10d::Store &store, const LaunchEnv &env, const std::string &resolved_config);

}  // namespace dtokd
