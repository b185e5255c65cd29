// What a TrainConfig means for the runtime, worked out and checked before anything is
// loaded or written: the objectives, the trade-off policy, the optimizer, the loss and
// loader options. Each bad value is one std::invalid_argument naming the option.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "batch_loader.h"
#include "fused_optimizer.h"
#include "image_folder.h"
#include "kernels.h"
#include "objective_list.h"
#include "train_config.h"
#include "tradeoff_policy.h"

namespace dtokd {

// The options that need no data: counts, names, the run folder.
void check_train_config(const TrainConfig &config);

// --objectives, else [ce] for ce and [kd, ce] (distillation, task) otherwise.
std::vector<std::string> objective_names_for(const TrainConfig &config);
std::unique_ptr<ObjectiveList> objective_list_for(const TrainConfig &config);
PolicyConfig policy_config_for(const TrainConfig &config);
OptimizerConfig optimizer_config_for(const TrainConfig &config);
KdLossOptions kd_options_for(const TrainConfig &config);
// Shuffled, seeded, augmented as configured (contrast negatives are the objectives' to ask).
LoaderOptions train_loader_options_for(const TrainConfig &config);
// Threads making batches: --workers, or (0) one for in-memory data and the cores (at most
// 8) for image folders, which decode every image of every batch.
int loader_workers_for(const TrainConfig &config);
// How --dataset folder reads its images.
ImageFolderOptions folder_options_for(const TrainConfig &config);

// The objectives against the teacher option and the policy, before anything is written.
void check_objectives(const TrainConfig &config, const ObjectiveList &objectives, const TradeoffPolicy &policy);

}  // namespace dtokd
