// See kernel_selection.h.
#include "kernel_selection.h"

#include "content_hash.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kernel_variants.h"
#include "threads.h"

namespace dtokd {

namespace detail {
namespace {
SelectedKernels &mutable_selection() {
    static SelectedKernels selection;
    return selection;
}
}  // namespace

const SelectedKernels &selected_kernels() { return mutable_selection(); }
}  // namespace detail

namespace {

using namespace detail;

// Calls f(kernel name, its variant table, its selected function) for every kernel.
template <class F>
void for_each_kernel(F &&f) {
    const KernelVariantTables &t = kernel_variant_tables();
    SelectedKernels &s = mutable_selection();
    f("log_gram", t.log_gram, s.log_gram);
    f("kd_loss", t.kd_loss, s.kd_loss);
    f("sgd_update2", t.sgd_update2, s.sgd_update2);
    f("sgd_update1", t.sgd_update1, s.sgd_update1);
    f("adamw_update2", t.adamw_update2, s.adamw_update2);
    f("adamw_update1", t.adamw_update1, s.adamw_update1);
}

// Runs f(table, selected) for `kernel`; throws std::invalid_argument if it is unknown.
template <class F>
void with_kernel(const std::string &kernel, F &&f) {
    bool found = false;
    for_each_kernel([&](const char *name, const auto &table, auto &selected) {
        if (kernel == name) {
            f(table, selected);
            found = true;
        }
    });
    if (!found) {
        std::string known;
        for (const std::string &k : tunable_kernels()) known += (known.empty() ? "" : ", ") + k;
        throw std::invalid_argument("unknown kernel '" + kernel + "'; expected one of " + known);
    }
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) != 0) continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        const size_t begin = line.find_first_not_of(" \t", colon + 1);
        return begin == std::string::npos ? std::string() : line.substr(begin);
    }
    return "unknown";
}

std::string build_hash() {
    uint64_t h = kFnv1a64Seed;
    for_each_kernel([&](const char *name, const auto &table, auto &) {
        for (const auto &v : table) h = fnv1a64(std::string(name) + "=" + v.name + "\n", h);
    });
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return hex;
}

}  // namespace

std::vector<std::string> tunable_kernels() {
    std::vector<std::string> names;
    for_each_kernel([&](const char *name, const auto &, auto &) { names.push_back(name); });
    return names;
}

std::vector<std::string> kernel_variants(const std::string &kernel) {
    std::vector<std::string> names;
    with_kernel(kernel, [&](const auto &table, auto &) {
        for (const auto &v : table) names.push_back(v.name);
    });
    return names;
}

std::string selected_kernel_variant(const std::string &kernel) {
    std::string name;
    with_kernel(kernel, [&](const auto &table, auto &selected) {
        for (const auto &v : table)
            if (v.fn == selected) name = v.name;
    });
    return name;
}

void select_kernel_variant(const std::string &kernel, const std::string &variant) {
    with_kernel(kernel, [&](const auto &table, auto &selected) {
        for (const auto &v : table)
            if (v.name == variant) {
                selected = v.fn;
                return;
            }
        std::string known;
        for (const auto &v : table) known += (known.empty() ? "" : ", ") + v.name;
        throw std::invalid_argument("kernel " + kernel + " has no variant '" + variant + "'; built: " + known);
    });
}

void select_default_kernel_variants() {
    for_each_kernel([](const char *, const auto &table, auto &selected) { selected = table.front().fn; });
}

TuningFingerprint current_tuning_fingerprint() {
    static const std::string cpu = cpu_model();
    static const std::string build = build_hash();
    const int threads = configured_threads() > 0 ? configured_threads() : at::get_num_threads();
    return {cpu, std::to_string(threads), build};
}

std::string describe_kernel_selection() {
    std::ostringstream os;
    for (const std::string &k : tunable_kernels()) {
        const std::vector<std::string> variants = kernel_variants(k);
        const std::string selected = selected_kernel_variant(k);
        os << "  " << k << ": " << selected << (selected == variants.front() ? " (default)" : " (tuned)") << ", "
           << variants.size() << " variants built\n";
    }
    return os.str();
}

}  // namespace dtokd
