// Fuzz target: the tuning file's JSON reader (parse_flat_json_object, tuning_json.h),
// which load_tuning_file runs on the file's text before checking the fingerprint and the
// kernel names. Oracle: what it accepts, written back with json_string, reads back equal.
#include <map>

#include "fuzz_support.h"
#include "tuning_json.h"

namespace dtokd::fuzz {

int fuzz_tuning(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    std::map<std::string, std::string> entries;
    try {
        entries = parse_flat_json_object(text);
    } catch (const std::runtime_error &e) {
        if (std::string(e.what()).find(" at byte ") == std::string::npos)
            throw FuzzFinding(std::string("tuning JSON error without its offset: ") + e.what());
        return 0;
    }
    std::string again = "{";
    for (const auto &[key, value] : entries)
        again += (again.size() > 1 ? ", " : "") + json_string(key) + ": " + json_string(value);
    again += "}";
    std::map<std::string, std::string> reread;
    try {
        reread = parse_flat_json_object(again);
    } catch (const std::runtime_error &e) {
        throw FuzzFinding("json_string wrote what the reader rejects: " + again + ": " + e.what());
    }
    if (reread != entries) throw FuzzFinding("tuning JSON does not read back equal: " + again);
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_tuning)
