// The one TOML writer of run configs (toml++): every option of a TrainConfig under its
// long option name, so the file reads back with --config (and --resume) as the same
// config; and the comparison a resumed run makes against the config it started with.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "train_config.h"

namespace dtokd {

// `keys`: write only these option names (a subcommand's options); empty: all. Empty
// strings and lists (unset paths, no --weights) are left out, as their defaults.
std::string config_toml(const TrainConfig &config, const std::string &header, const std::set<std::string> &keys = {});

// A number in a resolved config (e.g. a checkpoint's), or nullopt when the key is absent.
std::optional<double> config_number(const std::string &toml_text, const std::string &key);

// The keys whose values differ between two configs written by config_toml, except
// `ignored`, sorted. Throws std::runtime_error naming `what` when one is not valid TOML.
std::vector<std::string> config_differences(const std::string &before, const std::string &after,
                                            const std::set<std::string> &ignored, const std::string &what);

}  // namespace dtokd
