// `dtokd export` (pipelines/export_command.h): a student's state_dict file that PyTorch
// (Debian's python3-torch, /usr/bin/python3) reads with torch.load and loads with
// load_state_dict(strict=True) into the zoo's PyTorch definitions (models/pytorch/
// dtokd_zoo.py, the copy built beside dtokd), with every tensor bit-equal to the checkpoint's
// and eval logits equal to dtokd's within 1e-5; the TorchScript export likewise. One run goes
// through `dtokd train`; the zoo models export checkpoints written by save_checkpoint. Bad
// inputs are one error naming the thing, exit 1, and leave no file. Skips without python3-torch.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "cli_runner.h"
#include "export_command.h"
#include "model_factory.h"
#include "scratch_data.h"
#include "torch_reference.h"

namespace {

using namespace dtokd_test;

constexpr double kLogitTolerance = 1e-5;

std::string zoo_module() { return (fs::path(DTOKD_CLI).parent_path() / "dtokd_zoo.py").string(); }

struct Student {
    std::string name;
    int64_t in_channels, size, classes;
};

// Runs tests/python/export_check.py on `state_dict` (and `torchscript`, "" for none).
TensorDict pytorch_side(const Student &s, const std::string &state_dict, const std::string &torchscript,
                        const torch::Tensor &x) {
    return run_python_tensor_dicts(std::string(kTorchPython) + " " + DTOKD_SOURCE_DIR +
                                       "/tests/python/export_check.py " + quoted(zoo_module()) + " " + s.name + " " +
                                       std::to_string(s.classes) + " " + std::to_string(s.in_channels) + " " +
                                       quoted(state_dict) + " " + (torchscript.empty() ? "-" : quoted(torchscript)),
                                   {{"x", x}});
}

double max_abs_diff(const torch::Tensor &a, const torch::Tensor &b) {
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Exports `run` (a run folder or `checkpoint` itself) in both formats, and checks in PyTorch: the state_dict holds exactly the
// model's parameters and buffers, bit-equal and of the same dtype, in PyTorch's own order, and
// both files give dtokd's eval logits on a fixed batch within kLogitTolerance.
void expect_pytorch_matches(const Student &s, const std::string &run, const std::string &checkpoint,
                            const ScratchDir &dir) {
    const std::string pth = dir / (s.name + ".pth"), ts = dir / (s.name + ".ts.pt");
    CliResult r = run_cli("export " + quoted(run) + " --out " + quoted(pth));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "wrote " + pth + ": pytorch " + s.name)) << r.output;
    r = run_cli("export " + quoted(run) + " --format torchscript --out " + quoted(ts));
    ASSERT_EQ(r.code, 0) << r.output;

    auto model = dtokd::make_model(s.name, int(s.in_channels), int(s.classes));
    dtokd::load_checkpoint(checkpoint, *model);
    model->eval();
    torch::manual_seed(7);
    const torch::Tensor x = torch::randn({4, s.in_channels, s.size, s.size});
    torch::Tensor logits;
    {
        torch::NoGradGuard no_grad;
        logits = model->forward(x);
    }
    const TensorDict py = pytorch_side(s, pth, ts, x);

    std::set<std::string> expected;
    auto expect_entry = [&](const std::string &key, const torch::Tensor &t) {
        expected.insert("sd/" + key);
        const auto it = py.find("sd/" + key);
        ASSERT_NE(it, py.end()) << s.name << ": " << key << " missing in PyTorch's state_dict";
        EXPECT_EQ(it->second.scalar_type(), t.scalar_type()) << s.name << ": " << key;
        EXPECT_TRUE(it->second.sizes() == t.sizes() && torch::equal(it->second, t)) << s.name << ": " << key;
    };
    for (const auto &p : model->named_parameters(true)) expect_entry(p.key(), p.value());
    for (const auto &b : model->named_buffers(true)) expect_entry(b.key(), b.value());
    for (const auto &[key, t] : py) {
        if (key.rfind("sd/", 0) == 0) {
            EXPECT_TRUE(expected.count(key)) << s.name << ": extra entry " << key;
        }
    }
    EXPECT_TRUE(py.at("same_order").item<bool>()) << s.name << ": keys not in PyTorch's state_dict order";

    const double d_pth = max_abs_diff(py.at("logits_pth"), logits), d_ts = max_abs_diff(py.at("logits_ts"), logits);
    EXPECT_LE(d_pth, kLogitTolerance) << s.name << " state_dict";
    EXPECT_LE(d_ts, kLogitTolerance) << s.name << " TorchScript";
    std::printf("[ export   ] %-12s max |logits PyTorch - dtokd|: state_dict %.3g, TorchScript %.3g (logits up to %.3g)\n",
                s.name.c_str(), d_pth, d_ts, logits.abs().max().item<double>());
}

class ExportZoo : public ::testing::TestWithParam<Student> {};

// A checkpoint written by save_checkpoint after a few train-mode batches (so the BN running
// statistics and num_batches_tracked are not their initial values and eval differs from train).
TEST_P(ExportZoo, StudentLoadsInPyTorchWithDtokdsLogits) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    const Student &s = GetParam();
    ScratchDir dir("export");
    torch::manual_seed(3);
    auto model = dtokd::make_model(s.name, int(s.in_channels), int(s.classes));
    {
        torch::NoGradGuard no_grad;
        model->train();
        for (int i = 0; i < 3; i++) model->forward(torch::randn({8, s.in_channels, s.size, s.size}) * 2 + 0.5);
    }
    dtokd::CheckpointMeta meta;
    meta.model_name = s.name;
    meta.num_classes = s.classes;
    meta.in_channels = s.in_channels;
    meta.height = meta.width = s.size;
    meta.optimizer_kind = "sgd";
    const std::string checkpoint = dir / "checkpoint.pt";
    dtokd::save_checkpoint(checkpoint, *model, meta);
    expect_pytorch_matches(s, checkpoint, checkpoint, dir);
}

// The five students of issue 14; the rest of the CIFAR zoo is ExportWholeZoo below.
INSTANTIATE_TEST_SUITE_P(Students, ExportZoo,
                         ::testing::Values(Student{"cnn_small", 1, 28, 10}, Student{"resnet8x4", 3, 32, 100},
                                           Student{"wrn_16_2", 3, 32, 100}, Student{"mobile_half", 3, 32, 100},
                                           Student{"shufflev2", 3, 32, 100}),
                         [](const auto &info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    WholeZoo, ExportZoo,
    ::testing::Values(Student{"cnn_large", 1, 28, 10}, Student{"resnet8", 3, 32, 10}, Student{"resnet14", 3, 32, 10},
                      Student{"resnet20", 3, 32, 10}, Student{"resnet32", 3, 32, 10}, Student{"resnet44", 3, 32, 10},
                      Student{"resnet56", 3, 32, 10}, Student{"resnet110", 3, 32, 10},
                      Student{"resnet32x4", 3, 32, 100}, Student{"wrn_16_1", 3, 32, 100},
                      Student{"wrn_40_1", 3, 32, 100}, Student{"wrn_40_2", 3, 32, 100}, Student{"vgg8", 3, 32, 100},
                      Student{"vgg11", 3, 32, 100}, Student{"vgg13", 3, 32, 100}, Student{"shufflev1", 3, 32, 100},
                      Student{"resnet50", 3, 32, 100}, Student{"resnet8x4", 1, 28, 10}),
    [](const auto &info) { return info.param.name + "_" + std::to_string(info.param.in_channels) + "ch"; });

// Every model make_model knows has a PyTorch definition in dtokd_zoo.py, and no other.
TEST(ExportCli, ZooModuleDefinesEveryZooModel) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    const std::string cmd = std::string(kTorchPython) + " -c \"import sys; sys.path.insert(0, '" +
                            fs::path(zoo_module()).parent_path().string() +
                            "'); import dtokd_zoo; print(','.join(dtokd_zoo.model_names()))\"";
    FILE *pipe = ::popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string names;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) names.append(buf, n);
    ASSERT_EQ(::pclose(pipe), 0) << names;
    std::string want;
    for (const std::string &n : dtokd::model_names()) want += (want.empty() ? "" : ",") + n;
    EXPECT_EQ(names, want + "\n");
}

// The real path: `dtokd train` writes RUN, and `dtokd export RUN` takes its final checkpoint.
TEST(ExportCli, TrainedRunExportsItsFinalStudent) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    ScratchDir dir("exportrun");
    fs::create_directories(dir / "data");
    write_idx_dataset(dir / "data", random_idx_split(96, 28, 28, 10, 51), random_idx_split(32, 28, 28, 10, 52), 28, 28,
                      /*gz=*/false);
    const CliResult r = run_cli("--threads 1 train --dataset mnist --data " + quoted(dir / "data") +
                                " --model cnn_small --epochs 2 --batch-size 32 --no-progress --out " +
                                quoted(dir / "run"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(dtokd::student_checkpoint(dir / "run/"), dir / "run/checkpoint.pt");
    EXPECT_EQ(dtokd::read_checkpoint_meta(dir / "run/checkpoint.pt").epoch, 2);
    expect_pytorch_matches(Student{"cnn_small", 1, 28, 10}, dir / "run", dir / "run/checkpoint.pt", dir);
}

// Each bad input: exit 1, one error line naming the thing, and nothing written (no --out,
// no temp or probe file beside it).
TEST(ExportCli, BadInputsAreOneErrorAndWriteNothing) {
    ScratchDir dir("exportbad");
    const std::string out = dir / "out/student.pth";
    fs::create_directories(dir / "out");
    fs::create_directories(dir / "notarun");
    auto model = dtokd::make_model("resnet8", 3, 10);
    dtokd::CheckpointMeta meta;
    meta.model_name = "resnet8";
    meta.num_classes = 10;
    meta.in_channels = 3;
    meta.height = meta.width = 32;
    fs::create_directories(dir / "run");
    dtokd::save_checkpoint(dir / "run/checkpoint.pt", *model, meta);
    fs::create_directories(dir / "unfinished.partial");
    fs::copy_file(dir / "run/checkpoint.pt", dir / "unfinished.partial/checkpoint.pt");
    meta.model_name = "resnet9";
    dtokd::save_checkpoint(dir / "unknown.pt", *model, meta);
    std::ofstream(dir / "junk.pt") << "not a checkpoint";

    auto expect_error = [&](const std::string &args, const std::string &message, const std::string &env = "") {
        const CliResult r = run_cli("export " + args, env);
        EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
        EXPECT_TRUE(contains(r.output, "dtokd: error: " + message)) << args << "\n" << r.output;
        EXPECT_EQ(count(r.output, "error"), 1) << r.output;
        EXPECT_TRUE(fs::is_empty(dir / "out")) << args;
    };
    const std::string to = " --out " + quoted(out);
    expect_error(quoted(dir / "missing") + to, dir / "missing" + ": no such run folder or checkpoint file");
    expect_error(quoted(dir / "notarun") + to, dir / "notarun" + ": no checkpoint.pt; expected a dtokd run folder");
    expect_error(quoted(dir / "unfinished") + to,
                 dir / "unfinished" + ": the run has not finished (" + dir / "unfinished.partial" +
                     "); to export its last checkpoint, name it: " + dir / "unfinished.partial/checkpoint.pt");
    expect_error(quoted(dir / "unknown.pt") + to, dir / "unknown.pt" + ": make_model: unknown model 'resnet9'");
    expect_error(quoted(dir / "junk.pt") + to, dir / "junk.pt" + ": unreadable checkpoint");
    expect_error(quoted(dir / "run") + " --out " + quoted(dir / "out/none/student.pth"),
                 dir / "out/none/student.pth: folder " + dir / "out/none" + " does not exist");
    expect_error(quoted(dir / "run") + " --out " + quoted(dir / "out"), dir / "out" + ": is a folder");
    expect_error(quoted(dir / "run") + " --out /sys/student.pth", "/sys/student.pth: cannot write there: ");
    // TorchScript without a python3, or without torch in it (-S: no site-packages).
    expect_error(quoted(dir / "run") + " --format torchscript" + to,
                 "export: --format torchscript needs python3 with torch: cannot run " + dir / "no-python3",
                 "DTOKD_PYTHON=" + quoted(dir / "no-python3") + " ");
    const std::string no_torch = dir / "python3-without-torch";
    std::ofstream(no_torch) << "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n";
    fs::permissions(no_torch, fs::perms::owner_all);
    expect_error(quoted(dir / "run") + " --format torchscript" + to,
                 "export: --format torchscript needs python3 with torch: " + no_torch + " cannot import torch",
                 "DTOKD_PYTHON=" + quoted(no_torch) + " ");
    const CliResult r = run_cli("export " + quoted(dir / "run") + " --format onnx" + to);
    EXPECT_NE(r.code, 0);
    EXPECT_TRUE(contains(r.output, "onnx not in {pytorch,torchscript}")) << r.output;
    EXPECT_TRUE(fs::is_empty(dir / "out"));
}

// An existing --out is refused (left as it was) unless --force, which replaces it whole.
TEST(ExportCli, ExistingOutIsRefusedUnlessForce) {
    ScratchDir dir("exportforce");
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::CheckpointMeta meta;
    meta.model_name = "cnn_small";
    meta.num_classes = 10;
    meta.in_channels = 1;
    meta.height = meta.width = 28;
    dtokd::save_checkpoint(dir / "checkpoint.pt", *model, meta);
    const std::string out = dir / "student.pth";
    std::ofstream(out) << "the user's file";
    CliResult r = run_cli("export " + quoted(dir / "checkpoint.pt") + " --out " + quoted(out));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "dtokd: error: " + out + ": exists; pass --force to replace it")) << r.output;
    EXPECT_EQ(slurp(out), "the user's file");
    r = run_cli("export " + quoted(dir / "checkpoint.pt") + " --force --out " + quoted(out));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::string bytes = slurp(out);
    const auto state = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
    EXPECT_EQ(state.size(), dtokd::pytorch_state_dict(*model).size());
    EXPECT_TRUE(torch::equal(state.at("fc.weight").toTensor(), model->named_parameters()["fc.weight"]));
    EXPECT_EQ(files_under(dir.path()), (std::vector<std::string>{"checkpoint.pt", "student.pth"}));
}

}  // namespace
