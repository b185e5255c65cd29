// See tuning_json.h.
#include "tuning_json.h"

#include <nlohmann/json.hpp>

#include <set>
#include <stdexcept>

namespace dtokd {

using Json = nlohmann::ordered_json;

std::map<std::string, std::string> parse_tuning_json(const std::string &text) {
    // nlohmann keeps the last of duplicate keys; a tuning file never has two.
    std::set<std::string> seen;
    std::string duplicate;
    const Json::parser_callback_t no_duplicates = [&](int depth, Json::parse_event_t event, Json &parsed) {
        if (event == Json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
            duplicate.empty())
            duplicate = parsed.get<std::string>();
        return true;
    };
    Json j;
    try {
        j = Json::parse(text, no_duplicates);
    } catch (const Json::exception &e) {
        // A syntax error (its message names the line and column and shows control bytes as
        // <U+XXXX>), or a number out of range (fuzz_tuning: "7E0807" is out_of_range, not parse_error).
        throw std::runtime_error(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) throw std::runtime_error(std::string("not a JSON object but a ") + j.type_name());
    if (!duplicate.empty()) throw std::runtime_error("duplicate key '" + duplicate + "'");
    std::map<std::string, std::string> out;
    for (const auto &[key, value] : j.items()) {
        if (!value.is_string()) throw std::runtime_error("value of '" + key + "' is not a string");
        out[key] = value.get<std::string>();
    }
    return out;
}

std::string tuning_json_text(const std::map<std::string, std::string> &entries, const std::vector<std::string> &first) {
    Json j = Json::object();
    for (const std::string &k : first)
        if (const auto it = entries.find(k); it != entries.end()) j[k] = it->second;
    for (const auto &[k, v] : entries)
        if (!j.contains(k)) j[k] = v;
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace dtokd
