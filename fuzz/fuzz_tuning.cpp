// Fuzz target: the tuning file's JSON reader (parse_tuning_json, tuning_json.h, on
// nlohmann-json), which load_tuning_file runs on the file's text before checking the
// fingerprint and the kernel names. Oracle: a rejection says why; what it accepts,
// written back with tuning_json_text, reads back equal.
#include <map>

#include "fuzz_support.h"
#include "tuning_json.h"

namespace dtokd::fuzz {

int fuzz_tuning(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    std::map<std::string, std::string> entries;
    try {
        entries = parse_tuning_json(text);
    } catch (const std::runtime_error &e) {
        if (std::string(e.what()).empty()) throw FuzzFinding("tuning JSON rejected without a reason");
        return 0;
    }
    const std::string again = tuning_json_text(entries);
    std::map<std::string, std::string> reread;
    try {
        reread = parse_tuning_json(again);
    } catch (const std::runtime_error &e) {
        throw FuzzFinding("tuning_json_text wrote what the reader rejects: " + again + ": " + e.what());
    }
    if (reread != entries) throw FuzzFinding("tuning JSON does not read back equal: " + again);
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_tuning)
