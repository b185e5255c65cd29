// See config_file.h.
#include "config_file.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace dtokd {

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &what) {
    throw std::runtime_error("config " + path + ": " + what);
}

// A scalar TOML value as the text CLI11 converts; false when it is not a scalar.
bool scalar_text(const toml::node &node, std::string &out) {
    if (auto s = node.as_string()) {
        out = s->get();
        return true;
    }
    if (auto i = node.as_integer()) {
        out = std::to_string(i->get());
        return true;
    }
    if (auto f = node.as_floating_point()) {
        // The shortest text that reads back as the same double (0.9, not 0.90000000000000002).
        for (int digits = 15; digits <= 17; digits++) {
            std::ostringstream os;
            os.precision(digits);
            os << f->get();
            out = os.str();
            if (std::strtod(out.c_str(), nullptr) == f->get()) break;
        }
        return true;
    }
    if (auto b = node.as_boolean()) {
        out = b->get() ? "true" : "false";
        return true;
    }
    return false;
}

// `s` as a TOML basic string, written by toml++: quotes, backslashes, control and
// non-ASCII characters escaped, so the resolved config reads back as the same text.
std::string toml_string(const std::string &s) {
    std::ostringstream os;
    os << toml::toml_formatter{toml::table{{"v", s}}, toml::format_flags::none};
    const std::string line = os.str();  // v = "..."
    const size_t begin = line.find('"'), end = line.rfind('"');
    return line.substr(begin, end - begin + 1);
}

bool looks_numeric(const std::string &s) {
    if (s.empty()) return false;
    char *end = nullptr;
    std::strtod(s.c_str(), &end);
    return end != nullptr && *end == '\0';
}

// The TOML type must match the option's: INT, FLOAT, TEXT or a flag (boolean).
void check_type(const std::string &path, const std::string &name, const CLI::Option &opt, const toml::node &node) {
    const toml::node *n = &node;
    if (auto array = node.as_array(); array && !array->empty()) n = array->get(0);
    const std::string type = opt.get_type_name();
    const char *expected = nullptr;
    if (opt.get_expected_max() == 0) {
        if (!n->is_boolean()) expected = "true or false";
    } else if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) {
        if (!n->is_integer()) expected = "an integer";
    } else if (type.rfind("FLOAT", 0) == 0) {
        if (!n->is_number()) expected = "a number";
    } else if (type.rfind("TEXT", 0) == 0) {
        if (!n->is_string()) expected = "a string";
    }
    if (expected != nullptr) {
        std::ostringstream got;
        got << n->type();
        fail(path, "key '" + name + "' is a TOML " + got.str() + "; expected " + expected);
    }
}

// Debian's toml++ 3.3 reaches __builtin_unreachable (undefined behaviour) for some
// non-ASCII characters where it looks for whitespace (upstream issues 190 and 295, fixed
// after 3.3), so config files are ASCII: other characters go in strings as \uXXXX.
void check_ascii(const std::string &path, const std::string &text) {
    size_t line = 1, column = 1;
    for (const char c : text) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(c));
            fail(path, "byte " + std::string(hex) + " at line " + std::to_string(line) + ", column " +
                           std::to_string(column) +
                           " is not ASCII; expected an ASCII file (write other characters in strings as \\uXXXX)");
        }
        column = c == '\n' ? 1 : column + 1;
        line += c == '\n';
    }
}

}  // namespace

void apply_config_file(CLI::App &app, const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in || std::filesystem::is_directory(path)) fail(path, "cannot be read");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(path, "cannot be read");
    check_ascii(path, text);
    toml::table table;
    try {
        table = toml::parse(text, path);
    } catch (const toml::parse_error &e) {
        std::ostringstream os;
        os << "not valid TOML at line " << e.source().begin.line << ": " << e.description();
        fail(path, os.str());
    } catch (const std::exception &e) {
        fail(path, "cannot be read");
    }
    for (const auto &[key, node] : table) {
        const std::string name(key.str());
        CLI::Option *opt = app.get_option_no_throw("--" + name);
        if (opt == nullptr || name == "config" || name == "help")
            fail(path, "unknown key '" + name + "' (keys are the long options of `dtokd " + app.get_name() +
                           " --help`)");
        if (opt->count() > 0) continue;  // the flag wins
        std::vector<std::string> values;
        std::string text;
        if (auto array = node.as_array()) {
            for (const toml::node &item : *array) {
                if (!scalar_text(item, text)) fail(path, "key '" + name + "': nested arrays/tables are not options");
                values.push_back(text);
            }
        } else if (scalar_text(node, text)) {
            values.push_back(text);
        } else {
            fail(path, "key '" + name + "': a table is not an option value");
        }
        check_type(path, name, *opt, node);
        if (values.size() > 1 && opt->get_expected_max() <= 1)
            fail(path, "key '" + name + "' takes one value, not a list");
        try {
            for (const std::string &v : values) opt->add_result(v);
            opt->run_callback();
        } catch (const CLI::Error &e) {
            fail(path, "key '" + name + "': " + e.what());
        }
    }
}

std::string resolved_config_toml(const CLI::App &app) {
    std::ostringstream os;
    os << "# dtokd " << app.get_name() << ": resolved options (file + flags + defaults)\n";
    for (const CLI::Option *opt : app.get_options()) {
        const std::string name = opt->get_single_name();
        if (opt->get_lnames().empty() || name == "help" || name == "config") continue;
        std::vector<std::string> values = opt->results();
        if (values.empty()) {
            const std::string d = opt->get_default_str();
            if (d.empty()) continue;
            if (d.size() >= 2 && d.front() == '[' && d.back() == ']') {
                std::stringstream ss(d.substr(1, d.size() - 2));
                for (std::string item; std::getline(ss, item, ',');) values.push_back(item);
            } else {
                values.push_back(d);
            }
        }
        // Text options are always strings (a model or folder named "2024" stays text).
        const bool text_option = opt->get_expected_max() != 0 && opt->get_type_name().rfind("TEXT", 0) == 0;
        auto render = [&](const std::string &v) {
            return !text_option && (looks_numeric(v) || v == "true" || v == "false") ? v : toml_string(v);
        };
        os << name << " = ";
        if (opt->get_expected_max() > 1) {
            os << "[";
            for (size_t i = 0; i < values.size(); i++) os << (i ? ", " : "") << render(values[i]);
            os << "]\n";
        } else {
            os << render(values.back()) << "\n";
        }
    }
    return os.str();
}

}  // namespace dtokd
