// `dtokd ... --nproc N`: one machine, N ranks, without torchrun. This process becomes the
// launcher: it starts N copies of the same dtokd command with the torchrun variables set
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free
// MASTER_PORT) and waits for them. When one fails, the others usually stop on their own
// at once (their next collective fails on the closed connection); any still running
// `grace` later are killed (SIGKILL: the group is broken, and only rank 0 writes, atomically).
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace dtokd {

// Set in the ranks this launcher starts, so they know --nproc was handled.
constexpr const char *kLocalLaunchVariable = "DTOKD_LOCAL_LAUNCH";

// A TCP port on 127.0.0.1 that is free now (the kernel picks it); std::runtime_error if none.
int free_loopback_port();

// argv: this process's arguments (argv[0] first). Returns 0 when every rank exited 0,
// else 1 after printing which rank failed and how.
int run_local_ranks(int nproc, const std::vector<std::string> &argv, std::chrono::seconds grace);

}  // namespace dtokd
