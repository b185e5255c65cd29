// One training or distillation run: data, student (and teacher), the trade-off
// policy on a flat arena with the fused optimizer, per-interval metrics, test
// accuracy per epoch, atomic checkpoints, and a summary. The run is built in
// <out>.partial and renamed to <out> only when it completes, so an existing run
// directory is never overwritten and a failed run never looks finished.
#pragma once
#include <string>
#include <vector>

#include "train_config.h"

namespace dtokd {

struct EpochResult {
    int epoch = 0;
    double lr = 0, test_accuracy = 0, seconds = 0, images_per_second = 0, data_wait_fraction = 0;
};

struct RunResult {
    std::string run_dir;
    std::vector<EpochResult> epochs;
    double final_test_accuracy = 0, best_test_accuracy = 0;
    int best_epoch = -1;
    int64_t steps = 0, skipped_steps = 0;
    double seconds = 0, mean_step_seconds = 0;
    bool teacher_logits_cached = false;
};

// `resolved_config` is written verbatim to <run>/config.toml.
RunResult run_training(const TrainConfig &config, const std::string &resolved_config);

// Test accuracy of a checkpoint on the config's dataset.
double evaluate_checkpoint(const std::string &checkpoint, const TrainConfig &config);

// {"final_test_accuracy":..} as written to <run>/summary.json.
std::string summary_json(const TrainConfig &config, const RunResult &result);

}  // namespace dtokd
