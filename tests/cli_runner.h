// Runs the dtokd binary as a user would (a shell command line), for the CLI tests.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace dtokd_test {

struct CliResult {
    int code = -1;
    std::string output;  // stdout and stderr together
};

// `env` is prepended to the command line (e.g. "DTOKD_THREADS=1 " or "ulimit -f 64 && ").
inline CliResult run_cli(const std::string &args, const std::string &env = "") {
    const std::string cmd = env + std::string(DTOKD_CLI) + " " + args + " 2>&1";
    CliResult r;
    FILE *pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) {
        r.output = "popen failed: " + cmd;
        return r;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
    const int status = ::pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

// A path or argument in single quotes for the shell command line.
inline std::string quoted(const std::string &s) { return "'" + s + "'"; }

// A file's whole text; std::runtime_error (a failed test) when it cannot be read.
inline std::string slurp(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": test could not read the file");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// How often `part` occurs in `text` (overlaps counted).
inline int count(const std::string &text, const std::string &part) {
    int n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) n++;
    return n;
}

}  // namespace dtokd_test
