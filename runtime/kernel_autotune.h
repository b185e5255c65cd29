// Times every schedule variant of every Halide kernel (kernel_selection.h) on the
// sizes this machine trains at, and picks one per kernel: `dtokd autotune`.
//
// Timer: per (kernel, size) the variants run round-robin, so a load change on a
// shared machine hits all of them alike: a warm-up, then `repeats` rounds in which
// each variant runs a batch of calls lasting about `min_batch_seconds` (the batch
// size is calibrated on the default); a variant's time is the median per-call time.
// Score: the geometric mean over sizes of time / default time. A variant replaces
// the default only when it is at least `min_gain` faster (noise must not flip it).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dtokd {

struct AutotuneOptions {
    // Flat kernels (log_gram, updates): elements per tensor, ~ parameter counts of
    // cnn_small, resnet20 and resnet32x4.
    std::vector<int64_t> flat_sizes = {100'000, 300'000, 7'400'000};
    // kd_loss: (batch, classes).
    std::vector<std::pair<int64_t, int64_t>> kd_shapes = {{128, 10}, {64, 100}};
    int repeats = 7;
    double min_batch_seconds = 0.02;
    double min_gain = 0.03;
};

struct VariantTiming {
    std::string variant;
    std::vector<double> seconds;  // median per call, one per size
    double relative = 1;          // geometric mean over sizes of seconds / default seconds
};

struct KernelTuning {
    std::string kernel;
    std::vector<std::string> sizes;      // labels, e.g. "N=100000", "128x10"
    std::vector<VariantTiming> variants;  // [0] is the default
    std::string chosen;
    double speedup = 1;  // default / chosen, geometric mean over sizes
};

// Times all variants of all kernels with the Halide back end; leaves the default
// variants selected. `progress`, if given, gets one line per kernel as it finishes.
std::vector<KernelTuning> autotune_kernels(const AutotuneOptions &options,
                                           const std::function<void(const std::string &)> &progress = {});

// kernel -> chosen variant, for format_tuning_file().
std::map<std::string, std::string> tuning_choices(const std::vector<KernelTuning> &results);

// A text table: per kernel and size the default and chosen times and the speedup,
// then every variant's geometric-mean time relative to the default.
std::string format_autotune_report(const std::vector<KernelTuning> &results);

}  // namespace dtokd
