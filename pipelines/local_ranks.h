// `dtokd ... --nproc N`: one machine, N ranks, without torchrun. This process becomes the
// launcher: it starts N copies of the same dtokd command with the torchrun variables set
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free
// MASTER_PORT) and waits for them. When one fails, the others stop on their own within
// the group's timeout (their next collective fails); any left `grace` later are killed.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace dtokd {

// Set in the ranks this launcher starts, so they know --nproc was handled.
constexpr const char *kLocalLaunchVariable = "DTOKD_LOCAL_LAUNCH";

// argv: this process's arguments (argv[0] first). Returns 0 when every rank exited 0,
// else 1 after printing which rank failed and how.
int run_local_ranks(int nproc, const std::vector<std::string> &argv, std::chrono::seconds grace);

}  // namespace dtokd
