// See run_folder.h.
#include "run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace dtokd {

namespace fs = std::filesystem;

namespace {

// An fd on `dir` holding its exclusive lock, or -1 with errno EWOULDBLOCK when another
// process holds it.
int lock_folder(const std::string &dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(dir + ": cannot open the run folder: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        ::close(fd);
        if (err == EWOULDBLOCK) return -1;
        throw std::runtime_error(dir + ": cannot lock the run folder: " + std::strerror(err));
    }
    return fd;
}

[[noreturn]] void partial_exists(const std::string &out, const std::string &partial, bool held) {
    if (held)
        throw std::runtime_error(partial + ": another dtokd process is writing this run now; choose another --out "
                                           "(this one is left as it is)");
    throw std::runtime_error(partial + ": an interrupted run of --out " + out +
                             " is there; dtokd never deletes it: continue it with --resume " + out +
                             " (same command), remove it (rm -r '" + partial + "') to start over, or choose another --out");
}

}  // namespace

RunFolder::Partial RunFolder::partial_state(const std::string &out) {
    const std::string partial = out + ".partial";
    if (!fs::exists(partial)) return Partial::none;
    const int fd = lock_folder(partial);
    if (fd < 0) return Partial::held;
    ::close(fd);
    return Partial::stale;
}

void RunFolder::check_available(const std::string &out) {
    if (fs::exists(out))
        throw std::runtime_error(out + ": run directory already exists; choose another --out "
                                       "(dtokd never overwrites a run)");
    const std::string partial = out + ".partial";
    if (fs::exists(partial)) {
        const int fd = lock_folder(partial);
        if (fd >= 0) ::close(fd);
        partial_exists(out, partial, fd < 0);
    }
}

std::string RunFolder::resume_checkpoint(const std::string &out) {
    const std::string partial = out + ".partial";
    std::string dir;
    if (fs::exists(partial)) {
        const int fd = lock_folder(partial);
        if (fd < 0) partial_exists(out, partial, true);
        ::close(fd);
        dir = partial;
    } else if (fs::exists(out)) {
        dir = out;
    } else {
        throw std::runtime_error(out + ": no run to resume (neither " + out + " nor " + partial + " exists)");
    }
    const std::string checkpoint = dir + "/checkpoint.pt";
    if (!fs::exists(checkpoint))
        throw std::runtime_error(dir + ": the run has no checkpoint yet (it stopped before its first one); remove it "
                                       "(rm -r '" + dir + "') and start over");
    return checkpoint;
}

RunFolder::RunFolder(const std::string &out, Open mode) : out_(out), partial_(out + ".partial") {
    if (mode == Open::resume) {
        if (fs::exists(partial_)) {
            lock_fd_ = lock_folder(partial_);
            if (lock_fd_ < 0) partial_exists(out_, partial_, true);
            return;
        }
        // A finished run, extended: the lock is on the folder itself and moves with the rename.
        lock_fd_ = lock_folder(out_);
        if (lock_fd_ < 0) partial_exists(out_, out_, true);
        fs::rename(out_, partial_);
        fs::remove(partial_ + "/summary.json");
        return;
    }
    check_available(out_);
    std::error_code ec;
    if (!fs::create_directory(partial_, ec)) {
        if (ec) throw std::runtime_error(partial_ + ": cannot create the run folder: " + ec.message());
        // Another process created it between the check and here.
        const int fd = lock_folder(partial_);
        if (fd >= 0) ::close(fd);
        partial_exists(out_, partial_, fd < 0);
    }
    lock_fd_ = lock_folder(partial_);
    if (lock_fd_ < 0) partial_exists(out_, partial_, true);
}

RunFolder::~RunFolder() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string RunFolder::path(const std::string &file) const { return (finished_ ? out_ : partial_) + "/" + file; }

void RunFolder::finish() {
    if (fs::exists(out_))
        throw std::runtime_error(out_ + ": appeared while this run was being written; the run stays in " + partial_);
    fs::rename(partial_, out_);
    finished_ = true;
}

}  // namespace dtokd
