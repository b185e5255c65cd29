// The dtokd command line. Only main() decides exit codes: every error from the
// library is one exception with a clear message, printed once, exit code 1.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "build_info.h"
#include "threads.h"

int main(int argc, char **argv) {
    CLI::App app{"dtokd: knowledge distillation with DTO-KD (Halide kernels + LibTorch)"};
    app.require_subcommand(0, 1);
    int threads = 0;
    app.add_option("--threads", threads, "LibTorch and Halide threads (0 = $DTOKD_THREADS or all)")
        ->check(CLI::NonNegativeNumber);

    CLI::App *info = app.add_subcommand("info", "Print kernel targets, threads, versions and CPU features");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return app.exit(e);
    }

    try {
        dtokd::configure_threads(threads);
        if (info->parsed() || app.get_subcommands().empty()) {
            std::cout << dtokd::format_build_info(dtokd::build_info());
            return 0;
        }
    } catch (const std::exception &e) {
        std::cerr << "dtokd: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
