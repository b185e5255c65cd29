// What a run prints on stderr: a live line per half second (only on a terminal: step,
// ETA, losses, pi, images/s) and one line per epoch (test accuracy, time, data wait).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "run_state.h"
#include "step_stats.h"

namespace dtokd {

class ProgressLine {
public:
    // `enabled` false: prints nothing. `first_step`: the step this process starts at (resume).
    ProgressLine(bool enabled, std::string method, int epochs, int64_t total_steps, int64_t first_step,
                 std::vector<std::string> objective_names);
    // After step number `steps_done` (from 1); `epoch_images_per_second` of the epoch so far.
    void step(int epoch, int64_t steps_done, const StepStats &stats, double epoch_images_per_second);
    void epoch_done(const EpochResult &result);

private:
    using Clock = std::chrono::steady_clock;
    bool enabled_, live_;
    std::string method_;
    int epochs_;
    int64_t total_steps_, first_step_;
    std::vector<std::string> names_;
    Clock::time_point start_, last_;
};

// "1h2m3s"; "?" when not finite.
std::string format_eta(double seconds);

}  // namespace dtokd
