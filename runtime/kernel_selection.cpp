// See kernel_selection.h. The tuning file's JSON subset is read and written by
// tuning_json.h.
#include "kernel_selection.h"

#include "content_hash.h"

#include <ATen/Parallel.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kernel_variants.h"
#include "threads.h"
#include "tuning_json.h"

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

std::string format_tuning_file(const std::map<std::string, std::string> &choices,
                               const TuningFingerprint &fingerprint) {
    std::ostringstream os;
    os << "{\n  \"format\": " << json_string(kTuningFormat) << ",\n  \"cpu\": " << json_string(fingerprint.cpu)
       << ",\n  \"threads\": " << json_string(fingerprint.threads)
       << ",\n  \"build\": " << json_string(fingerprint.build);
    for (const auto &[kernel, variant] : choices) os << ",\n  " << json_string(kernel) << ": " << json_string(variant);
    os << "\n}\n";
    return os.str();
}

void save_tuning_file(const std::string &path, const std::map<std::string, std::string> &choices) {
    namespace fs = std::filesystem;
    const std::string text = format_tuning_file(choices, current_tuning_fingerprint());
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(path + ": cannot create folder " + dir.string() + ": " + ec.message());
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw std::runtime_error(tmp + ": cannot create");
    const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
    if (::close(fd) != 0 || !written || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error(path + ": write failed");
    }
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
        ::fsync(dfd);  // the rename itself survives a crash
        ::close(dfd);
    }
}

TuningLoadResult load_tuning_file(const std::string &path) {
    using Status = TuningLoadResult::Status;
    const std::string prefix = "tuning file " + path + " ";
    std::ifstream in(path, std::ios::binary);
    if (!in) return {Status::missing, prefix + "cannot be read; using the default kernel schedules"};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return {Status::ignored, prefix + "cannot be read; using the default kernel schedules"};

    auto ignored = [&](const std::string &why) {
        return TuningLoadResult{Status::ignored,
                                prefix + "ignored: " + why + "; using the default kernel schedules" +
                                    " (rerun `dtokd autotune`)"};
    };
    std::map<std::string, std::string> entries;
    try {
        entries = parse_flat_json_object(text.str());
    } catch (const std::runtime_error &e) {
        return ignored(e.what());
    }
    auto field = [&](const char *key) -> const std::string * {
        const auto it = entries.find(key);
        return it == entries.end() ? nullptr : &it->second;
    };
    const std::string *format = field("format");
    if (format == nullptr || *format != kTuningFormat)
        return ignored("format is '" + (format ? *format : std::string("(missing)")) + "', expected '" +
                       kTuningFormat + "'");
    const TuningFingerprint now = current_tuning_fingerprint();
    const std::pair<const char *, const std::string *> checks[] = {
        {"cpu", &now.cpu}, {"threads", &now.threads}, {"build", &now.build}};
    for (const auto &[key, expected] : checks) {
        const std::string *got = field(key);
        if (got == nullptr || *got != *expected)
            return ignored(std::string("made for ") + key + " '" + (got ? *got : std::string("(missing)")) +
                           "', this is '" + *expected + "'");
    }

    // Validate every kernel entry before changing anything: all or nothing.
    std::map<std::string, std::string> choices;
    for (const auto &[key, value] : entries) {
        if (key == "format" || key == "cpu" || key == "threads" || key == "build") continue;
        std::vector<std::string> variants;
        try {
            variants = kernel_variants(key);
        } catch (const std::invalid_argument &) {
            return ignored("unknown kernel '" + key + "'");
        }
        bool known = false;
        for (const std::string &v : variants) known = known || v == value;
        if (!known) return ignored("kernel " + key + " has no variant '" + value + "'");
        choices[key] = value;
    }
    select_default_kernel_variants();
    for (const auto &[kernel, variant] : choices) select_kernel_variant(kernel, variant);
    return {Status::applied, prefix + "applied"};
}

std::string default_tuning_path() {
    auto env = [](const char *name) -> std::string {
        const char *v = std::getenv(name);
        return v == nullptr ? std::string() : std::string(v);
    };
    if (const std::string p = env("DTOKD_TUNING"); !p.empty()) return p;
    if (const std::string p = env("XDG_CACHE_HOME"); !p.empty()) return p + "/dtokd/tuning.json";
    if (const std::string p = env("HOME"); !p.empty()) return p + "/.cache/dtokd/tuning.json";
    return "";
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
