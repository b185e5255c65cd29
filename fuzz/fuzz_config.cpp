// Fuzz target: TOML config files (apply_config_file, toml++) applied to the real option
// set of `dtokd distill` (cli_options.h: every option type: int, float, text, flag, list).
// Oracle: what it accepts, written back by resolved_config_toml (the run's config.toml),
// is accepted again and resolves to the same text.
#include <CLI/CLI.hpp>

#include <memory>

#include "cli_options.h"
#include "config_file.h"
#include "fuzz_support.h"

namespace dtokd::fuzz {

namespace {
struct DistillCli {
    CLI::App app{"dtokd"};
    CLI::App *distill = nullptr;
    TrainConfig config;
    std::string config_file;
    DistillCli() {
        distill = app.add_subcommand("distill");
        config.method = "dto";
        add_common_options(distill, config, config_file);
        add_distill_options(distill, config);
        app.parse(std::vector<std::string>{"distill"});
    }
};
}  // namespace

int fuzz_config(const uint8_t *data, size_t size) {
    const std::string path = write_scratch("config.toml", std::string_view(reinterpret_cast<const char *>(data), size));
    auto cli = std::make_unique<DistillCli>();
    if (!accepts(path, [&] { apply_config_file(*cli->distill, path); })) return 0;
    const std::string resolved = resolved_config_toml(*cli->distill, cli->config);
    const std::string again = write_scratch("resolved.toml", resolved);
    auto cli2 = std::make_unique<DistillCli>();
    try {
        apply_config_file(*cli2->distill, again);
    } catch (const std::exception &e) {
        throw FuzzFinding("the resolved config of " + path + " is not accepted again: " + e.what() + "\n" + resolved);
    }
    if (resolved_config_toml(*cli2->distill, cli2->config) != resolved)
        throw FuzzFinding("the resolved config of " + path + " resolves differently when read again:\n" + resolved);
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_config)
