// The run-folder protocol: a run is built in <out>.partial, which this process holds
// under an exclusive flock for as long as the RunFolder lives, and renamed to <out>
// when it completes. A finished run is never overwritten; a .partial that another
// process holds, or that an interrupted run left behind, is never deleted: each is one
// error saying what it is and what to do.
#pragma once
#include <string>

namespace dtokd {

class RunFolder {
public:
    // Throws std::runtime_error when <out> exists, or <out>.partial exists (held by a
    // running process, or left by an interrupted one). Call it before any slow loading.
    static void check_available(const std::string &out);
    // What is at <out>.partial: nothing, a run another process is writing, or one an
    // interrupted process left (which a caller that owns the run may remove, saying so).
    enum class Partial { none, held, stale };
    static Partial partial_state(const std::string &out);

    // For --resume: the checkpoint to continue from (<out>.partial's, else a finished
    // <out>'s). Throws std::runtime_error when there is no run, another process holds it,
    // or it has no checkpoint yet.
    static std::string resume_checkpoint(const std::string &out);

    enum class Open { create, resume };
    // create: makes <out>.partial and takes its lock (check_available, repeated atomically).
    // resume: takes the lock of <out>.partial, or of a finished <out> renamed back to
    // <out>.partial (its summary.json removed: it no longer describes the run).
    explicit RunFolder(const std::string &out, Open mode = Open::create);
    ~RunFolder();
    RunFolder(const RunFolder &) = delete;
    RunFolder &operator=(const RunFolder &) = delete;

    // <out>.partial/<file> while building; <out>/<file> after finish().
    std::string path(const std::string &file) const;
    // Renames <out>.partial to <out> (the lock stays with the folder until destruction).
    void finish();

private:
    std::string out_, partial_;
    int lock_fd_ = -1;
    bool finished_ = false;
};

}  // namespace dtokd
