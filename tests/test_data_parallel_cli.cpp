// Data-parallel runs of the dtokd binary: `--nproc 2` and torchrun's launcher run a
// distillation to the end with rank 0 alone writing the run; a rank killed mid-run stops
// the other within the timeout with one error naming it, the last checkpoint intact and
// resumable; ranks started with other options or another world size are one error at
// start. (That R ranks take the step one process takes on the global batch is tested
// per policy in test_data_parallel.cpp.)
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <sstream>
#include <string>

#include "checkpoint.h"
#include "cli_runner.h"
#include "local_ranks.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;
using Clock = std::chrono::steady_clock;

// torchrun's variables for one rank of `world` on this machine.
std::string rank_env(int rank, int world, int port) {
    return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) + " WORLD_SIZE=" +
           std::to_string(world) + " LOCAL_WORLD_SIZE=" + std::to_string(world) +
           " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

class DataParallelCli : public ::testing::Test {
protected:
    // 256 training images, global batch 32: 8 steps per epoch.
    static void SetUpTestSuite() {
        root_ = new ScratchDir("dpcli");
        fs::create_directories(*root_ / "data");
        write_idx_dataset(*root_ / "data", random_idx_split(256, 28, 28, 10, 31), random_idx_split(64, 28, 28, 10, 32),
                          28, 28, /*gz=*/false);
        const CliResult r = run_cli("--threads 1 train --dataset mnist --data " + quoted(path("data")) +
                                    " --model cnn_small --epochs 1 --batch-size 32 --no-progress --out " +
                                    quoted(path("teacher")));
        ASSERT_EQ(r.code, 0) << r.output;
    }
    static void TearDownTestSuite() {
        delete root_;
        root_ = nullptr;
    }
    static std::string path(const std::string &name) { return *root_ / name; }
    static std::string distill(const std::string &method, const std::string &out) {
        return "distill --dataset mnist --data " + quoted(path("data")) + " --teacher " +
               quoted(path("teacher") + "/checkpoint.pt") + " --model cnn_small --epochs 2 --batch-size 32 " +
               "--log-interval 4 --no-progress --method " + method + " --out " + quoted(path(out));
    }
    static ScratchDir *root_;
};
ScratchDir *DataParallelCli::root_ = nullptr;

// A finished run: one summary (rank 0's), 16 steps of the global batch, healthy metrics.
void expect_finished(const std::string &run, const CliResult &r, int ranks) {
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(count(r.output, "\"ranks\":"), 1) << "only rank 0 reports:\n" << r.output;
    EXPECT_FALSE(fs::exists(run + ".partial"));
    const nlohmann::json summary = nlohmann::json::parse(slurp(run + "/summary.json"));
    EXPECT_EQ(summary["ranks"], ranks);
    EXPECT_EQ(summary["steps"], 16);
    EXPECT_EQ(summary["skipped_steps"], 0);
    EXPECT_GT(summary["final_test_accuracy"].get<double>(), 0.0);
    std::istringstream in(slurp(run + "/metrics.jsonl"));
    int train_lines = 0, epoch_lines = 0;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json j = nlohmann::json::parse(line);
        if (j["type"] == "epoch") epoch_lines++;
        if (j["type"] != "train") continue;
        train_lines++;
        EXPECT_EQ(j["skipped"], 0) << line;
        for (const auto &[k, v] : j.items()) {
            if (k.rfind("loss_", 0) == 0 && !v.is_null()) {
                EXPECT_TRUE(std::isfinite(v.get<double>())) << k;
            }
            if (k.rfind("pi_", 0) == 0) {
                EXPECT_GE(v.get<double>(), 0.0) << k;
                EXPECT_LE(v.get<double>(), 1.0) << k;
            }
        }
    }
    EXPECT_EQ(train_lines, 4);  // 8 steps per epoch, a line every 4
    EXPECT_EQ(epoch_lines, 2);
    EXPECT_EQ(dtokd::read_checkpoint_meta(run + "/checkpoint.pt").step, 16);
}

}  // namespace

TEST_F(DataParallelCli, NprocTwoRunsEveryPolicyToTheEnd) {
    for (const char *method : {"kd", "dto", "dto-amortized", "dto-logit"}) {
        SCOPED_TRACE(method);
        const std::string run = path(std::string("nproc-") + method);
        expect_finished(run, run_cli("--nproc 2 --threads 1 " + distill(method, std::string("nproc-") + method)), 2);
    }
}

// --no_python: dtokd is a binary. --redirects 1 --tee 1: Debian's torch 1.13 on Python 3.11
// cannot read the default "0" (its Std enum lookup misses the zero member).
TEST_F(DataParallelCli, TorchrunsLauncherRunsIt) {
    if (std::system("/usr/bin/python3 -c 'import torch.distributed.run' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "no python3-torch here (its torch.distributed.run is the launcher)";
    const std::string run = path("torchrun");
    const CliResult r = run_cli(distill("dto", "torchrun"), "DTOKD_THREADS=1 /usr/bin/python3 -m torch.distributed.run "
                                                            "--nproc_per_node 2 --no_python --redirects 1 --tee 1 "
                                                            "--master_port " +
                                                                std::to_string(dtokd::free_loopback_port()) + " ");
    expect_finished(run, r, 2);
}

// SIGKILL of rank 1 after step 6 (checkpoints every 4): the launcher names the rank, rank 0
// stops with an error naming itself well within its 20 s timeout, the step-4 checkpoint
// is intact, and --resume finishes the run.
TEST_F(DataParallelCli, AKilledRankStopsTheRunAndItResumes) {
    const std::string run = path("killed");
    const auto t0 = Clock::now();
    const CliResult r = run_cli("--nproc 2 --threads 1 --dist-timeout 20 " + distill("dto", "killed") +
                                    " --checkpoint-every 4",
                                "DTOKD_FAULT_KILL_AFTER_STEP=6 DTOKD_FAULT_KILL_RANK=1 ");
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("rank 1 of 2 was killed by signal"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("dtokd: error: rank 0 of 2:"), std::string::npos) << r.output;
    EXPECT_LT(seconds, 30.0) << r.output;
    EXPECT_EQ(dtokd::read_checkpoint_meta(run + ".partial/checkpoint.pt").step, 4);
    expect_finished(run, run_cli("--nproc 2 --threads 1 distill --resume " + quoted(run)), 2);
}

// One process can resume a run two ranks started (the global batch is the same).
TEST_F(DataParallelCli, ARunOfTwoRanksResumesInOneProcess) {
    const std::string run = path("two-then-one");
    const CliResult r = run_cli("--nproc 2 --threads 1 " + distill("dto-logit", "two-then-one") + " --max-steps 8");
    ASSERT_EQ(r.code, 0) << r.output;
    expect_finished(run, run_cli("--threads 1 distill --resume " + quoted(run) + " --max-steps 0"), 1);
}

TEST_F(DataParallelCli, RanksThatDisagreeAreOneErrorAtStart) {
    const int port = dtokd::free_loopback_port();
    // Rank 1 with another learning rate, in the background; rank 0 in front.
    const std::string rank1 = rank_env(1, 2, port) + DTOKD_CLI + " --threads 1 --dist-timeout 20 " +
                              distill("dto", "disagree") + " --lr 0.1 2>&1 & ";
    const CliResult r = run_cli("--threads 1 --dist-timeout 20 " + distill("dto", "disagree") + " --lr 0.05",
                                rank1 + rank_env(0, 2, port));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(count(r.output, "started with other options than rank"), 2) << "both ranks say so:\n" << r.output;
    EXPECT_NE(r.output.find("lr (0.1"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(path("disagree") + ".partial"));

    const int port2 = dtokd::free_loopback_port();
    const std::string other_world = rank_env(1, 3, port2) + DTOKD_CLI + " --threads 1 --dist-timeout 20 " +
                                    distill("dto", "world") + " 2>&1 & ";
    const CliResult w = run_cli("--threads 1 --dist-timeout 20 " + distill("dto", "world"),
                                other_world + rank_env(0, 2, port2));
    EXPECT_EQ(w.code, 1) << w.output;
    EXPECT_NE(w.output.find("was started with WORLD_SIZE 3; every rank needs the same world size"), std::string::npos)
        << w.output;
    EXPECT_NE(w.output.find("was started with WORLD_SIZE 2"), std::string::npos) << w.output;
}

TEST_F(DataParallelCli, NprocUnderTorchrunIsOneError) {
    const CliResult r = run_cli("--nproc 2 " + distill("dto", "both"), rank_env(0, 2, dtokd::free_loopback_port()));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.output.find("--nproc starts its own ranks, but RANK and WORLD_SIZE are set"), std::string::npos)
        << r.output;
}

// An --out that is taken fails every rank before the first collective: one error per
// rank at once, not a wait for the others' timeout.
TEST_F(DataParallelCli, ATakenOutFailsEveryRankAtOnce) {
    fs::create_directories(path("taken"));
    const auto t0 = Clock::now();
    const CliResult r = run_cli("--nproc 2 --threads 1 --dist-timeout 120 " + distill("dto", "taken"));
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(count(r.output, path("taken") + ": run directory already exists"), 2) << r.output;
    EXPECT_LT(seconds, 60.0) << "a rank waited for its 120 s timeout:\n" << r.output;
}
