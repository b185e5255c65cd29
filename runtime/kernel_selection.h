// Which schedule variant of each Halide kernel the runtime calls, and what a choice of
// variants is valid for (the tuning file that stores choices: pipelines/tuning_file.h).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace dtokd {

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

// One line per kernel: "<kernel>: <selected> (of N variants)", for `dtokd info`.
std::string describe_kernel_selection();

}  // namespace dtokd
