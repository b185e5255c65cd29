// `dtokd plot RUN [RUN ...] [--out DIR]`: PNG plots of runs (test accuracy per epoch, each
// objective's loss and pi, gradient conflict share and norm ratios), drawn by the one
// plotting module pipelines/plots/run_plots.py (also used by the studies' reports) with
// Debian's python3-matplotlib. Each run gets RUN/plots/*.png; several runs are also
// overlaid into DIR.
#pragma once
#include <string>
#include <vector>

namespace dtokd {

// Throws std::invalid_argument naming a run that is not a run folder (no metrics.jsonl),
// std::runtime_error when the plotting module cannot run or fails (its own message is on
// stderr). `self` is this program's path (the module is installed beside it).
void plot_runs(const std::vector<std::string> &runs, const std::string &out, const std::string &self);

}  // namespace dtokd
