// dtokd's Python modules (the plotting module, the PyTorch zoo) run as tools: built beside
// the dtokd binary and started with Debian's python3 ($DTOKD_PYTHON overrides it, for tests
// and other installs). One place for finding them and for starting and waiting for python3.
#pragma once
#include <string>
#include <vector>

namespace dtokd {

// $DTOKD_PYTHON, else /usr/bin/python3 (not the python3 on PATH: Debian's has the packages).
std::string python_interpreter();

// The path of `file` beside this program (`self` is argv[0], used when /proc/self/exe is not
// readable), or the value of the environment variable `env_override` when it is set.
std::string module_beside_binary(const std::string &file, const char *env_override, const std::string &self);

// Runs python_interpreter() with `args` (the module first), its stdout and stderr this
// process's, and returns its exit status (128 + signal when a signal ended it). Throws
// std::runtime_error naming the interpreter when it cannot be started.
int run_python(const std::vector<std::string> &args);

}  // namespace dtokd
