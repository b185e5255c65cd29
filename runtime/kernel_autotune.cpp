// See kernel_autotune.h. Kernels are called through the Halide back end (the same
// buffer wrapping as in training, without the API's input checks), on inputs made
// once per size; the in-place optimizer steps keep updating the same state, with a
// small lr so it stays finite and ordinary over thousands of calls.
#include "kernel_autotune.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "kernel_backends.h"
#include "kernel_selection.h"

namespace dtokd {

namespace {

using Clock = std::chrono::steady_clock;
using detail::AdamWScalars;
using detail::SgdScalars;
namespace hb = detail::halide_backend;

double batch_seconds(const std::function<void()> &run, int64_t calls) {
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < calls; i++) run();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds per call of every variant of `kernel` on one input, `run` calling
// whichever variant is selected.
std::vector<double> time_variants(const std::string &kernel, const std::vector<std::string> &variants,
                                  const std::function<void()> &run, const AutotuneOptions &o) {
    select_kernel_variant(kernel, variants.front());
    int64_t calls = 0;
    const auto t0 = Clock::now();
    double elapsed = 0;
    do {
        run();
        calls++;
        elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (elapsed < o.min_batch_seconds);
    const int64_t batch = std::max<int64_t>(1, std::llround(o.min_batch_seconds * calls / elapsed));

    for (const std::string &v : variants) {  // warm-up: first-touch, caches, thread pool
        select_kernel_variant(kernel, v);
        batch_seconds(run, batch);
    }
    std::vector<std::vector<double>> per_call(variants.size());
    for (int r = 0; r < o.repeats; r++)
        for (size_t v = 0; v < variants.size(); v++) {
            select_kernel_variant(kernel, variants[v]);
            per_call[v].push_back(batch_seconds(run, batch) / double(batch));
        }
    select_kernel_variant(kernel, variants.front());
    std::vector<double> out;
    for (const auto &samples : per_call) out.push_back(median(samples));
    return out;
}

struct Case {
    std::string label;
    std::function<void()> run;
};

// The inputs of one kernel at one size, and a call of the selected variant on them.
Case make_case(const std::string &kernel, int64_t n, int64_t batch, int64_t classes) {
    const auto opts = at::TensorOptions().dtype(at::kFloat);
    if (kernel == "kd_loss") {
        const at::Tensor student = at::randn({batch, classes}, opts), teacher = at::randn({batch, classes}, opts);
        const at::Tensor labels = at::randint(0, classes, {batch}, at::TensorOptions().dtype(at::kInt));
        at::Tensor gt = at::empty({batch, classes}, opts), gd = at::empty({batch, classes}, opts);
        KdLossOptions ko;
        return {std::to_string(batch) + "x" + std::to_string(classes),
                [=]() mutable { hb::kd_loss(student, teacher, labels, ko, gt, gd); }};
    }
    const std::string label = "N=" + std::to_string(n);
    const at::Tensor a = at::randn({n}, opts), b = at::randn({n}, opts);
    if (kernel == "log_gram") return {label, [=] { hb::log_gram(a, b, 0.7, 1.3, 1e-8); }};

    // The Direction is made inside each closure: it points at the closure's own tensors.
    const bool two = kernel.back() == '2';
    const auto direction = [two](const at::Tensor &first, const at::Tensor &second) {
        Direction d;  // 0.3 a (+ 0.2 b for the two-gradient variants)
        d.grads[0] = &first;
        d.coeffs[0] = 0.3;
        d.count = 1;
        if (two) {
            d.grads[1] = &second;
            d.coeffs[1] = 0.2;
            d.count = 2;
        }
        return d;
    };
    at::Tensor theta = at::randn({n}, opts);
    if (kernel.rfind("sgd_update", 0) == 0) {
        at::Tensor buf = at::zeros({n}, opts);
        const SgdScalars s{/*lr=*/1e-3f, /*momentum=*/0.9f, /*dampening=*/0.f, /*weight_decay=*/5e-4f,
                           /*nesterov=*/false, /*first_step=*/false};
        return {label, [=]() mutable {
                    const Direction dir = direction(a, b);
                    hb::sgd_update(theta, buf, dir, s);
                }};
    }
    at::Tensor m = at::zeros({n}, opts), v = at::zeros({n}, opts);
    const AdamWScalars s{/*decay=*/1.f - 1e-5f, /*beta1=*/0.9f, /*beta2=*/0.999f, /*eps=*/1e-8f,
                         /*step_size=*/1e-3f, /*sqrt_bias2=*/0.03f};
    return {label, [=]() mutable {
                const Direction dir = direction(a, b);
                hb::adamw_update(theta, m, v, dir, s);
            }};
}

std::string format_us(double seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", seconds * 1e6);
    return buf;
}

}  // namespace

std::vector<KernelTuning> autotune_kernels(const AutotuneOptions &options,
                                           const std::function<void(const std::string &)> &progress) {
    if (options.flat_sizes.empty() || options.kd_shapes.empty() || options.repeats < 1 ||
        !(options.min_batch_seconds > 0))
        throw std::invalid_argument("autotune: needs at least one size and one kd_loss shape, repeats >= 1 and "
                                    "a positive batch time");
    at::manual_seed(0);
    std::vector<KernelTuning> results;
    select_default_kernel_variants();
    for (const std::string &kernel : tunable_kernels()) {
        KernelTuning t;
        t.kernel = kernel;
        const std::vector<std::string> variants = kernel_variants(kernel);
        for (const std::string &v : variants) t.variants.push_back({v, {}, 1});

        const bool kd = kernel == "kd_loss";
        const size_t num_sizes = kd ? options.kd_shapes.size() : options.flat_sizes.size();
        for (size_t i = 0; i < num_sizes; i++) {  // one size's tensors at a time
            const Case c = kd ? make_case(kernel, 0, options.kd_shapes[i].first, options.kd_shapes[i].second)
                              : make_case(kernel, options.flat_sizes[i], 0, 0);
            t.sizes.push_back(c.label);
            const std::vector<double> s = time_variants(kernel, variants, c.run, options);
            for (size_t v = 0; v < variants.size(); v++) t.variants[v].seconds.push_back(s[v]);
        }

        size_t best = 0;
        for (size_t v = 0; v < variants.size(); v++) {
            double log_sum = 0;
            for (size_t i = 0; i < t.sizes.size(); i++)
                log_sum += std::log(t.variants[v].seconds[i] / t.variants[0].seconds[i]);
            t.variants[v].relative = std::exp(log_sum / double(t.sizes.size()));
            if (t.variants[v].relative < t.variants[best].relative) best = v;
        }
        if (1.0 / t.variants[best].relative < 1.0 + options.min_gain) best = 0;
        t.chosen = variants[best];
        t.speedup = 1.0 / t.variants[best].relative;
        if (progress) {
            char speedup[32];
            std::snprintf(speedup, sizeof speedup, "%.2fx", t.speedup);
            progress(kernel + ": " + t.chosen + ", " + speedup + " the default's speed");
        }
        results.push_back(std::move(t));
    }
    select_default_kernel_variants();
    return results;
}

std::map<std::string, std::string> tuning_choices(const std::vector<KernelTuning> &results) {
    std::map<std::string, std::string> out;
    for (const KernelTuning &t : results) out[t.kernel] = t.chosen;
    return out;
}

std::string format_autotune_report(const std::vector<KernelTuning> &results) {
    std::ostringstream os;
    char line[256];
    std::snprintf(line, sizeof line, "%-14s %-11s %12s  %-34s %12s %8s\n", "kernel", "size", "default us",
                  "chosen variant", "chosen us", "speedup");
    os << line;
    for (const KernelTuning &t : results) {
        size_t chosen = 0;
        for (size_t v = 0; v < t.variants.size(); v++)
            if (t.variants[v].variant == t.chosen) chosen = v;
        for (size_t i = 0; i < t.sizes.size(); i++) {
            const double d = t.variants[0].seconds[i], c = t.variants[chosen].seconds[i];
            std::snprintf(line, sizeof line, "%-14s %-11s %12s  %-34s %12s %7.2fx\n", t.kernel.c_str(),
                          t.sizes[i].c_str(), format_us(d).c_str(), t.chosen.c_str(), format_us(c).c_str(), d / c);
            os << line;
        }
        std::snprintf(line, sizeof line, "%-14s %-11s %12s  %-34s %12s %7.2fx\n", t.kernel.c_str(), "geomean", "",
                      "", "", t.speedup);
        os << line;
    }
    os << "\nevery variant, geometric-mean time relative to the default (lower is faster):\n";
    for (const KernelTuning &t : results)
        for (const VariantTiming &v : t.variants) {
            std::snprintf(line, sizeof line, "  %-14s %-40s %6.3f%s\n", t.kernel.c_str(), v.variant.c_str(),
                          v.relative, v.variant == t.chosen ? "  <- chosen" : "");
            os << line;
        }
    return os.str();
}

}  // namespace dtokd
