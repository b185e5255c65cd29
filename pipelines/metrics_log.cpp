// See metrics_log.h.
#include "metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dtokd {

namespace {
[[noreturn]] void fail(const std::string &path, const std::string &what, int err) {
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(err));
}
}  // namespace

MetricsLog::MetricsLog(std::string path, int64_t keep_bytes) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
    if (fd_ < 0) fail(path_, "cannot open the metrics file", errno);
    const off_t size = ::lseek(fd_, 0, SEEK_END);
    if (size < 0) fail(path_, "cannot read the metrics file's length", errno);
    bytes_ = size;
    if (keep_bytes >= 0) {
        if (size < keep_bytes) {
            ::close(fd_);
            fd_ = -1;
            throw std::runtime_error(path_ + ": has " + std::to_string(size) + " bytes, but the checkpoint was written "
                                     "after " + std::to_string(keep_bytes) + "; the metrics of this run were cut or "
                                     "replaced, so it cannot continue them");
        }
        // Lines written after the checkpoint are written again by the resumed steps.
        if (::ftruncate(fd_, keep_bytes) != 0) fail(path_, "cannot cut the metrics file back to the checkpoint", errno);
        bytes_ = keep_bytes;
    }
}

MetricsLog::~MetricsLog() {
    if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const nlohmann::ordered_json &line) {
    // NaN (a mean no step had) is written as null.
    const std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(path_, "cannot write the metrics (disk full?)", n < 0 ? errno : EIO);
        done += size_t(n);
    }
    bytes_ += int64_t(text.size());
}

int64_t MetricsLog::sync() {
    if (::fsync(fd_) != 0) fail(path_, "cannot flush the metrics to the disk", errno);
    return bytes_;
}

}  // namespace dtokd
