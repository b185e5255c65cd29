// A console reporter that also keeps each benchmark's real time in seconds, keyed by
// its full run name ("BM_Gram_Halide/10000000", "BM_Step/dto"): the median aggregate
// when --benchmark_repetitions produces one, else the last plain run. The bench
// binaries print their side-by-side ratio tables from it.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace dtokd::bench {

class MedianTimeReporter : public benchmark::ConsoleReporter {
public:
    using ConsoleReporter::ConsoleReporter;

    void ReportRuns(const std::vector<Run> &runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run &r : runs) {
            if (r.error_occurred) continue;
            const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
            if (r.run_type == Run::RT_Aggregate && !median) continue;
            std::string name = r.run_name.function_name;
            if (!r.run_name.args.empty()) name += "/" + r.run_name.args;
            const double seconds = r.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(r.time_unit);
            (median ? median_ : last_)[name] = seconds;
        }
    }

    // Seconds of one benchmark, or -1 when it did not run (filtered out or failed).
    double seconds(const std::string &name) const {
        if (auto it = median_.find(name); it != median_.end()) return it->second;
        if (auto it = last_.find(name); it != last_.end()) return it->second;
        return -1;
    }

    // num's time / den's time, or -1 when either is missing.
    double ratio(const std::string &num, const std::string &den) const {
        const double a = seconds(num), b = seconds(den);
        return a > 0 && b > 0 ? a / b : -1;
    }

private:
    std::map<std::string, double> median_, last_;
};

}  // namespace dtokd::bench
