// The tuning file's JSON subset: one flat object of strings with simple escapes (\" \\ \/
// \n \t). The reader accepts exactly what the writer (json_string) produces and rejects
// everything else with the byte offset of the problem: the file is a cache, not an
// interchange format. Split from kernel_selection.cpp so it can be fuzzed without the
// Halide kernels.
#pragma once
#include <map>
#include <string>

namespace dtokd {

// `s` as a JSON string literal (other control characters become spaces).
std::string json_string(const std::string &s);

// {"key": "value", ...} with whitespace between tokens; throws std::runtime_error naming
// the problem and its byte offset (a duplicate key is an error).
std::map<std::string, std::string> parse_flat_json_object(const std::string &text);

}  // namespace dtokd
