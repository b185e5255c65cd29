// One training or distillation run: data, student (and teacher), the step engine
// (trade-off policy on a flat arena with the fused optimizer), per-interval metrics,
// test accuracy per epoch, checkpoints and a summary. The run is built in
// <out>.partial and renamed to <out> only when it completes, so an existing run
// directory is never overwritten and a failed run never looks finished. A run
// interrupted at any point continues from its last checkpoint with RunStart::resume,
// and (one thread) ends bitwise as if never interrupted.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "run_state.h"  // EpochResult
#include "train_config.h"

namespace dtokd {

class Collective;

struct RunResult {
    std::string run_dir;
    std::vector<EpochResult> epochs;
    double final_test_accuracy = 0, best_test_accuracy = 0;
    int best_epoch = -1;
    int64_t steps = 0, skipped_steps = 0;
    double seconds = 0, mean_step_seconds = 0;
    bool teacher_logits_cached = false;
    bool resumed = false;
    std::string device;               // where this process trained ("cpu", "cuda:0")
    std::string resumed_from_device;  // a resumed run: where its checkpoint was written ("" if unknown)
    int ranks = 1;  // data-parallel processes
    double collective_bytes_per_step = 0;  // summed or broadcast by a rank per step (0: one process)
    int64_t train_samples = 0;             // training images (after --train-fraction)
    // Image folders: the classes in label order, the normalization, and the files left
    // out as unreadable ("path: why").
    std::vector<std::string> class_names, bad_images;
    std::vector<double> mean, std;
};

enum class RunStart {
    fresh,   // a new run at config.out
    resume,  // continue the run at config.out (its .partial, or a finished one to extend)
};

// The options a resumed run may change: they do not alter what the remaining steps compute.
const std::set<std::string> &resume_safe_keys();

// `resolved_config` (TOML, config_toml.h) is written to <run>/config.toml and recorded
// in every checkpoint. Resuming, it must equal the recorded one except resume_safe_keys()
// (one error naming the keys that differ).
// `ranks`: a data-parallel run (docs/data_parallel.md); every rank calls this with the
// same config; rank 0 alone writes the run folder. Null: one process.
RunResult run_training(const TrainConfig &config, const std::string &resolved_config,
                       RunStart start = RunStart::fresh, Collective *ranks = nullptr);

// Test accuracy of a checkpoint on the config's dataset.
double evaluate_checkpoint(const std::string &checkpoint, const TrainConfig &config);

// The run's summary.json object (one line).
std::string summary_json(const TrainConfig &config, const RunResult &result);

}  // namespace dtokd
