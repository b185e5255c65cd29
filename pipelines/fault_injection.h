// Test-only faults, armed by the environment so tests can interrupt a real dtokd process
// at a chosen point: DTOKD_FAULT_KILL_AFTER_STEP=N sends the process SIGKILL right after
// step N (counted from 1) finished, before anything else is written (no cleanup runs, as
// with a crash or the OOM killer); with DTOKD_FAULT_KILL_RANK=r only in the data-parallel
// rank whose RANK is r. Unset: nothing happens.
#pragma once
#include <cstdint>

namespace dtokd {

void kill_if_requested_after_step(int64_t steps_done);

}  // namespace dtokd
