// See tuning_json.h.
#include "tuning_json.h"

#include <cstdio>
#include <stdexcept>

namespace dtokd {

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else {
            out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
        }
    }
    return out + "\"";
}

namespace {
// A byte for an error message: itself when printable, else \xNN (a raw NUL would cut the
// message short wherever it is printed as a C string).
std::string visible(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", u);
    return hex;
}
}  // namespace

std::map<std::string, std::string> parse_flat_json_object(const std::string &text) {
    size_t i = 0;
    auto fail = [&](const std::string &what) {
        throw std::runtime_error(what + " at byte " + std::to_string(i) +
                                 "; expected a flat JSON object of strings");
    };
    auto skip_ws = [&] {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
    };
    auto expect = [&](char c) {
        skip_ws();
        if (i >= text.size() || text[i] != c) fail(std::string("missing '") + c + "'");
        i++;
    };
    auto read_string = [&] {
        expect('"');
        std::string s;
        while (true) {
            if (i >= text.size()) fail("unterminated string");
            const char c = text[i++];
            if (c == '"') return s;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
            if (c != '\\') {
                s += c;
                continue;
            }
            if (i >= text.size()) fail("unterminated string");
            const char e = text[i++];
            if (e == '"' || e == '\\' || e == '/') s += e;
            else if (e == 'n') s += '\n';
            else if (e == 't') s += '\t';
            else fail("unsupported escape '\\" + visible(e) + "'");
        }
    };
    std::map<std::string, std::string> out;
    expect('{');
    skip_ws();
    if (i < text.size() && text[i] == '}') {
        i++;
    } else {
        while (true) {
            const std::string key = read_string();
            expect(':');
            skip_ws();
            if (i < text.size() && text[i] != '"') fail("value of '" + key + "' is not a string");
            const std::string value = read_string();
            if (!out.emplace(key, value).second) fail("duplicate key '" + key + "'");
            skip_ws();
            if (i < text.size() && text[i] == ',') {
                i++;
                continue;
            }
            expect('}');
            break;
        }
    }
    skip_ws();
    if (i != text.size()) fail("trailing characters");
    return out;
}

}  // namespace dtokd
