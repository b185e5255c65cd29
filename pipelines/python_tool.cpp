// See python_tool.h.
#include "python_tool.h"

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

std::string python_interpreter() {
    const char *python = std::getenv("DTOKD_PYTHON");
    return python ? python : "/usr/bin/python3";
}

std::string module_beside_binary(const std::string &file, const char *env_override, const std::string &self) {
    if (const char *env = std::getenv(env_override)) return env;
    std::error_code ec;
    const fs::path exe = fs::canonical("/proc/self/exe", ec);
    const fs::path dir = ec ? fs::path(self).parent_path() : exe.parent_path();
    return (dir / file).string();
}

int run_python(const std::vector<std::string> &args) {
    std::vector<std::string> all{python_interpreter()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (std::string &a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0) throw std::runtime_error("cannot run " + all[0] + ": " + std::strerror(rc));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error("waiting for " + all[0] + ": " + std::strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace dtokd
