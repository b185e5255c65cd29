// Which schedule variant of each Halide kernel the runtime calls, and the tuning file
// that `dtokd autotune` writes and the CLI loads at start-up.
//
// Tuning file: one flat JSON object of strings, e.g.
//   {"format": "dtokd-tuning-1", "cpu": "<model name from /proc/cpuinfo>",
//    "threads": "2", "build": "<hash of this build's variant list>",
//    "log_gram": "dtokd_log_gram__w16_c16384", "kd_loss": "dtokd_kd_loss", ...}
// A kernel that is not named keeps its default. A file is applied whole or not at all:
// unreadable, not that JSON subset, another format, another CPU model / thread count /
// build, an unknown kernel or variant -> ignored with one warning, defaults kept.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace dtokd {

constexpr const char *kTuningFormat = "dtokd-tuning-1";

// The kernels that have schedule variants: log_gram, kd_loss, sgd_update2, sgd_update1,
// adamw_update2, adamw_update1.
std::vector<std::string> tunable_kernels();
// The variants built for `kernel`, the default schedule first. Unknown kernel: throws
// std::invalid_argument listing the kernels.
std::vector<std::string> kernel_variants(const std::string &kernel);
std::string selected_kernel_variant(const std::string &kernel);
// Throws std::invalid_argument naming the kernel or variant when either is unknown.
void select_kernel_variant(const std::string &kernel, const std::string &variant);
void select_default_kernel_variants();

// What a tuning file is valid for: the CPU model, the configured thread count and a
// hash of every variant name this binary holds (a rebuild with other variants differs).
struct TuningFingerprint {
    std::string cpu, threads, build;
};
TuningFingerprint current_tuning_fingerprint();

// The tuning file's text for `choices` (kernel -> variant). Does not check the names.
std::string format_tuning_file(const std::map<std::string, std::string> &choices,
                               const TuningFingerprint &fingerprint);

// Writes format_tuning_file(choices, current fingerprint) to `path` atomically (temp
// file, fsync, rename; the folder is created). Throws std::runtime_error naming the file.
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

// One line per kernel: "<kernel>: <selected> (of N variants)", for `dtokd info`.
std::string describe_kernel_selection();

}  // namespace dtokd
