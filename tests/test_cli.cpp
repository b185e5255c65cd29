// pipelines/dtokd_main (the dtokd binary, run as a child process) on a tiny IDX
// dataset written here (256 train / 64 test 28x28 images, 10 classes): train,
// distill with every method, eval; config files and flag overrides; and every bad
// invocation exits non-zero with one clear message and leaves no run behind.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "cli_runner.h"
#include "cuda_device.h"
#include "cuda_tagged_archive.h"
#include "model_factory.h"
#include "sanitizer_build.h"
#include "scratch_data.h"

#ifndef DTOKD_CLI
#error "tests/CMakeLists.txt passes the dtokd binary's path as DTOKD_CLI"
#endif

namespace {

using namespace dtokd_test;

std::map<std::string, Bytes> snapshot(const fs::path &dir) {
    std::map<std::string, Bytes> out;
    for (const std::string &f : files_under(dir))
        if (fs::is_regular_file(dir / f)) out[f] = read_bytes((dir / f).string());
    return out;
}

// A failed run: non-zero exit, one "dtokd: error:" line naming every one of `parts`.
void expect_one_error(const CliResult &r, const std::vector<std::string> &parts) {
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_EQ(count(r.output, "dtokd: error:"), 1) << r.output;
    EXPECT_FALSE(contains(r.output, "terminate called")) << r.output;
    for (const std::string &p : parts) EXPECT_TRUE(contains(r.output, p)) << "no '" << p << "' in: " << r.output;
}

// The train lines of metrics.jsonl without the timing fields.
std::vector<std::string> train_lines_without_timing(const std::string &metrics) {
    std::vector<std::string> out;
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);) {
        if (!contains(line, "\"type\":\"train\"")) continue;
        out.push_back(std::regex_replace(line, std::regex(R"(,"step_seconds":[^,}]*)"), ""));
    }
    return out;
}

class DtokdCli : public ::testing::Test {
protected:
    // One dataset for the suite; one trained run, made on first use (ctest runs each
    // test in its own process, and each CLI run costs a process start).
    static void SetUpTestSuite() {
        root_ = new ScratchDir("cli");
        fs::create_directories(*root_ / "data");
        write_idx_dataset(*root_ / "data", random_idx_split(256, 28, 28, 10, 1), random_idx_split(64, 28, 28, 10, 2),
                          28, 28, /*gz=*/true);
    }
    static void TearDownTestSuite() {
        delete train_;
        delete root_;
        train_ = nullptr;
        root_ = nullptr;
    }
    // `train ... --out <root>/t`, run once.
    static const CliResult &trained() {
        if (!train_) train_ = new CliResult(run_cli("train " + common() + " --out " + quoted(path("t"))));
        return *train_;
    }

    static std::string path(const std::string &name) { return *root_ / name; }
    static std::string data_args() { return "--dataset mnist --data " + quoted(path("data")); }
    static std::string common() {
        return data_args() + " --model cnn_small --epochs 1 --max-steps 3 --batch-size 32 --no-progress";
    }

    static ScratchDir *root_;
    static CliResult *train_;
};
ScratchDir *DtokdCli::root_ = nullptr;
CliResult *DtokdCli::train_ = nullptr;

#define ASSERT_TRAINED() ASSERT_EQ(trained().code, 0) << "the suite's train run failed:\n" << trained().output

// Every line of metrics.jsonl is one {...} object; the train lines carry pi1.
void expect_metrics(const std::string &run) {
    std::istringstream in(slurp(run + "/metrics.jsonl"));
    std::string line;
    int train_lines = 0, epoch_lines = 0;
    while (std::getline(in, line)) {
        ASSERT_FALSE(line.empty());
        EXPECT_EQ(line.front(), '{') << line;
        EXPECT_EQ(line.back(), '}') << line;
        EXPECT_EQ(count(line, "{"), 1) << line;
        if (contains(line, "\"type\":\"train\"")) {
            train_lines++;
            EXPECT_TRUE(contains(line, "\"pi1\":")) << line;
            EXPECT_TRUE(contains(line, "\"step\":3")) << line;
            // Every objective's loss finite, every pi in [0, 1], nothing skipped.
            const nlohmann::json j = nlohmann::json::parse(line);
            EXPECT_EQ(j["skipped"], 0) << line;
            int losses = 0, pis = 0;
            for (const auto &[key, value] : j.items()) {
                if (key.rfind("loss_", 0) == 0 && key != "loss_distill" && key != "loss_task") {
                    losses++;
                    ASSERT_TRUE(value.is_number()) << key << " in " << line;
                    EXPECT_TRUE(std::isfinite(value.get<double>())) << key;
                }
                if (key.rfind("pi_", 0) == 0) {
                    pis++;
                    ASSERT_TRUE(value.is_number()) << key << " in " << line;
                    EXPECT_GE(value.get<double>(), 0.0) << key;
                    EXPECT_LE(value.get<double>(), 1.0) << key;
                }
            }
            EXPECT_GE(losses, 1) << line;
            EXPECT_EQ(pis, losses) << line;
        }
        if (contains(line, "\"type\":\"epoch\"")) {
            epoch_lines++;
            EXPECT_TRUE(contains(line, "\"test_accuracy\":")) << line;
        }
    }
    EXPECT_EQ(train_lines, 1) << run;
    EXPECT_EQ(epoch_lines, 1) << run;
}

void expect_complete_run(const std::string &run, const std::string &method) {
    for (const char *f : {"config.toml", "metrics.jsonl", "checkpoint.pt", "summary.json"})
        EXPECT_TRUE(fs::is_regular_file(run + "/" + f)) << run << "/" << f;
    EXPECT_FALSE(fs::exists(run + ".partial"));
    const std::string summary = slurp(run + "/summary.json");
    EXPECT_TRUE(contains(summary, "\"method\":\"" + method + "\"")) << summary;
    EXPECT_TRUE(contains(summary, "\"steps\":3")) << summary;
    EXPECT_TRUE(contains(summary, "\"model\":\"cnn_small\"")) << summary;
    EXPECT_EQ(nlohmann::json::parse(summary)["skipped_steps"], 0) << summary;
    expect_metrics(run);
}

TEST_F(DtokdCli, TrainWritesACompleteRun) {
    ASSERT_TRAINED();
    expect_complete_run(path("t"), "ce");
    EXPECT_TRUE(contains(trained().output, "\"final_test_accuracy\":")) << trained().output;
    EXPECT_TRUE(std::regex_search(slurp(path("t/config.toml")), std::regex(R"(model\s*=\s*['"]cnn_small['"])")));
    EXPECT_FALSE(fs::exists(path("t.partial")));
}

TEST_F(DtokdCli, DistillsWithEveryMethod) {
    ASSERT_TRAINED();
    const std::string teacher = quoted(path("t/checkpoint.pt"));
    bool first = true;
    for (const std::string method : {"kd", "dto", "dto-amortized", "dto-logit"}) {
        SCOPED_TRACE(method);
        const std::string out = path("d-" + method);
        const CliResult r =
            run_cli("distill " + common() + " --teacher " + teacher + " --method " + method + " --out " + quoted(out));
        ASSERT_EQ(r.code, 0) << r.output;
        expect_complete_run(out, method);
        // The first run fills <out>/../cache with the teacher's logits; the rest reuse them.
        EXPECT_TRUE(contains(slurp(out + "/summary.json"),
                             std::string("\"teacher_logits_cached\":") + (first ? "false" : "true")));
        first = false;
    }
    // With augmentation the teacher runs on every batch (no cache).
    const CliResult aug = run_cli("distill " + common() + " --teacher " + teacher + " --method dto --augment --out " +
                                  quoted(path("d-aug")));
    ASSERT_EQ(aug.code, 0) << aug.output;
    expect_complete_run(path("d-aug"), "dto");
}

TEST_F(DtokdCli, ExistingRunIsNeverOverwritten) {
    ASSERT_TRAINED();
    const auto before = snapshot(path("t"));
    ASSERT_FALSE(before.empty());
    const CliResult r = run_cli("train " + common() + " --out " + quoted(path("t")));
    expect_one_error(r, {path("t"), "already exists"});
    EXPECT_EQ(snapshot(path("t")), before);
    EXPECT_FALSE(fs::exists(path("t.partial")));
}

TEST_F(DtokdCli, OutWithTrailingSlashIsTheSameRun) {
    // Shell completion writes `--out runs/x/`: the run is runs/x, its cache beside it.
    ScratchDir dir("clislash");
    const CliResult r = run_cli("train " + common() + " --out " + quoted(dir / "x/"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(files_under(dir.path()), (std::vector<std::string>{"x", "x/checkpoint.pt", "x/config.toml",
                                                                  "x/metrics.jsonl", "x/summary.json"}));
    expect_one_error(run_cli("train " + common() + " --out " + quoted(dir / "x/")), {"already exists"});
}

TEST_F(DtokdCli, ConfigFileIsHonouredAndFlagsOverrideIt) {
    ScratchDir dir("clicfg");
    {
        std::ofstream f(dir / "f.toml");
        f << "# a run config\nepochs = 1\nlr = 0.01\n";
    }
    const std::string base = "train " + data_args() + " --model cnn_small --max-steps 2 --batch-size 32 --no-progress" +
                             " --config " + quoted(dir / "f.toml");
    const CliResult from_file = run_cli(base + " --out " + quoted(dir / "a"));
    ASSERT_EQ(from_file.code, 0) << from_file.output;
    const std::string resolved = slurp(dir / "a/config.toml");
    EXPECT_TRUE(std::regex_search(resolved, std::regex(R"((^|\n)lr\s*=\s*0\.01\s*(\n|$))"))) << resolved;
    EXPECT_TRUE(std::regex_search(resolved, std::regex(R"((^|\n)epochs\s*=\s*1\s*(\n|$))"))) << resolved;

    const CliResult flag = run_cli(base + " --lr 0.02 --out " + quoted(dir / "b"));
    ASSERT_EQ(flag.code, 0) << flag.output;
    const std::string overridden = slurp(dir / "b/config.toml");
    EXPECT_TRUE(std::regex_search(overridden, std::regex(R"((^|\n)lr\s*=\s*0\.02\s*(\n|$))"))) << overridden;
    EXPECT_FALSE(std::regex_search(overridden, std::regex(R"((^|\n)lr\s*=\s*0\.01)"))) << overridden;
    EXPECT_TRUE(std::regex_search(overridden, std::regex(R"((^|\n)epochs\s*=\s*1\s*(\n|$))"))) << overridden;

    // The resolved config is itself a valid config file that reproduces the run's options.
    const CliResult again = run_cli("train --config " + quoted(dir / "b/config.toml") + " --out " + quoted(dir / "c"));
    ASSERT_EQ(again.code, 0) << again.output;
    std::string expected = overridden;
    const std::string b_dir = dir / "b", c_dir = dir / "c";
    ASSERT_NE(expected.find(b_dir), std::string::npos) << expected;
    expected.replace(expected.find(b_dir), b_dir.size(), c_dir);  // only --out differs
    EXPECT_EQ(slurp(c_dir + "/config.toml"), expected);
}

// config.toml records every option of the subcommand (one writer, config_toml.cpp), so a
// run read back with --config or --resume is the same run.
TEST_F(DtokdCli, TheResolvedConfigHasEveryOption) {
    ASSERT_TRAINED();
    const std::string out = path("every-option");
    const CliResult r = run_cli("distill " + common() + " --teacher " + quoted(path("t/checkpoint.pt")) +
                                " --method sum --objectives kd,ce --weights 0.9,0.1 --cache-dir " +
                                quoted(path("cache2")) + " --out " + quoted(out));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::string config = slurp(out + "/config.toml");
    const CliResult help = run_cli("distill --help");
    ASSERT_EQ(help.code, 0) << help.output;
    std::set<std::string> options;
    const std::regex long_option(R"(--([a-z][a-z0-9-]+))");
    for (auto it = std::sregex_iterator(help.output.begin(), help.output.end(), long_option);
         it != std::sregex_iterator(); ++it)
        options.insert((*it)[1]);
    // Negations of flags (--no-progress) name the same key; --help/--config/--resume are not options of a run.
    for (const char *skip : {"help", "config", "resume"}) options.erase(skip);
    // Written only where they apply (omitted, they read back as their defaults, and runs
    // of older versions still resume): the image-folder options for --dataset folder
    // (FolderCli.ItsConfigRecordsEveryFolderOption), --train-fraction below 1.
    for (const char *only_when_used : {"image-size", "channels", "center-crop-fraction", "min-crop-scale", "mean", "std",
                                       "skip-bad-images", "train-fraction", "subset-seed"})
        EXPECT_EQ(options.erase(only_when_used), 1u) << only_when_used << " is not an option any more";
    options.erase("no-skip-bad-images");
    ASSERT_GT(options.size(), 40u) << help.output;
    for (const std::string &o : options) {
        if (o.rfind("no-", 0) == 0 && options.count(o.substr(3))) continue;
        EXPECT_TRUE(std::regex_search(config, std::regex("(^|\n)" + o + " = "))) << o << " is not in:\n" << config;
    }
}

TEST_F(DtokdCli, BadConfigFilesFailNamingTheKey) {
    ScratchDir dir("clibadcfg");
    const std::string base = "train " + common() + " --config ";
    {
        std::ofstream f(dir / "unknown.toml");
        f << "epochs = 1\nnope = 1\n";
    }
    const CliResult unknown = run_cli(base + quoted(dir / "unknown.toml") + " --out " + quoted(dir / "u"));
    expect_one_error(unknown, {dir / "unknown.toml", "unknown key 'nope'"});
    EXPECT_FALSE(fs::exists(dir / "u"));
    {
        std::ofstream f(dir / "type.toml");
        f << "epochs = \"many\"\n";
    }
    const std::string no_epochs_flag = "train " + data_args() + " --model cnn_small --max-steps 3 --no-progress";
    const CliResult type = run_cli(no_epochs_flag + " --config " + quoted(dir / "type.toml") + " --out " +
                                   quoted(dir / "w"));
    expect_one_error(type, {dir / "type.toml", "'epochs'", "integer"});
    EXPECT_FALSE(fs::exists(dir / "w"));
    {
        std::ofstream f(dir / "syntax.toml");
        f << "epochs = = 1\n";
    }
    const CliResult syntax = run_cli(base + quoted(dir / "syntax.toml") + " --out " + quoted(dir / "s"));
    expect_one_error(syntax, {dir / "syntax.toml", "line 1"});
    EXPECT_FALSE(fs::exists(dir / "s"));

    const CliResult missing = run_cli(base + quoted(dir / "absent.toml") + " --out " + quoted(dir / "m"));
    expect_one_error(missing, {dir / "absent.toml"});
    EXPECT_FALSE(fs::exists(dir / "m"));
}

TEST_F(DtokdCli, UnknownModelListsTheKnownOnes) {
    const CliResult r = run_cli("train " + data_args() + " --model nope_net --max-steps 1 --no-progress --out " +
                                quoted(path("nope")));
    expect_one_error(r, {"nope_net", "cnn_small", "cnn_large", "resnet8"});
    EXPECT_FALSE(fs::exists(path("nope")));
    EXPECT_FALSE(fs::exists(path("nope.partial")));
}

TEST_F(DtokdCli, MissingDataFolderIsNamed) {
    const std::string absent = path("no-such-data");
    const CliResult r = run_cli("train --dataset mnist --data " + quoted(absent) +
                                " --model cnn_small --max-steps 1 --no-progress --out " + quoted(path("nodata")));
    expect_one_error(r, {absent, "not found"});
    EXPECT_FALSE(fs::exists(path("nodata")));
    EXPECT_FALSE(fs::exists(path("nodata.partial")));
}

// The checkpoint cannot be written (the file-size limit fails write() as a full disk
// does): one error naming the file, exit 1 (not an abort), no temp file left behind.
TEST_F(DtokdCli, AFailedCheckpointWriteIsOneError) {
    const std::string out = path("full");
    const CliResult r = run_cli("train " + data_args() + " --model cnn_large --epochs 1 --max-steps 2 --batch-size 32 "
                                "--no-progress --out " + quoted(out),
                                "ulimit -f 64 && ");  // 64 blocks of 512 bytes: less than the checkpoint
    expect_one_error(r, {out + ".partial/checkpoint.pt", "write failed"});
    EXPECT_EQ(r.code, 1) << r.output;
    for (const std::string &f : files_under(out + ".partial"))
        EXPECT_EQ(f.find(".tmp."), std::string::npos) << f;
    EXPECT_FALSE(fs::exists(out));
}

// A second process with the same --out while the first is writing that run: one error
// naming the folder; the first run goes on and completes.
TEST_F(DtokdCli, ASecondRunWithTheSameOutIsRefused) {
    const std::string out = path("busy");
    const std::string args = "train " + data_args() + " --model cnn_small --epochs 12 --batch-size 32 --no-progress";
    FILE *first = ::popen((std::string(DTOKD_CLI) + " " + args + " --out " + quoted(out) + " 2>&1").c_str(), "r");
    ASSERT_NE(first, nullptr);
    for (int i = 0; i < 1200 && !fs::exists(out + ".partial/config.toml"); i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::exists(out + ".partial/config.toml"));
    expect_one_error(run_cli(args + " --out " + quoted(out)), {out + ".partial", "another dtokd process"});
    std::string first_output;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, first)) first_output.append(buf, n);
    const int status = ::pclose(first);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << first_output;
    EXPECT_TRUE(fs::is_regular_file(out + "/summary.json")) << first_output;
    EXPECT_FALSE(fs::exists(out + ".partial"));
}

// An interrupted run's .partial is never deleted: the next run with that --out says how to go on.
TEST_F(DtokdCli, AStalePartialIsKept) {
    const std::string out = path("stale");
    fs::create_directories(out + ".partial");
    write_bytes(out + ".partial/checkpoint.pt", Bytes(100, 'x'));
    expect_one_error(run_cli("train " + common() + " --out " + quoted(out)), {out + ".partial", "interrupted", "rm -r"});
    EXPECT_EQ(read_bytes(out + ".partial/checkpoint.pt").size(), 100u);
}

// --device: cpu is the default and changes nothing; a device this build cannot use, or
// an unknown one, is one error before anything is written.
TEST_F(DtokdCli, DeviceCpuIsTheDefaultRun) {
    ASSERT_TRAINED();
    const CliResult r = run_cli("--device cpu train " + common() + " --out " + quoted(path("oncpu")));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(train_lines_without_timing(slurp(path("oncpu/metrics.jsonl"))),
              train_lines_without_timing(slurp(path("t/metrics.jsonl"))));
    EXPECT_TRUE(contains(slurp(path("oncpu/summary.json")), "\"device\":\"cpu\"")) << slurp(path("oncpu/summary.json"));
    EXPECT_EQ(dtokd::read_checkpoint_meta(path("oncpu/checkpoint.pt")).device, "cpu");
    for (const auto &[key, t] : dtokd::read_checkpoint_entries(path("oncpu/checkpoint.pt"), "loop/"))
        EXPECT_NE(key, "device_rng") << "a CPU run keeps no device generator state";
}

// A run whose checkpoint a GPU wrote (meta device cuda:0, every storage tagged cuda:0, as
// a CUDA LibTorch saves them) resumes on this CPU-only build and says so in its summary.
TEST_F(DtokdCli, ARunCheckpointedOnAGpuResumesOnTheCpu) {
    ASSERT_TRAINED();
    const fs::path run = path("from_gpu");
    fs::copy(path("t"), run, fs::copy_options::recursive);
    const std::string ckpt = run / "checkpoint.pt";
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::CheckpointEntries state;
    dtokd::CheckpointMeta meta = dtokd::load_checkpoint(ckpt, *model, &state);
    EXPECT_EQ(meta.device, "cpu");
    meta.device = "cuda:0";
    dtokd::save_checkpoint(ckpt, *model, meta, state);
    const Bytes file = read_bytes(ckpt);
    const std::string tagged = dtokd::frame_checkpoint_payload(
        retag_archive_to_cuda(std::string(file.begin() + 24, file.end())));  // after the 24-byte frame
    write_bytes(ckpt, Bytes(tagged.begin(), tagged.end()));
    ASSERT_EQ(dtokd::read_checkpoint_meta(ckpt).device, "cuda:0");
    const CliResult r = run_cli("--device cpu train --resume " + quoted(run.string()) + " --epochs 2 --max-steps 6");
    ASSERT_EQ(r.code, 0) << r.output;
    const std::string summary = slurp(run / "summary.json");
    EXPECT_TRUE(contains(summary, "\"device\":\"cpu\"")) << summary;
    EXPECT_TRUE(contains(summary, "\"resumed_from_device\":\"cuda:0\"")) << summary;
    EXPECT_TRUE(contains(summary, "\"epochs\":2")) << summary;
}

TEST_F(DtokdCli, AnUnusableDeviceIsOneError) {
    const CliResult unknown = run_cli("--device gpu train " + common() + " --out " + quoted(path("gpu")));
    expect_one_error(unknown, {"--device: device 'gpu' is unknown; expected cpu, cuda or cuda:N"});
    EXPECT_FALSE(fs::exists(path("gpu")));
    const CliResult cuda = run_cli("--device cuda distill " + common() + " --method ce --out " + quoted(path("cuda")));
    if (dtokd::torch_built_with_cuda() && !dtokd::visible_gpus().empty()) GTEST_SKIP() << "this build and machine have a GPU";
    expect_one_error(cuda, {"--device: device 'cuda:0': "});
    EXPECT_TRUE(contains(cuda.output, dtokd::torch_built_with_cuda() ? "no CUDA GPU is visible"
                                                                      : "built against a LibTorch without CUDA"))
        << cuda.output;
    EXPECT_FALSE(fs::exists(path("cuda")));
    EXPECT_FALSE(fs::exists(path("cuda.partial")));
    // info and the other CPU-side commands still run.
    EXPECT_EQ(run_cli("--device cuda info").code, 0);
}

TEST_F(DtokdCli, DistillNeedsATeacher) {
    const CliResult r = run_cli("distill " + common() + " --method kd --out " + quoted(path("noteacher")));
    expect_one_error(r, {"kd", "--teacher"});
    EXPECT_FALSE(fs::exists(path("noteacher")));
}

// `dtokd eval` against an independent reference: the checkpoint loaded into a fresh zoo
// model, 1000 test images normalized by hand with MNIST's constants, labels chosen so the
// right model scores exactly 0.7 (its own predictions for 700 images, another class for
// 300); a wrong model or a wrong preprocessing would land near chance (0.1).
TEST_F(DtokdCli, EvalMatchesAnIndependentReference) {
    ASSERT_TRAINED();
    const int n = 1000;
    IdxSplit test = random_idx_split(n, 28, 28, 10, 77);
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::load_checkpoint(path("t/checkpoint.pt"), *model);
    model->eval();
    torch::Tensor x = torch::empty({n, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); i++)
        x.view(-1)[i] = (double(uint8_t(test.pixels[size_t(i)])) / 255.0 - 0.1307) / 0.3081;
    torch::Tensor pred;
    {
        torch::NoGradGuard no_grad;
        pred = model->forward(x).argmax(1);
    }
    for (int i = 0; i < n; i++) {
        const int p = int(pred[i].item<int64_t>());
        test.labels[size_t(i)] = char(i < 700 ? p : (p + 1) % 10);
    }
    const std::string dir = path("eval-ref");
    fs::create_directories(dir);
    write_idx_dataset(dir, test, test, 28, 28, /*gz=*/false);
    const CliResult r = run_cli("eval " + quoted(path("t/checkpoint.pt")) + " --dataset mnist --data " + quoted(dir));
    ASSERT_EQ(r.code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(test accuracy ([0-9.eE+-]+))"))) << r.output;
    EXPECT_NEAR(std::stod(m[1]), 0.7, 1e-9) << r.output;
}

TEST_F(DtokdCli, EvalPrintsTestAccuracy) {
    ASSERT_TRAINED();
    const CliResult r = run_cli("eval " + quoted(path("t/checkpoint.pt")) + " " + data_args());
    ASSERT_EQ(r.code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(test accuracy ([0-9.eE+-]+))"))) << r.output;
    const double acc = std::stod(m[1]);
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
    // The same number the run recorded for its last epoch.
    std::smatch s;
    const std::string summary = slurp(path("t/summary.json"));
    ASSERT_TRUE(std::regex_search(summary, s, std::regex(R"("final_test_accuracy":([0-9.eE+-]+))"))) << summary;
    EXPECT_NEAR(acc, std::stod(s[1]), 1e-5);

    expect_one_error(run_cli("eval " + quoted(path("absent.pt")) + " " + data_args()),
                     {path("absent.pt"), "not found"});
}

// `dtokd info` says how malloc is set up, and DTOKD_MALLOC=default turns the tuning off.
TEST(DtokdCliInfo, ReportsTheHostAllocatorSetting) {
    const CliResult tuned = run_cli("info");
    ASSERT_EQ(tuned.code, 0) << tuned.output;
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr && std::getenv("DTOKD_MALLOC") == nullptr) {
        // Under AddressSanitizer its allocator stands in for glibc's and refuses mallopt.
        const std::string expected = dtokd_test::kAddressSanitizer
                                         ? "host allocator: glibc defaults (mallopt refused the thresholds)"
                                         : "host allocator: glibc mmap threshold 256 MiB";
        EXPECT_NE(tuned.output.find(expected), std::string::npos) << tuned.output;
    }
    const CliResult plain = run_cli("info", "DTOKD_MALLOC=default ");
    ASSERT_EQ(plain.code, 0) << plain.output;
    EXPECT_NE(plain.output.find("host allocator: glibc defaults (DTOKD_MALLOC=default)"), std::string::npos)
        << plain.output;
    // The GPU line: this build's LibTorch and the GPUs it sees.
    EXPECT_NE(tuned.output.find(dtokd::torch_built_with_cuda()
                                    ? "GPU: LibTorch with CUDA "
                                    : "GPU: none usable (this LibTorch was built without CUDA: --device cpu only)"),
              std::string::npos)
        << tuned.output;
    const CliResult bad = run_cli("info", "DTOKD_MALLOC=off ");
    EXPECT_NE(bad.code, 0) << bad.output;
    EXPECT_NE(bad.output.find("DTOKD_MALLOC is 'off'; expected 'default' or 'tuned'"), std::string::npos)
        << bad.output;
}

}  // namespace


// `sum` over --objectives kd,ce with --weights 0.9,0.1 is exactly `kd` (same losses,
// same weights, same per-step numbers), and metrics carry per-objective keys.
TEST_F(DtokdCli, SumOverObjectivesEqualsKd) {
    ASSERT_TRAINED();
    const std::string teacher = quoted(path("t/checkpoint.pt"));
    const std::string args = "distill " + common() + " --teacher " + teacher + " --log-interval 1 --no-teacher-cache";
    const CliResult kd = run_cli(args + " --method kd --out " + quoted(path("o-kd")));
    ASSERT_EQ(kd.code, 0) << kd.output;
    const CliResult sum =
        run_cli(args + " --method sum --objectives kd,ce --weights 0.9,0.1 --out " + quoted(path("o-sum")));
    ASSERT_EQ(sum.code, 0) << sum.output;
    const auto a = train_lines_without_timing(slurp(path("o-kd/metrics.jsonl")));
    const auto b = train_lines_without_timing(slurp(path("o-sum/metrics.jsonl")));
    ASSERT_EQ(a.size(), 3u);
    EXPECT_EQ(a, b);
    EXPECT_TRUE(contains(a[0], "\"pi_kd\":0.9")) << a[0];
    EXPECT_TRUE(contains(a[0], "\"loss_ce\":")) << a[0];
}

// Objective and weight mistakes: one clear error each, before any run folder exists.
TEST_F(DtokdCli, BadObjectivesFailBeforeTheRun) {
    ASSERT_TRAINED();
    const std::string base = "distill " + common() + " --teacher " + quoted(path("t/checkpoint.pt"));
    struct Case {
        std::string args;
        std::vector<std::string> words;
    };
    const std::vector<Case> cases = {
        {"--method dto --objectives kd,cee", {"'cee'", "expected one of", "fitnet"}},
        {"--method dto --objectives kd,kd", {"'kd'", "twice"}},
        {"--method dto-logit --objectives kd,ce,fitnet", {"dto-logit", "'fitnet'", "logits"}},
        {"--method dto --objectives kd,ce --weights 0.5,0.5", {"--weights", "dto"}},
        {"--method sum --objectives kd,ce --weights 1", {"--weights", "1 values", "2 objectives"}},
        {"--method kd --objectives kd,ce,fitnet", {"--method kd", "--weights"}},
        {"--method ce --objectives kd,ce", {"'ce'", "--method sum"}},
        {"--method dto-amortized --dto-reeval-every 0", {"dto-reeval-every", ">= 1"}},
    };
    int i = 0;
    for (const Case &c : cases) {
        SCOPED_TRACE(c.args);
        const std::string out = path("bad-objectives-" + std::to_string(i++));
        expect_one_error(run_cli(base + " " + c.args + " --out " + quoted(out)), c.words);
        EXPECT_FALSE(fs::exists(out));
        EXPECT_FALSE(fs::exists(out + ".partial"));
    }
}

// Methods combined as a user would: CE + KD + DKD's two terms as four objectives, under
// each DTO policy (dto-logit too: all four are functions of the student logits).
TEST_F(DtokdCli, CombinesMethodsUnderEveryDtoPolicy) {
    ASSERT_TRAINED();
    for (const std::string method : {"dto", "dto-amortized", "dto-logit"}) {
        SCOPED_TRACE(method);
        const std::string out = path("combined-" + method);
        const CliResult r = run_cli("distill " + common() + " --teacher " + quoted(path("t/checkpoint.pt")) +
                                    " --method " + method + " --objectives ce,kd,dkd_tckd,dkd_nckd --out " +
                                    quoted(out));
        ASSERT_EQ(r.code, 0) << r.output;
        expect_complete_run(out, method);
        const std::string metrics = slurp(out + "/metrics.jsonl");
        for (const char *name : {"ce", "kd", "dkd_tckd", "dkd_nckd"}) {
            std::smatch m;
            ASSERT_TRUE(std::regex_search(metrics, m, std::regex(std::string("\"pi_") + name + "\":([0-9.eE+-]+)")))
                << name << " in " << metrics;
            EXPECT_GE(std::stod(m[1]), 0.0);
            EXPECT_LE(std::stod(m[1]), 1.0);
            EXPECT_TRUE(std::regex_search(metrics, std::regex(std::string("\"loss_") + name + "\":[0-9]")))
                << name << " in " << metrics;
        }
        EXPECT_TRUE(contains(slurp(out + "/summary.json"), "\"skipped_steps\":0"));
    }
}

// Three objectives with a feature loss under exact DTO and under fixed weights: the
// run completes, logs pi per objective, and stores fitnet's regressor in the checkpoint.
TEST_F(DtokdCli, DistillsWithAFeatureObjective) {
    ASSERT_TRAINED();
    const std::string teacher = quoted(path("t/checkpoint.pt"));
    for (const std::string method : {"dto", "dto-amortized", "sum"}) {
        SCOPED_TRACE(method);
        const std::string out = path("f-" + method);
        const CliResult r = run_cli("distill " + common() + " --teacher " + teacher + " --method " + method +
                                    " --objectives kd,ce,fitnet --out " + quoted(out));
        ASSERT_EQ(r.code, 0) << r.output;
        expect_complete_run(out, method);
        const std::string metrics = slurp(out + "/metrics.jsonl");
        for (const char *key : {"\"pi_kd\":", "\"pi_ce\":", "\"pi_fitnet\":", "\"loss_fitnet\":"})
            EXPECT_TRUE(contains(metrics, key)) << key << " in " << metrics;
        // The regressor's weights are in the checkpoint (LibTorch archives keep key names in plain text).
        EXPECT_TRUE(contains(slurp(out + "/checkpoint.pt"), "objective/fitnet.conv.weight"));
    }
}
