// The tuning file's JSON (nlohmann-json): one flat object of strings. Split from the
// tuning file's load/save (tuning_file.h) so it can be fuzzed without the Halide kernels.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace dtokd {

// {"key": "value", ...}; std::runtime_error saying what is wrong (invalid JSON with its
// line and column, not an object, a value that is not a string, a duplicate key).
std::map<std::string, std::string> parse_tuning_json(const std::string &text);

// The entries as an indented JSON object (keys in `first` order first, then the rest sorted).
std::string tuning_json_text(const std::map<std::string, std::string> &entries,
                             const std::vector<std::string> &first = {});

}  // namespace dtokd
