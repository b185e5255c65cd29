// The options of `dtokd train` and `dtokd distill` (CLI11), bound to a TrainConfig.
// Shared by the CLI and the config-file fuzz target, so both see the same option set
// (names, types, checks) that a TOML config file is applied to.
#pragma once
#include <string>

#include "train_config.h"

namespace CLI {
class App;
}

namespace dtokd {

// The options of every training run; `config_file` receives --config and, when given,
// `resume` receives --resume (the CLI's; a config file never sets it).
void add_common_options(CLI::App *app, TrainConfig &c, std::string &config_file, std::string *resume = nullptr);
// --dataset, --data and how image folders are read (train, distill and eval).
void add_data_options(CLI::App *app, TrainConfig &c);
// The distillation options (method, objectives, teacher, their hyper-parameters).
void add_distill_options(CLI::App *app, TrainConfig &c);

// The run's config.toml (config_toml.h) for the options of `app` (train or distill) with
// the values in `c`: what the CLI writes and what --config / --resume read back.
std::string resolved_config_toml(const CLI::App &app, const TrainConfig &c);

}  // namespace dtokd
