// See plot_command.h.
#include "plot_command.h"

#include <filesystem>
#include <stdexcept>

#include "python_tool.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

// RUN, or RUN.partial for a run still being written (or interrupted).
std::string run_folder(std::string run) {
    while (run.size() > 1 && run.back() == '/') run.pop_back();
    if (!fs::exists(run) && fs::exists(run + ".partial")) run += ".partial";
    if (!fs::is_directory(run)) throw std::invalid_argument(run + ": no such run folder");
    if (!fs::exists(fs::path(run) / "metrics.jsonl"))
        throw std::invalid_argument(run + ": no metrics.jsonl; expected a dtokd run folder (its --out)");
    return run;
}

}  // namespace

void plot_runs(const std::vector<std::string> &runs, const std::string &out, const std::string &self) {
    if (runs.empty()) throw std::invalid_argument("plot: no run given");
    const std::string module = module_beside_binary("run_plots.py", "DTOKD_PLOT_MODULE", self);
    if (!fs::exists(module))
        throw std::runtime_error("plot: the plotting module " + module + " is missing (it is built beside dtokd)");
    std::vector<std::string> args{module};
    for (const std::string &r : runs) args.push_back(run_folder(r));
    args.push_back("--out");
    args.push_back(out);
    int status = 0;
    try {
        status = run_python(args);
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(std::string("plot: ") + e.what());
    }
    if (status != 0)
        throw std::runtime_error("plot: " + module + " failed (its message is above; it needs python3-matplotlib, "
                                 "which scripts/setup.sh installs)");
}

}  // namespace dtokd
