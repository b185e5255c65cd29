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

std::string run_config_path(const std::string &out) {
    for (const std::string &dir : {out + ".partial", out}) {
        const std::string path = dir + "/config.toml";
        if (std::filesystem::exists(path)) return path;
    }
    throw std::runtime_error(out + ": no run to resume here (no " + out + ".partial/config.toml or " + out +
                             "/config.toml)");
}

}  // namespace dtokd
