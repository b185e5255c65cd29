// TOML config files (pipelines/config_file.h) applied to the real `dtokd distill` option
// set (cli_options.h), and the resolved config (the run's config.toml) read back.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "cli_options.h"
#include "config_file.h"
#include "scratch_data.h"

namespace {

using dtokd_test::error_of;

namespace fs = std::filesystem;

struct DistillCli {
    CLI::App app{"dtokd"};
    CLI::App *distill = nullptr;
    dtokd::TrainConfig config;
    std::string config_file;
    DistillCli() {
        distill = app.add_subcommand("distill");
        dtokd::add_common_options(distill, config, config_file);
        dtokd::add_distill_options(distill, config);
        app.parse(std::vector<std::string>{"distill"});
    }
};

class ConfigFile : public ::testing::Test {
protected:
    dtokd_test::ScratchDir dir{"config-file"};
    std::string write(const std::string &name, const std::string &text) {
        const std::string path = (dir.path() / name).string();
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    // Applies `text`, then its resolved config to a fresh CLI; returns the resolved text.
    std::string round_trip(const std::string &text, DistillCli &first, DistillCli &second) {
        dtokd::apply_config_file(*first.distill, write("a.toml", text));
        const std::string resolved = dtokd::resolved_config_toml(*first.distill, first.config);
        dtokd::apply_config_file(*second.distill, write("resolved.toml", resolved));
        EXPECT_EQ(dtokd::resolved_config_toml(*second.distill, second.config), resolved);
        return resolved;
    }
};

// Fuzz regression (fuzz_config, tests/data/fuzz-regressions/config/non-ascii-u01c7.toml,
// the 2 bytes of U+01C7): Debian's toml++ 3.3 reached __builtin_unreachable (undefined
// behaviour; UBSan aborts) classifying a non-ASCII character where whitespace may be
// (upstream issues 190/295). Config files are now ASCII: one error naming the file, the
// byte and its position.
TEST_F(ConfigFile, FuzzRegressionNonAsciiByteIsOneClearError) {
    const std::string path = std::string(DTOKD_SOURCE_DIR) + "/tests/data/fuzz-regressions/config/non-ascii-u01c7.toml";
    DistillCli cli;
    const std::string what = error_of([&] { dtokd::apply_config_file(*cli.distill, path); });
    EXPECT_NE(what.find("config " + path + ": byte 0xc7 at line 1, column 1 is not ASCII; expected an ASCII file"),
              std::string::npos)
        << what;
    DistillCli later;
    const std::string at = write("later.toml", "lr = 0.1\n# caf\xc3\xa9\n");
    EXPECT_NE(error_of([&] { dtokd::apply_config_file(*later.distill, at); }).find("byte 0xc3 at line 2, column 6"),
              std::string::npos);
}

TEST_F(ConfigFile, NonAsciiTextAsEscapesIsReadAndWrittenBack) {
    DistillCli first, second;
    const std::string resolved = round_trip("data = \"/data/caf\\u00e9\"\n", first, second);
    EXPECT_EQ(first.config.data_dir, "/data/caf\xc3\xa9");
    EXPECT_EQ(second.config.data_dir, "/data/caf\xc3\xa9");
    EXPECT_NE(resolved.find("data = \"/data/caf\\u00E9\"\n"), std::string::npos) << resolved;
}

// Found by fuzz_config's round-trip oracle on crafted inputs (tests/data/fuzz-regressions/
// config/numeric-text.toml, newline-in-text.toml): the resolved config rendered text that
// looked like a number bare (model = 2024: an integer, which the text option then refused)
// and wrote newlines and control characters unescaped (not TOML), so the run's
// config.toml could not be passed back with --config.
TEST_F(ConfigFile, ResolvedTextThatLooksNumericStaysText) {
    DistillCli first, second;
    const std::string resolved = round_trip("model = \"2024\"\nteacher = \"1e5\"\nlr = 0.5\n", first, second);
    EXPECT_NE(resolved.find("model = \"2024\"\n"), std::string::npos) << resolved;  // a TOML string, not a number
    EXPECT_NE(resolved.find("teacher = \"1e5\"\n"), std::string::npos) << resolved;
    EXPECT_NE(resolved.find("lr = 0.5\n"), std::string::npos) << resolved;
    EXPECT_EQ(second.config.model, "2024");
}

TEST_F(ConfigFile, ResolvedTextWithQuotesAndControlCharactersReadsBack) {
    DistillCli first, second;
    round_trip("out = \"a\\\"b\\\\c\\nd\\te\\u0001\"\n", first, second);
    EXPECT_EQ(second.config.out, "a\"b\\c\nd\te\x01");
}

TEST_F(ConfigFile, UnreadableFileIsNamed) {
    DistillCli cli;
    const std::string missing = (dir.path() / "missing.toml").string();
    EXPECT_NE(error_of([&] { dtokd::apply_config_file(*cli.distill, missing); }).find("config " + missing + ": cannot be read"),
              std::string::npos);
    EXPECT_NE(error_of([&] { dtokd::apply_config_file(*cli.distill, dir.path().string()); }).find("cannot be read"),
              std::string::npos);
}

}  // namespace
