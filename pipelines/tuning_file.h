// The kernel tuning file that `dtokd autotune` writes and the CLI loads at start-up:
// one flat JSON object of strings (nlohmann-json), e.g.
//   {"format": "dtokd-tuning-1", "cpu": "<model name from /proc/cpuinfo>",
//    "threads": "2", "build": "<hash of this build's variant list>",
//    "log_gram": "dtokd_log_gram__w16_c16384", "kd_loss": "dtokd_kd_loss", ...}
// A kernel that is not named keeps its default. A file is applied whole or not at all:
// unreadable, not such an object, another format, another CPU model / thread count /
// build, an unknown kernel or variant -> ignored with one warning, defaults kept.
#pragma once
#include <map>
#include <string>

#include "kernel_selection.h"

namespace dtokd {

constexpr const char *kTuningFormat = "dtokd-tuning-1";

// The tuning file's text for `choices` (kernel -> variant). Does not check the names.
std::string format_tuning_file(const std::map<std::string, std::string> &choices,
                               const TuningFingerprint &fingerprint);

// Writes format_tuning_file(choices, current fingerprint) to `path` (write_file_atomic;
// the folder is created). Throws std::runtime_error naming the file.
void save_tuning_file(const std::string &path, const std::map<std::string, std::string> &choices);

struct TuningLoadResult {
    enum class Status { applied, missing, ignored };
    Status status = Status::missing;
    std::string message;  // for missing/ignored: one line naming the file and the reason
};
// Reads `path` and, if valid for this machine and build, selects its variants.
// Never throws on bad file content; on missing/ignored the selection is unchanged.
TuningLoadResult load_tuning_file(const std::string &path);

// $DTOKD_TUNING if set, else $XDG_CACHE_HOME/dtokd/tuning.json, else
// $HOME/.cache/dtokd/tuning.json ("" when none of these is set).
std::string default_tuning_path();

}  // namespace dtokd
