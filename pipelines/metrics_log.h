// A run's metrics.jsonl: one JSON object per line (nlohmann-json), each line written
// whole with every write checked, so a full disk is one error naming the file. sync()
// makes the lines so far durable and returns the file's length: a checkpoint records
// it, and a resumed run first cuts the file back to it, so no line is lost or repeated.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace dtokd {

class MetricsLog {
public:
    // Opens `path` for appending (created if missing). `keep_bytes` >= 0 (resume): the
    // file must hold at least that many bytes and is cut to exactly that many.
    explicit MetricsLog(std::string path, int64_t keep_bytes = -1);
    ~MetricsLog();
    MetricsLog(const MetricsLog &) = delete;
    MetricsLog &operator=(const MetricsLog &) = delete;

    // One line; std::runtime_error naming the file when it cannot be written.
    void append(const nlohmann::ordered_json &line);
    // Flushes to the disk (fsync); returns the file's length in bytes.
    int64_t sync();
    const std::string &path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    int64_t bytes_ = 0;
};

}  // namespace dtokd
