// See local_ranks.h.
#include "local_ranks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <thread>

namespace dtokd {

int free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error(std::string("--nproc: no socket for the rendezvous: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error(std::string("--nproc: no free port on 127.0.0.1: ") + std::strerror(errno));
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

namespace {

std::string how_it_ended(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
    return "stopped";
}

}  // namespace

int run_local_ranks(int nproc, const std::vector<std::string> &argv, std::chrono::seconds grace) {
    if (nproc < 1) throw std::invalid_argument("--nproc is " + std::to_string(nproc) + "; expected >= 1");
    const std::string port = std::to_string(free_loopback_port());  // rank 0's store binds it next
    std::map<pid_t, int> ranks;
    for (int r = 0; r < nproc; r++) {
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("--nproc: cannot start a rank: ") + std::strerror(errno));
        if (pid == 0) {
            ::setenv("RANK", std::to_string(r).c_str(), 1);
            ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
            ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
            ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
            ::setenv("MASTER_ADDR", "127.0.0.1", 1);
            ::setenv("MASTER_PORT", port.c_str(), 1);
            ::setenv(kLocalLaunchVariable, "1", 1);
            std::vector<char *> args;
            for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
            args.push_back(nullptr);
            ::execv("/proc/self/exe", args.data());
            std::cerr << "dtokd: error: --nproc: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
            ::_exit(127);
        }
        ranks[pid] = r;
    }
    int failed_rank = -1, failed_status = 0;
    auto first_failure = std::chrono::steady_clock::time_point::max();
    while (!ranks.empty()) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno != EINTR) break;
        if (pid > 0 && ranks.count(pid)) {
            const int r = ranks[pid];
            ranks.erase(pid);
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && failed_rank < 0) {
                failed_rank = r;
                failed_status = status;
                first_failure = std::chrono::steady_clock::now();
            }
            continue;
        }
        if (failed_rank >= 0 && std::chrono::steady_clock::now() - first_failure > grace)
            for (const auto &[p, r] : ranks) ::kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (failed_rank < 0) return 0;
    std::cerr << "dtokd: error: rank " << failed_rank << " of " << nproc << " " << how_it_ended(failed_status)
              << "; the run stopped (--resume continues it from its last checkpoint, if it wrote one)\n";
    return 1;
}

}  // namespace dtokd
