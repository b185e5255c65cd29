// Where a run's loop stands, as a checkpoint records it for --resume: the position in
// the data order, the step count, the per-epoch results and best accuracy so far, the
// non-finite guard's counters, the open metrics interval, the metrics file's length and
// the CPU random-number state (dropout). With the step engine's state and the weights,
// it is everything the rest of the run depends on.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dtokd {

struct EpochResult {
    int epoch = 0;
    double lr = 0, test_accuracy = 0, seconds = 0, images_per_second = 0, data_wait_fraction = 0;
};

struct LoopState {
    int epoch = 0;          // the epoch in progress, or the next to start
    int64_t batch = 0;      // its batches already stepped (0 at an epoch's start)
    int64_t step = 0;       // steps since the run began
    std::vector<EpochResult> epochs;
    double best_test_accuracy = 0;
    int best_epoch = -1;
    int guard_consecutive = 0;
    int64_t guard_total = 0;
    std::vector<double> window;    // StepStatsWindow::state() of the open metrics interval
    int64_t metrics_bytes = 0;     // metrics.jsonl's length when the checkpoint was written
    double seconds = 0, step_seconds_sum = 0;  // run time and step time so far (reports only)
    at::Tensor rng_state;          // the default CPU generator's state
    // A GPU run: its device's default generator (dropout draws there); undefined on the CPU.
    at::Tensor device_rng_state;
};

// As checkpoint entries "loop/<name>", and back (std::runtime_error naming `path` when
// entries are missing, e.g. a checkpoint from before --resume existed).
std::vector<std::pair<std::string, at::Tensor>> loop_state_entries(const LoopState &state);
LoopState loop_state_from(const std::vector<std::pair<std::string, at::Tensor>> &entries, const std::string &path);

// The default CPU generator's state, and setting it (LibTorch's own format).
at::Tensor cpu_rng_state();
void set_cpu_rng_state(const at::Tensor &state);
// The same for a device's default generator (a GPU's; LibTorch's own format).
at::Tensor device_rng_state(const at::Device &device);
void set_device_rng_state(const at::Device &device, const at::Tensor &state);

}  // namespace dtokd
