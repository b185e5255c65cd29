// TOML config files for the dtokd subcommands (toml++): every key is a long option
// name of the subcommand; flags given on the command line win over the file. An
// unknown key or a value of the wrong type is one error naming the file and key. Files
// are ASCII (other characters in strings as \uXXXX escapes; see config_file.cpp).
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace dtokd {

// Call after CLI parsing: applies `path` to the options of `app` not given as flags.
void apply_config_file(CLI::App &app, const std::string &path);

// The config.toml of the run at `out` (its .partial's while unfinished); std::runtime_error
// naming both places when neither exists.
std::string run_config_path(const std::string &out);

}  // namespace dtokd
