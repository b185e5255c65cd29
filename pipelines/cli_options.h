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

// The options of every training run; `config_file` receives --config.
void add_common_options(CLI::App *app, TrainConfig &c, std::string &config_file);
// The distillation options (method, objectives, teacher, their hyper-parameters).
void add_distill_options(CLI::App *app, TrainConfig &c);

}  // namespace dtokd
