// Kernel schedule variants and the tuning file (runtime/kernel_selection.h).
//
// Variants: every built variant of every kernel, selected in turn, against the torch
// back end on random inputs, at sizes with odd tails below and above the vector
// widths and chunks (and in place for the optimizer steps, as in training):
//   log_gram  g11, g22 rel 1e-5; g12 within 1e-5 * sqrt(g11 g22) (test_log_gram.cpp)
//   updates   after 3 steps, max |theta - ref| <= 1e-6 * max(1, max |ref|), same for the state
//   kd_loss   losses rel 1e-5 (+1e-12); gradients within 1e-5 * (1/B resp. T/B) (test_kd_loss.cpp)
// Tuning file: a written file loads back and selects its variants; a missing file,
// corrupt JSON, another format, CPU, thread count or build, and unknown kernels or
// variants each keep the defaults and give a warning naming the problem. CLI: the
// dtokd binary's autotune output loads in `dtokd info`; stale or corrupt is one warning.
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "kernel_selection.h"
#include "tuning_file.h"
#include "kernels.h"
#include "scratch_data.h"

namespace {

using dtokd::KernelBackend;
using Status = dtokd::TuningLoadResult::Status;

// ---------------------------------------------------------------------------------
// Every variant against the torch back end.

std::vector<std::tuple<std::string, std::string>> all_variants() {
    std::vector<std::tuple<std::string, std::string>> out;
    for (const std::string &k : dtokd::tunable_kernels())
        for (const std::string &v : dtokd::kernel_variants(k)) out.emplace_back(k, v);
    return out;
}

class KernelVariant : public testing::TestWithParam<std::tuple<std::string, std::string>> {
protected:
    void SetUp() override { dtokd::select_kernel_variant(kernel(), variant()); }
    void TearDown() override { dtokd::select_default_kernel_variants(); }
    const std::string &kernel() const { return std::get<0>(GetParam()); }
    const std::string &variant() const { return std::get<1>(GetParam()); }

    void check_log_gram(int64_t n) {
        torch::manual_seed(n);
        const at::Tensor a = torch::randn({n}), b = torch::randn({n}) + 0.3 * a;
        const dtokd::Gram got = dtokd::log_gram(a, b, 0.37, 2.5, 1e-8, KernelBackend::halide);
        const dtokd::Gram want = dtokd::log_gram(a, b, 0.37, 2.5, 1e-8, KernelBackend::torch);
        const double tol = 1e-5;
        EXPECT_LE(std::abs(got.g11 - want.g11), tol * std::abs(want.g11)) << "N=" << n << " g11 " << got.g11;
        EXPECT_LE(std::abs(got.g22 - want.g22), tol * std::abs(want.g22)) << "N=" << n << " g22 " << got.g22;
        EXPECT_LE(std::abs(got.g12 - want.g12), tol * std::sqrt(want.g11 * want.g22))
            << "N=" << n << " g12 " << got.g12 << " vs " << want.g12;
    }

    void check_kd_loss(int64_t batch, int64_t classes) {
        torch::manual_seed(batch * 1000 + classes);
        const at::Tensor student = 3 * torch::randn({batch, classes}), teacher = 3 * torch::randn({batch, classes});
        const at::Tensor labels = torch::randint(0, classes, {batch}, torch::kLong);
        dtokd::KdLossOptions options;
        options.temperature = 4.0;
        options.label_smoothing = 0.1;
        at::Tensor gt = torch::full({batch, classes}, NAN), gd = torch::full({batch, classes}, NAN);
        at::Tensor rt = torch::empty({batch, classes}), rd = torch::empty({batch, classes});
        const auto got = dtokd::kd_loss(student, teacher, labels, options, gt, gd, KernelBackend::halide);
        const auto want = dtokd::kd_loss(student, teacher, labels, options, rt, rd, KernelBackend::torch);
        const std::string shape = std::to_string(batch) + "x" + std::to_string(classes);
        EXPECT_LE(std::abs(got.task - want.task), 1e-5 * std::abs(want.task) + 1e-12) << shape << " L_task";
        EXPECT_LE(std::abs(got.distill - want.distill), 1e-5 * std::abs(want.distill) + 1e-12) << shape << " L_distill";
        const double b = double(batch), t = options.temperature;
        EXPECT_LE((gt - rt).abs().max().item<double>(), 1e-5 / b) << shape << " grad_task";
        EXPECT_LE((gd - rd).abs().max().item<double>(), 1e-5 * t / b) << shape << " grad_distill";
    }

    void check_update(int64_t n) {
        const bool two = kernel().back() == '2', adamw = kernel().rfind("adamw", 0) == 0;
        torch::manual_seed(n);
        at::Tensor theta = torch::randn({n}), s1 = adamw ? torch::zeros({n}) : torch::randn({n}),
                   s2 = torch::zeros({n});
        at::Tensor r_theta = theta.clone(), r1 = s1.clone(), r2 = s2.clone();
        dtokd::SgdOptions sgd;
        sgd.weight_decay = 5e-4;
        dtokd::AdamWOptions adam;
        for (int step = 1; step <= 3; step++) {
            const at::Tensor a = torch::randn({n}), b = torch::randn({n});
            const dtokd::Direction d = two ? dtokd::dto_direction(a, b, 0.4, 0.6, 0.7, 1.3, 1e-8, 0.9)
                                           : dtokd::single_direction(a, 0.9);
            for (KernelBackend backend : {KernelBackend::halide, KernelBackend::torch}) {
                at::Tensor &p = backend == KernelBackend::halide ? theta : r_theta;
                at::Tensor &m = backend == KernelBackend::halide ? s1 : r1;
                at::Tensor &v = backend == KernelBackend::halide ? s2 : r2;
                if (adamw) dtokd::adamw_update(p, m, v, d, adam, step, backend);
                else dtokd::sgd_update(p, m, d, sgd, /*first_step=*/step == 1, backend);
            }
        }
        auto expect_near = [&](const at::Tensor &got, const at::Tensor &want, const char *what) {
            const double scale = std::max(1.0, want.abs().max().item<double>());
            EXPECT_LE((got - want).abs().max().item<double>(), 1e-6 * scale) << "N=" << n << " " << what;
        };
        expect_near(theta, r_theta, "theta");
        expect_near(s1, r1, adamw ? "exp_avg" : "momentum_buffer");
        if (adamw) expect_near(s2, r2, "exp_avg_sq");
    }
};

TEST_P(KernelVariant, MatchesTorchBackend) {
    ASSERT_EQ(dtokd::selected_kernel_variant(kernel()), variant());
    if (kernel() == "log_gram") {
        for (int64_t n : {1, 3, 17, 1023, 4099, 100003, 1 << 20}) check_log_gram(n);
    } else if (kernel() == "kd_loss") {
        for (auto [b, c] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 1}, {1, 10}, {5, 3}, {128, 10},
                                                                    {64, 100}, {33, 1000}})
            check_kd_loss(b, c);
    } else {
        for (int64_t n : {1, 17, 4099, 100003, 1 << 20}) check_update(n);
    }
}

INSTANTIATE_TEST_SUITE_P(AllBuilt, KernelVariant, testing::ValuesIn(all_variants()),
                         [](const testing::TestParamInfo<KernelVariant::ParamType> &info) {
                             return std::get<1>(info.param);
                         });

// ---------------------------------------------------------------------------------
// Selection and the tuning file.

class TuningFile : public testing::Test {
protected:
    void TearDown() override { dtokd::select_default_kernel_variants(); }

    std::string write(const std::string &text) {
        const std::string path = dir_ / ("tuning-" + std::to_string(files_++) + ".json");
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    // A non-default variant of every kernel (the last built).
    static std::map<std::string, std::string> last_variants() {
        std::map<std::string, std::string> choices;
        for (const std::string &k : dtokd::tunable_kernels()) choices[k] = dtokd::kernel_variants(k).back();
        return choices;
    }
    static void expect_defaults() {
        for (const std::string &k : dtokd::tunable_kernels())
            EXPECT_EQ(dtokd::selected_kernel_variant(k), dtokd::kernel_variants(k).front()) << k;
    }
    // Loads `text`; it must be ignored with a message containing `reason`, defaults kept.
    void expect_ignored(const std::string &text, const std::string &reason) {
        dtokd::select_default_kernel_variants();
        const std::string path = write(text);
        const dtokd::TuningLoadResult r = dtokd::load_tuning_file(path);
        EXPECT_EQ(r.status, Status::ignored) << text;
        EXPECT_NE(r.message.find(path), std::string::npos) << r.message;
        EXPECT_NE(r.message.find(reason), std::string::npos) << "message: " << r.message << "\nwanted: " << reason;
        EXPECT_EQ(r.message.find('\n'), std::string::npos) << "one line: " << r.message;
        expect_defaults();
    }

    dtokd_test::ScratchDir dir_{"tuning"};
    int files_ = 0;
};

TEST_F(TuningFile, EveryKernelHasTheDefaultFirstAndVariants) {
    const std::vector<std::string> kernels = dtokd::tunable_kernels();
    EXPECT_EQ(kernels, (std::vector<std::string>{"log_gram", "kd_loss", "sgd_update2", "sgd_update1",
                                                 "adamw_update2", "adamw_update1"}));
    for (const std::string &k : kernels) {
        const std::vector<std::string> v = dtokd::kernel_variants(k);
        ASSERT_GE(v.size(), 4u) << k;
        EXPECT_EQ(v.front(), "dtokd_" + k) << k;
        EXPECT_EQ(dtokd::selected_kernel_variant(k), v.front()) << k;
    }
}

TEST_F(TuningFile, SelectRejectsUnknownNames) {
    EXPECT_THROW(dtokd::select_kernel_variant("log_gramm", "dtokd_log_gram"), std::invalid_argument);
    EXPECT_THROW(dtokd::select_kernel_variant("log_gram", "dtokd_kd_loss"), std::invalid_argument);
    EXPECT_THROW(dtokd::kernel_variants("nope"), std::invalid_argument);
    expect_defaults();
}

TEST_F(TuningFile, RoundTripSelectsTheWrittenVariants) {
    const auto choices = last_variants();
    const std::string path = dir_ / "new/folder/tuning.json";
    dtokd::save_tuning_file(path, choices);
    EXPECT_FALSE(dtokd_test::fs::exists(path + ".tmp." + std::to_string(::getpid())));
    const dtokd::TuningLoadResult r = dtokd::load_tuning_file(path);
    ASSERT_EQ(r.status, Status::applied) << r.message;
    for (const auto &[kernel, variant] : choices) EXPECT_EQ(dtokd::selected_kernel_variant(kernel), variant);

    // A file naming only some kernels: the others go back to their defaults.
    const std::string partial = write(dtokd::format_tuning_file({{"kd_loss", choices.at("kd_loss")}},
                                                                dtokd::current_tuning_fingerprint()));
    ASSERT_EQ(dtokd::load_tuning_file(partial).status, Status::applied);
    EXPECT_EQ(dtokd::selected_kernel_variant("kd_loss"), choices.at("kd_loss"));
    EXPECT_EQ(dtokd::selected_kernel_variant("log_gram"), "dtokd_log_gram");
}

TEST_F(TuningFile, MissingFileKeepsDefaults) {
    const dtokd::TuningLoadResult r = dtokd::load_tuning_file(dir_ / "absent.json");
    EXPECT_EQ(r.status, Status::missing);
    EXPECT_NE(r.message.find("absent.json"), std::string::npos);
    expect_defaults();
}

TEST_F(TuningFile, StaleFingerprintIsIgnored) {
    const auto choices = last_variants();
    const dtokd::TuningFingerprint now = dtokd::current_tuning_fingerprint();
    dtokd::TuningFingerprint other = now;
    other.cpu = "Some Other CPU @ 1.00GHz";
    expect_ignored(dtokd::format_tuning_file(choices, other), "made for cpu 'Some Other CPU @ 1.00GHz'");
    other = now;
    other.threads = std::to_string(std::stoi(now.threads) + 1);
    expect_ignored(dtokd::format_tuning_file(choices, other), "made for threads '" + other.threads + "'");
    other = now;
    other.build = "0123456789abcdef";
    expect_ignored(dtokd::format_tuning_file(choices, other), "made for build '0123456789abcdef'");
}

TEST_F(TuningFile, UnknownKernelOrVariantIsIgnored) {
    const dtokd::TuningFingerprint now = dtokd::current_tuning_fingerprint();
    auto choices = last_variants();
    choices["log_gram"] = "dtokd_log_gram__w3_c7";
    expect_ignored(dtokd::format_tuning_file(choices, now), "kernel log_gram has no variant 'dtokd_log_gram__w3_c7'");
    choices = last_variants();
    choices["kd_loss"] = "dtokd_log_gram";  // another kernel's variant
    expect_ignored(dtokd::format_tuning_file(choices, now), "kernel kd_loss has no variant 'dtokd_log_gram'");
    choices = last_variants();
    choices["conv2d"] = "dtokd_conv2d";
    expect_ignored(dtokd::format_tuning_file(choices, now), "unknown kernel 'conv2d'");
}

TEST_F(TuningFile, CorruptOrForeignJsonIsIgnored) {
    const std::string good = dtokd::format_tuning_file(last_variants(), dtokd::current_tuning_fingerprint());
    expect_ignored("", "not valid JSON");
    expect_ignored("not json", "not valid JSON");
    expect_ignored(good.substr(0, good.size() / 2), "not valid JSON");  // truncated
    expect_ignored(good + "x", "not valid JSON");
    expect_ignored("{\"format\": 1}", "value of 'format' is not a string");
    expect_ignored("{\"format\": \"dtokd-tuning-1\", \"format\": \"dtokd-tuning-1\"}", "duplicate key 'format'");
    expect_ignored("{\"format\": \"\\u0041\"}", "format is 'A'");  // JSON escapes are read as JSON
    expect_ignored("{\"log_gram\": \"dtokd_log_gram\"}", "format is '(missing)'");
    expect_ignored("{\"format\": \"dtokd-tuning-2\"}", "format is 'dtokd-tuning-2', expected 'dtokd-tuning-1'");
    expect_ignored("[\"dtokd-tuning-1\"]", "not a JSON object");
    // A failed load after a good one keeps what was selected (the CLI loads once, at start-up).
    const std::string path = write(good);
    ASSERT_EQ(dtokd::load_tuning_file(path).status, Status::applied);
    EXPECT_EQ(dtokd::load_tuning_file(write("{")).status, Status::ignored);
    EXPECT_EQ(dtokd::selected_kernel_variant("log_gram"), dtokd::kernel_variants("log_gram").back());
}

TEST_F(TuningFile, DefaultPathFollowsTheEnvironment) {
    const char *saved = std::getenv("DTOKD_TUNING");
    const std::string saved_value = saved ? saved : "";
    setenv("DTOKD_TUNING", "/somewhere/t.json", 1);
    EXPECT_EQ(dtokd::default_tuning_path(), "/somewhere/t.json");
    unsetenv("DTOKD_TUNING");
    const std::string p = dtokd::default_tuning_path();
    if (std::getenv("XDG_CACHE_HOME") != nullptr || std::getenv("HOME") != nullptr) {
        EXPECT_NE(p.find("/dtokd/tuning.json"), std::string::npos) << p;
    }
    if (saved) setenv("DTOKD_TUNING", saved_value.c_str(), 1);
}

// ---------------------------------------------------------------------------------
// The CLI: `dtokd autotune` writes a file that `dtokd ... info` then applies; a stale
// or corrupt one is one warning line and the command still succeeds.

#ifndef DTOKD_CLI
#error "tests/CMakeLists.txt passes the dtokd binary's path as DTOKD_CLI"
#endif

struct CliRun {
    int code = -1;
    std::string output;  // stdout and stderr together
};

CliRun run_dtokd(const std::string &args) {
    CliRun r;
    FILE *pipe = ::popen((std::string(DTOKD_CLI) + " " + args + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return r;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, n);
    const int status = ::pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

size_t count(const std::string &text, const std::string &what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) n++;
    return n;
}

TEST(TuningCli, AutotuneWritesAFileThatInfoApplies) {
    dtokd_test::ScratchDir dir("tuning-cli");
    const std::string file = dir / "sub/tuning.json";
    const CliRun tune = run_dtokd("--threads 1 autotune --out " + file +
                                  " --sizes 1000,4099 --kd-shapes 4x3 --repeats 1 --batch-ms 1");
    ASSERT_EQ(tune.code, 0) << tune.output;
    for (const std::string &k : dtokd::tunable_kernels()) EXPECT_NE(tune.output.find(k), std::string::npos) << k;
    EXPECT_NE(tune.output.find("speedup"), std::string::npos) << tune.output;

    const CliRun info = run_dtokd("--threads 1 --tuning " + file + " info");
    ASSERT_EQ(info.code, 0) << info.output;
    EXPECT_EQ(count(info.output, "warning"), 0u) << info.output;
    EXPECT_NE(info.output.find("kernel schedules"), std::string::npos) << info.output;

    const CliRun stale = run_dtokd("--threads 2 --tuning " + file + " info");
    ASSERT_EQ(stale.code, 0) << stale.output;
    EXPECT_EQ(count(stale.output, "dtokd: warning: tuning file " + file + " ignored: made for threads '1'"), 1u)
        << stale.output;
    EXPECT_EQ(count(stale.output, "(tuned)"), 0u) << stale.output;

    std::ofstream(file, std::ios::trunc) << "{\"format\": ";
    const CliRun corrupt = run_dtokd("--threads 1 --tuning " + file + " info");
    ASSERT_EQ(corrupt.code, 0) << corrupt.output;
    EXPECT_EQ(count(corrupt.output, "warning"), 1u) << corrupt.output;
}

TEST(TuningCli, TunedVariantsShowInInfo) {
    dtokd_test::ScratchDir dir("tuning-cli");
    dtokd::TuningFingerprint fp = dtokd::current_tuning_fingerprint();
    fp.threads = "1";
    const std::string variant = dtokd::kernel_variants("sgd_update1").back();
    const std::string file = dir / "t.json";
    std::ofstream(file) << dtokd::format_tuning_file({{"sgd_update1", variant}}, fp);
    const CliRun info = run_dtokd("--threads 1 --tuning " + file + " info");
    ASSERT_EQ(info.code, 0) << info.output;
    EXPECT_NE(info.output.find("sgd_update1: " + variant + " (tuned)"), std::string::npos) << info.output;
    EXPECT_EQ(count(info.output, "(tuned)"), 1u) << info.output;
}

TEST(TuningCli, BadAutotuneArgumentsAreOneError) {
    const CliRun r = run_dtokd("autotune --kd-shapes 128by10 --out /dev/null");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.output.find("--kd-shapes: '128by10' is not BATCHxCLASSES"), std::string::npos) << r.output;
}

}  // namespace
