// See tuning_file.h.
#include "tuning_file.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "atomic_file.h"
#include "tuning_json.h"

namespace dtokd {

std::string format_tuning_file(const std::map<std::string, std::string> &choices,
                               const TuningFingerprint &fingerprint) {
    std::map<std::string, std::string> entries = choices;
    entries["format"] = kTuningFormat;
    entries["cpu"] = fingerprint.cpu;
    entries["threads"] = fingerprint.threads;
    entries["build"] = fingerprint.build;
    return tuning_json_text(entries, {"format", "cpu", "threads", "build"});
}

void save_tuning_file(const std::string &path, const std::map<std::string, std::string> &choices) {
    namespace fs = std::filesystem;
    const fs::path target(path);
    if (target.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(target.parent_path(), ec);
        if (ec)
            throw std::runtime_error(path + ": cannot create folder " + target.parent_path().string() + ": " +
                                     ec.message());
    }
    write_file_atomic(path, format_tuning_file(choices, current_tuning_fingerprint()));
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
        entries = parse_tuning_json(text.str());
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

}  // namespace dtokd
