// See plot_command.h.
#include "plot_command.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

extern char **environ;

namespace dtokd {

namespace fs = std::filesystem;

namespace {

// RUN, or RUN.partial for a run still being written (or interrupted).
std::string run_folder(std::string run) {
    while (run.size() > 1 && run.back() == '/') run.pop_back();
    if (!fs::exists(run) && fs::exists(run + ".partial")) run += ".partial";
    if (!fs::is_directory(run)) throw std::invalid_argument(run + ": no such run folder");
    if (!fs::exists(fs::path(run) / "metrics.jsonl"))
        throw std::invalid_argument(run + ": no metrics.jsonl; expected a dtokd run folder (its --out)");
    return run;
}

std::string module_path(const std::string &self) {
    if (const char *env = std::getenv("DTOKD_PLOT_MODULE")) return env;
    std::error_code ec;
    const fs::path exe = fs::canonical("/proc/self/exe", ec);
    const fs::path dir = ec ? fs::path(self).parent_path() : exe.parent_path();
    return (dir / "run_plots.py").string();
}

}  // namespace

void plot_runs(const std::vector<std::string> &runs, const std::string &out, const std::string &self) {
    if (runs.empty()) throw std::invalid_argument("plot: no run given");
    std::vector<std::string> args;
    const char *python = std::getenv("DTOKD_PYTHON");
    args.push_back(python ? python : "/usr/bin/python3");
    const std::string module = module_path(self);
    if (!fs::exists(module))
        throw std::runtime_error("plot: the plotting module " + module + " is missing (it is built beside dtokd)");
    args.push_back(module);
    for (const std::string &r : runs) args.push_back(run_folder(r));
    args.push_back("--out");
    args.push_back(out);
    std::vector<char *> argv;
    for (std::string &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0) throw std::runtime_error("plot: cannot run " + args[0] + ": " + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error(std::string("plot: waiting for python3: ") + std::strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error("plot: " + module + " failed (its message is above; it needs python3-matplotlib, "
                                 "which scripts/setup.sh installs)");
}

}  // namespace dtokd
