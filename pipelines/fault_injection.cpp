// See fault_injection.h.
#include "fault_injection.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace dtokd {

void kill_if_requested_after_step(int64_t steps_done) {
    static const int64_t kill_after = [] {
        const char *v = std::getenv("DTOKD_FAULT_KILL_AFTER_STEP");
        return v ? std::strtoll(v, nullptr, 10) : int64_t(-1);
    }();
    // Data-parallel runs: DTOKD_FAULT_KILL_RANK=r limits it to the rank whose RANK is r.
    static const bool this_rank = [] {
        const char *only = std::getenv("DTOKD_FAULT_KILL_RANK"), *rank = std::getenv("RANK");
        return only == nullptr || std::string(only) == (rank ? rank : "0");
    }();
    if (kill_after >= 0 && steps_done == kill_after && this_rank) std::raise(SIGKILL);
}

}  // namespace dtokd
