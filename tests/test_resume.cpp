// --resume: a run killed with SIGKILL (a real one, raised by the process itself at a
// chosen step through DTOKD_FAULT_KILL_AFTER_STEP, or sent from outside at a random
// moment) and resumed ends with the student, optimizer and policy state bitwise equal
// to an uninterrupted run's, and the same metrics lines apart from timings, for every
// policy and for objectives that own modules and state (FitNet's regressor, CRD's
// memory banks). Also: the same seed twice is bitwise the same run; a resumed run that
// changes an option that matters is one error naming it; a finished run extends with
// --epochs; a second process cannot resume a run another one holds.
// One thread (--threads 1): LibTorch's reductions are then in one fixed order.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint.h"
#include "cli_runner.h"
#include "model_factory.h"
#include "run_state.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;

// `args` (a run, on one thread) that fault injection kills right after step `step`.
CliResult run_killed_after(int step, const std::string &args) {
    return run_cli("--threads 1 " + args, "DTOKD_FAULT_KILL_AFTER_STEP=" + std::to_string(step) + " ");
}

class Resume : public ::testing::Test {
protected:
    // 256 training images in batches of 32: 8 steps per epoch, 3 epochs.
    static void SetUpTestSuite() {
        root_ = new ScratchDir("resume");
        fs::create_directories(*root_ / "data");
        write_idx_dataset(*root_ / "data", random_idx_split(256, 28, 28, 10, 11), random_idx_split(64, 28, 28, 10, 12),
                          28, 28, /*gz=*/false);
    }
    static void TearDownTestSuite() {
        delete root_;
        root_ = nullptr;
    }
    static std::string path(const std::string &name) { return *root_ / name; }
    // cnn_large as the student: it has dropout, so the random-number state must resume too.
    static std::string common() {
        return "--dataset mnist --data " + quoted(path("data")) +
               " --model cnn_large --epochs 3 --batch-size 32 --lr 0.02 --log-interval 3 --checkpoint-every 5 "
               "--no-progress";
    }
    // A 1-epoch cnn_small teacher, made once.
    static std::string teacher() {
        const std::string t = path("teacher");
        if (!fs::exists(t)) {
            const CliResult r = run_cli("--threads 1 train --dataset mnist --data " + quoted(path("data")) +
                                        " --model cnn_small --epochs 1 --batch-size 32 --no-progress --out " +
                                        quoted(t));
            EXPECT_EQ(r.code, 0) << r.output;
        }
        return t + "/checkpoint.pt";
    }
    static std::string command(const std::string &method) {
        if (method == "ce") return "train " + common();
        std::string objectives;
        if (method == "dto+modules") return "distill " + common() + " --teacher " + quoted(teacher()) +
                                            " --method dto --objectives fitnet,crd,ce --crd-negatives 16 --crd-dim 8";
        return "distill " + common() + " --teacher " + quoted(teacher()) + " --method " + method +
               (method == "dto-amortized" ? " --dto-reeval-every 2" : "");
    }
    static ScratchDir *root_;
};
ScratchDir *Resume::root_ = nullptr;

// The student's parameters and buffers and every state entry of a run's checkpoint.
struct Saved {
    std::map<std::string, at::Tensor> tensors;
};

Saved read_run(const std::string &run) {
    Saved s;
    auto model = dtokd::make_model("cnn_large", 1, 10);
    dtokd::CheckpointEntries state;
    dtokd::load_checkpoint(run + "/checkpoint.pt", *model, &state);
    for (const auto &p : model->named_parameters(true)) s.tensors["param/" + p.key()] = p.value().clone();
    for (const auto &b : model->named_buffers(true)) s.tensors["buffer/" + b.key()] = b.value().clone();
    for (const auto &[k, t] : state) {
        if (k == "loop/measures") continue;  // run and step seconds differ
        // torch::optim keys its archive by tensor addresses, so the bytes differ by process;
        // the modules' parameters after resumed steps show whether their momentum resumed.
        if (k == "objective_optimizer") continue;
        if (k == "loop/counts") {
            s.tensors[k] = t.narrow(0, 0, 6);  // not the metrics file's length: timings vary in width
        } else if (k == "loop/epochs") {
            s.tensors[k] = t.view({-1, 6}).narrow(1, 0, 3);  // epoch, lr, accuracy; not the timings
        } else {
            s.tensors[k] = t;
        }
    }
    return s;
}

// metrics.jsonl without the timings; every line parsed (a torn line fails here).
std::vector<std::string> metrics_without_timings(const std::string &run) {
    std::istringstream in(slurp(run + "/metrics.jsonl"));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
        for (const char *k : {"seconds", "step_seconds", "images_per_second", "data_wait_fraction"}) j.erase(k);
        out.push_back(j.dump());
    }
    return out;
}

void expect_same_run(const std::string &a, const std::string &b) {
    const Saved sa = read_run(a), sb = read_run(b);
    ASSERT_EQ(sa.tensors.size(), sb.tensors.size());
    int params = 0;
    for (const auto &[k, t] : sa.tensors) {
        ASSERT_TRUE(sb.tensors.count(k)) << k;
        EXPECT_TRUE(torch::equal(t, sb.tensors.at(k))) << k << " differs";
        params += k.rfind("param/", 0) == 0;
    }
    EXPECT_GT(params, 0);
    const auto ma = metrics_without_timings(a), mb = metrics_without_timings(b);
    EXPECT_EQ(ma.size(), mb.size());
    EXPECT_EQ(ma, mb);
    nlohmann::json ja = nlohmann::json::parse(slurp(a + "/summary.json")),
                   jb = nlohmann::json::parse(slurp(b + "/summary.json"));
    for (auto *j : {&ja, &jb})
        for (const char *k : {"seconds", "mean_step_seconds", "resumed", "teacher_logits_cached"}) j->erase(k);
    EXPECT_EQ(ja, jb);
}

// Every step's losses finite, pi in [0, 1], nothing skipped (a run that "resumes" into NaN is no run).
void expect_healthy_metrics(const std::string &run) {
    std::istringstream in(slurp(run + "/metrics.jsonl"));
    int train_lines = 0;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json j = nlohmann::json::parse(line);
        if (j["type"] != "train") continue;
        train_lines++;
        EXPECT_EQ(j["skipped"], 0) << line;
        for (const auto &[k, v] : j.items()) {
            if (k.rfind("loss_", 0) == 0 && !v.is_null()) EXPECT_TRUE(std::isfinite(v.get<double>())) << k;
            if (k.rfind("pi_", 0) == 0) {
                ASSERT_TRUE(v.is_number()) << k << " in " << line;
                EXPECT_GE(v.get<double>(), 0.0) << k;
                EXPECT_LE(v.get<double>(), 1.0) << k;
            }
        }
    }
    EXPECT_EQ(train_lines, 9);  // 8 steps per epoch in intervals of 3: 3 lines per epoch
    EXPECT_EQ(nlohmann::json::parse(slurp(run + "/summary.json"))["skipped_steps"], 0);
}

// Runs `method` uninterrupted, then killed after each of `kills` (one process per kill,
// each resuming the last) and resumed to the end; the two must be the same run.
void check_kills(const std::string &method, const std::string &cmd, const std::string &name,
                 const std::vector<int> &kills, const std::string &root) {
    const std::string whole = root + "/" + name + "-whole", cut = root + "/" + name + "-cut";
    const CliResult ref = run_cli("--threads 1 " + cmd + " --out " + quoted(whole));
    ASSERT_EQ(ref.code, 0) << ref.output;
    expect_healthy_metrics(whole);
    bool first = true;
    for (int k : kills) {
        SCOPED_TRACE("killed after step " + std::to_string(k));
        const CliResult r =
            run_killed_after(k, first ? cmd + " --out " + quoted(cut)
                                      : std::string(method == "ce" ? "train" : "distill") + " --resume " + quoted(cut));
        first = false;
        ASSERT_EQ(r.code, 128 + SIGKILL) << r.output;
        ASSERT_TRUE(fs::exists(cut + ".partial/checkpoint.pt")) << "killed before the first checkpoint";
        EXPECT_FALSE(fs::exists(cut));
    }
    const CliResult r =
        run_cli("--threads 1 " + std::string(method == "ce" ? "train" : "distill") + " --resume " + quoted(cut));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "\"resumed\":true")) << r.output;
    expect_same_run(whole, cut);
}

// Kill points: two at random steps after the first checkpoint (step 5; a kill at 5 comes before it) and before the end
// (24), drawn per method from a fixed seed, plus an epoch's last step (8: killed before its
// evaluation and checkpoint) for some.
std::vector<int> kill_points(const std::string &method, bool with_epoch_end) {
    std::mt19937 rng(uint32_t(std::hash<std::string>{}(method)));
    std::uniform_int_distribution<int> step(6, 23);
    std::set<int> picks = {step(rng), step(rng)};
    if (with_epoch_end) picks.insert(8);
    return std::vector<int>(picks.begin(), picks.end());
}

TEST_F(Resume, CeKilledAndResumedIsBitwiseTheUninterruptedRun) {
    check_kills("ce", command("ce"), "ce", kill_points("ce", true), root_->path());
}
TEST_F(Resume, KdKilledAndResumedIsBitwiseTheUninterruptedRun) {
    check_kills("kd", command("kd"), "kd", kill_points("kd", false), root_->path());
}
TEST_F(Resume, DtoKilledAndResumedIsBitwiseTheUninterruptedRun) {
    check_kills("dto", command("dto"), "dto", kill_points("dto", true), root_->path());
}
TEST_F(Resume, DtoAmortizedKilledAndResumedIsBitwiseTheUninterruptedRun) {
    // Kills at odd and even steps: the re-evaluation counter (every 2nd step) must resume too.
    check_kills("dto-amortized", command("dto-amortized"), "amortized", {6, 11, 19}, root_->path());
}
TEST_F(Resume, DtoLogitKilledAndResumedIsBitwiseTheUninterruptedRun) {
    check_kills("dto-logit", command("dto-logit"), "logit", kill_points("dto-logit", false), root_->path());
}
TEST_F(Resume, ObjectiveModulesAndMemoryBanksResumeBitwise) {
    check_kills("dto+modules", command("dto+modules"), "modules", {7, 13}, root_->path());
}

// The same seed twice: bitwise the same run (the reference the tests above compare against).
TEST_F(Resume, TheSameSeedTwiceIsBitwiseTheSameRun) {
    for (const std::string name : {"seed-a", "seed-b"}) {
        const CliResult r = run_cli("--threads 1 " + command("dto") + " --out " + quoted(path(name)));
        ASSERT_EQ(r.code, 0) << r.output;
    }
    expect_same_run(path("seed-a"), path("seed-b"));
    // And another seed is another run (the comparison can fail).
    const CliResult r = run_cli("--threads 1 " + command("dto") + " --seed 1 --out " + quoted(path("seed-c")));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_FALSE(torch::equal(read_run(path("seed-a")).tensors.at("param/fc1.weight"),
                              read_run(path("seed-c")).tensors.at("param/fc1.weight")));
}

// A SIGKILL from outside at a moment the test does not choose (while the run writes its
// metrics), then --resume: the same run.
TEST_F(Resume, AnExternalKillAtARandomMomentResumesBitwise) {
    const std::string whole = path("ext-whole"), cut = path("ext-cut");
    // More epochs, so there is time to kill it mid-run.
    std::string cmd = command("kd");
    cmd.replace(cmd.find("--epochs 3"), 10, "--epochs 6");
    ASSERT_EQ(run_cli("--threads 1 " + cmd + " --out " + quoted(whole)).code, 0);
    std::mt19937 rng(uint32_t(std::chrono::steady_clock::now().time_since_epoch().count()));
    const int wait_lines = std::uniform_int_distribution<int>(4, 12)(rng);
    const std::string launch = "exec " + std::string(DTOKD_CLI) + " --threads 1 " + cmd + " --out " + quoted(cut) +
                               " >/dev/null 2>&1 & echo $!";
    FILE *p = ::popen(launch.c_str(), "r");
    ASSERT_NE(p, nullptr);
    int pid = 0;
    ASSERT_EQ(std::fscanf(p, "%d", &pid), 1);
    ::pclose(p);
    const std::string metrics = cut + ".partial/metrics.jsonl";
    auto lines = [&] {
        std::istringstream in(fs::exists(metrics) ? slurp(metrics) : "");
        int n = 0;
        for (std::string l; std::getline(in, l);) n++;
        return n;
    };
    for (int i = 0; i < 2000 && lines() < wait_lines; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    for (int i = 0; i < 200 && ::kill(pid, 0) == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("killed after %d metrics lines\n", lines());
    if (fs::exists(cut)) GTEST_SKIP() << "the run finished before the kill (a slow poll); nothing to resume";
    if (!fs::exists(cut + ".partial/checkpoint.pt")) {
        // Killed before its first checkpoint: resuming says so, and starting over is the way.
        const CliResult r = run_cli("--threads 1 distill --resume " + quoted(cut));
        EXPECT_NE(r.code, 0);
        EXPECT_TRUE(contains(r.output, "no checkpoint yet")) << r.output;
        return;
    }
    const CliResult r = run_cli("--threads 1 distill --resume " + quoted(cut));
    ASSERT_EQ(r.code, 0) << r.output;
    expect_same_run(whole, cut);
}

// Options that change what the remaining steps compute are refused by name; --epochs
// extends a finished run; a finished run without more epochs has nothing to do.
TEST_F(Resume, ChangedOptionsAreOneErrorAndEpochsExtend) {
    const std::string out = path("opts");
    ASSERT_EQ(run_killed_after(7, command("kd") + " --out " + quoted(out)).code, 128 + SIGKILL);
    const Bytes checkpoint = read_bytes(out + ".partial/checkpoint.pt");
    const CliResult bad = run_cli("distill --resume " + quoted(out) + " --lr 0.1 --temperature 2");
    EXPECT_NE(bad.code, 0);
    for (const char *part : {"lr", "temperature", "other options"}) EXPECT_TRUE(contains(bad.output, part)) << bad.output;
    EXPECT_EQ(read_bytes(out + ".partial/checkpoint.pt"), checkpoint) << "a refused resume changed the run";
    EXPECT_FALSE(contains(bad.output, "terminate called")) << bad.output;
    EXPECT_NE(run_cli("distill --resume " + quoted(out) + " --config x.toml").code, 0);
    EXPECT_NE(run_cli("distill --resume " + quoted(out) + " --out " + quoted(path("elsewhere"))).code, 0);
    // RUN.partial names the same run; then it completes.
    const CliResult done = run_cli("--threads 1 distill --resume " + quoted(out + ".partial"));
    ASSERT_EQ(done.code, 0) << done.output;
    ASSERT_TRUE(fs::exists(out + "/summary.json"));
    const CliResult again = run_cli("distill --resume " + quoted(out));
    EXPECT_NE(again.code, 0);
    EXPECT_TRUE(contains(again.output, "complete")) << again.output;
    EXPECT_TRUE(contains(again.output, "--epochs")) << again.output;
    // Extending: 2 more epochs, every epoch's line exactly once, steps continue.
    const CliResult more = run_cli("--threads 1 distill --resume " + quoted(out) + " --epochs 5");
    ASSERT_EQ(more.code, 0) << more.output;
    std::istringstream in(slurp(out + "/metrics.jsonl"));
    std::vector<int> epochs;
    int64_t last_step = 0;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json j = nlohmann::json::parse(line);
        EXPECT_GT(j["step"].get<int64_t>(), last_step - (j["type"] == "epoch" ? 1 : 0)) << line;
        last_step = j["step"].get<int64_t>();
        if (j["type"] == "epoch") epochs.push_back(j["epoch"].get<int>());
    }
    EXPECT_EQ(epochs, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(last_step, 40);
    const nlohmann::json summary = nlohmann::json::parse(slurp(out + "/summary.json"));
    EXPECT_EQ(summary["epochs"], 5);
    EXPECT_EQ(summary["steps"], 40);
    EXPECT_FALSE(fs::exists(out + ".partial"));
}

// --kernels is a global flag, not in config.toml: the checkpoint records it, and a resume
// on the other backend is one error naming the flag to pass (its rounding differs).
TEST_F(Resume, AnotherKernelBackendIsOneError) {
    const std::string out = path("kernels");
    ASSERT_EQ(run_killed_after(7, "--kernels torch " + command("dto") + " --out " + quoted(out)).code, 128 + SIGKILL);
    const Bytes checkpoint = read_bytes(out + ".partial/checkpoint.pt");
    const CliResult bad = run_cli("--threads 1 distill --resume " + quoted(out));  // --kernels halide, the default
    EXPECT_NE(bad.code, 0);
    EXPECT_TRUE(contains(bad.output, "trained with --kernels torch, not halide")) << bad.output;
    EXPECT_TRUE(contains(bad.output, "dtokd --kernels torch")) << bad.output;
    EXPECT_EQ(read_bytes(out + ".partial/checkpoint.pt"), checkpoint) << "a refused resume changed the run";
    const CliResult done = run_cli("--threads 1 --kernels torch distill --resume " + quoted(out));
    ASSERT_EQ(done.code, 0) << done.output;
    EXPECT_TRUE(fs::exists(out + "/summary.json"));
}

TEST_F(Resume, NothingToResumeIsOneError) {
    const CliResult r = run_cli("train --resume " + quoted(path("never-was")));
    EXPECT_NE(r.code, 0);
    EXPECT_TRUE(contains(r.output, path("never-was"))) << r.output;
    EXPECT_FALSE(fs::exists(path("never-was.partial")));
}

// While one process runs (or resumes) a run, a second --resume of it is refused and the
// first finishes unharmed.
TEST_F(Resume, ASecondProcessCannotResumeAHeldRun) {
    const std::string out = path("held");
    ASSERT_EQ(run_killed_after(6, command("ce") + " --out " + quoted(out)).code, 128 + SIGKILL);
    FILE *first = ::popen((std::string(DTOKD_CLI) + " --threads 1 train --resume " + quoted(out) + " --epochs 40 2>&1").c_str(), "r");
    ASSERT_NE(first, nullptr);
    // Wait until the first has taken the run (it rewrites config.toml with the new epochs).
    for (int i = 0; i < 1200 && !contains(fs::exists(out + ".partial/config.toml") ? slurp(out + ".partial/config.toml") : "", "epochs = 40"); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const CliResult second = run_cli("train --resume " + quoted(out) + " --epochs 40");
    EXPECT_NE(second.code, 0);
    EXPECT_TRUE(contains(second.output, "another dtokd process")) << second.output;
    std::string first_output;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, first)) first_output.append(buf, n);
    const int status = ::pclose(first);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << first_output;
    EXPECT_TRUE(fs::is_regular_file(out + "/summary.json"));
}

// No space for the metrics (the file-size limit, as a full disk): one error naming
// metrics.jsonl, exit 1, the checkpoint as it was, no temp file; the run resumes later.
TEST_F(Resume, AFailedMetricsWriteIsOneErrorAndTheCheckpointIsIntact) {
    const std::string out = path("metrics-full");
    ASSERT_EQ(run_killed_after(7, command("ce") + " --out " + quoted(out)).code, 128 + SIGKILL);
    const Bytes checkpoint = read_bytes(out + ".partial/checkpoint.pt");
    // 2 blocks of 512 bytes (dash's unit): config.toml (~500 bytes) fits; with a line per step
    // (~460 bytes) the metrics outgrow it at step 7, before the next checkpoint (step 8, the epoch's end).
    const CliResult r = run_cli("--threads 1 train --resume " + quoted(out) + " --log-interval 1", "ulimit -f 2 && ");
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, out + ".partial/metrics.jsonl")) << r.output;
    EXPECT_EQ(count(r.output, "dtokd: error:"), 1) << r.output;
    EXPECT_FALSE(contains(r.output, "terminate called")) << r.output;
    EXPECT_EQ(read_bytes(out + ".partial/checkpoint.pt"), checkpoint);
    for (const std::string &f : files_under(out + ".partial")) EXPECT_EQ(f.find(".tmp."), std::string::npos) << f;
    // With space again the run goes on from the same checkpoint.
    const CliResult again = run_cli("--threads 1 train --resume " + quoted(out));
    ASSERT_EQ(again.code, 0) << again.output;
    EXPECT_TRUE(fs::exists(out + "/summary.json"));
}

// The summary cannot be written (here: a folder in its place): one error naming it,
// exit 1, the final checkpoint written and intact, the run left unfinished in .partial.
TEST_F(Resume, AFailedSummaryWriteIsOneError) {
    const std::string out = path("summary-blocked");
    ASSERT_EQ(run_killed_after(24, command("ce") + " --out " + quoted(out)).code, 128 + SIGKILL);
    fs::create_directories(out + ".partial/summary.json/occupied");
    const CliResult r = run_cli("--threads 1 train --resume " + quoted(out));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, out + ".partial/summary.json")) << r.output;
    EXPECT_EQ(count(r.output, "dtokd: error:"), 1) << r.output;
    EXPECT_FALSE(fs::exists(out));
    for (const std::string &f : files_under(out + ".partial")) EXPECT_EQ(f.find(".tmp."), std::string::npos) << f;
    auto model = dtokd::make_model("cnn_large", 1, 10);
    EXPECT_EQ(dtokd::load_checkpoint(out + ".partial/checkpoint.pt", *model).step, 24);
}

}  // namespace

// A GPU run's checkpoint also holds its device generator's state (dropout on the GPU draws
// there), as "loop/device_rng"; a CPU run's has none, and both read back as written.
TEST(LoopState, TheDeviceGeneratorEntryIsWrittenOnlyWhenSet) {
    dtokd::LoopState cpu_run;
    cpu_run.rng_state = dtokd::cpu_rng_state();
    cpu_run.window = {1.5, 2.5};
    const auto cpu_entries = dtokd::loop_state_entries(cpu_run);
    for (const auto &[key, t] : cpu_entries) EXPECT_NE(key, "loop/device_rng");
    EXPECT_FALSE(dtokd::loop_state_from(cpu_entries, "cpu.pt").device_rng_state.defined());

    dtokd::LoopState gpu_run = cpu_run;
    gpu_run.device_rng_state = torch::randint(0, 256, {16}, torch::kByte);
    const dtokd::LoopState back = dtokd::loop_state_from(dtokd::loop_state_entries(gpu_run), "gpu.pt");
    ASSERT_TRUE(back.device_rng_state.defined());
    EXPECT_TRUE(torch::equal(back.device_rng_state, gpu_run.device_rng_state));
    EXPECT_TRUE(torch::equal(back.rng_state, cpu_run.rng_state));
    EXPECT_EQ(back.window, cpu_run.window);
}
