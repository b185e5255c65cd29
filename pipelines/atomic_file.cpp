// See atomic_file.h.
#include "atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace dtokd {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &what, int err) {
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(err));
}

void fsync_folder(const std::string &path, const fs::path &dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) fail(path, "cannot open its folder to fsync", errno);
    const int rc = ::fsync(fd), err = errno;
    ::close(fd);
    if (rc != 0) fail(path, "fsync of its folder failed", err);
}

}  // namespace

void write_file_atomic(const std::string &path, std::string_view contents) {
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(dir)) throw std::runtime_error(path + ": folder " + dir.string() + " does not exist");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(path, "cannot create " + tmp, errno);
    auto discard = [&](const std::string &what, int err) {
        ::close(fd);
        ::unlink(tmp.c_str());
        fail(path, what, err);
    };
    for (size_t done = 0; done < contents.size();) {
        const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) discard("write failed after " + std::to_string(done) + " of " + std::to_string(contents.size()) +
                                " bytes",
                            n < 0 ? errno : EIO);
        done += size_t(n);
    }
    if (::fsync(fd) != 0) discard("fsync failed", errno);
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        fail(path, "close failed", err);
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) {
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": cannot replace it: " + ec.message());
    }
    fsync_folder(path, dir);
}

}  // namespace dtokd
