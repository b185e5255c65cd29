// Smoke test of every config in pipelines/configs/: for each CIFAR-100 pair of the seed's
// table, its teacher is trained for two steps and every method's config (fixed-weight
// baseline, dto, dto over split terms) distills its student for two steps on small
// CIFAR-100 files in the real binary format (written here), through the dtokd CLI,
// overriding only data, output, step count, batch size and CRD's negatives (the tiny
// set has fewer samples than the reference's 16384). Checks the finished run folders.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>
#include <tuple>
#include <vector>

#include "checkpoint.h"
#include "cli_runner.h"
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

using dtokd_test::run_cli;

// CIFAR-100 binary records: coarse label, fine label, 3072 pixels.
void write_cifar100(const fs::path &file, int records, uint32_t seed) {
    std::mt19937 rng(seed);
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < records; i++) {
        out.put(char(rng() % 20));
        out.put(char(i % 100));
        for (int p = 0; p < 3072; p++) out.put(char(rng() % 256));
    }
}

class ConfigSmoke : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dtokd_config_smoke_" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "data");
        write_cifar100(dir_ / "data" / "train.bin", 48, 1);
        write_cifar100(dir_ / "data" / "test.bin", 100, 2);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    // Trains `teacher` once per suite with the teacher config; returns its checkpoint.
    static std::string teacher(const std::string &model) {
        const fs::path out = dir_ / ("teacher_" + model);
        if (!fs::exists(out)) {
            const dtokd_test::CliResult r = run_cli("train --config " + config("cifar100_teacher.toml") + " --model " +
                                            model + " --data " + (dir_ / "data").string() +
                                            " --max-steps 2 --batch-size 8 --no-progress --out " + out.string());
            EXPECT_EQ(r.code, 0) << r.output;
        }
        return (out / "checkpoint.pt").string();
    }
    static std::string config(const std::string &name) {
        return (fs::path(DTOKD_SOURCE_DIR) / "pipelines" / "configs" / name).string();
    }
    static fs::path dir_;
};
fs::path ConfigSmoke::dir_;

// The seed's CIFAR-100 table: folder under pipelines/configs/cifar100/ -> its teacher.
const std::map<std::string, std::string> kPairs = {
    {"resnet56_resnet20", "resnet56"},     {"wrn_40_2_wrn_40_1", "wrn_40_2"},     {"resnet32x4_resnet8x4", "resnet32x4"},
    {"resnet50_mobile_half", "resnet50"},  {"resnet32x4_shufflev1", "resnet32x4"}, {"resnet32x4_shufflev2", "resnet32x4"}};
// Every method has a baseline and a dto config; the multi-term ones also split their terms.
const std::vector<std::string> kMethods = {"kd", "dkd", "dist", "fitnet", "at", "rkd", "pkt", "ofd", "crd", "reviewkd"};
const std::vector<std::string> kSplit = {"dkd", "dist", "rkd"};
// Objectives that own trainable modules (saved in the checkpoint as objective/<name>.*).
const std::vector<std::string> kWithModules = {"fitnet", "ofd", "crd", "reviewkd"};

std::string slurp(const fs::path &p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Every value of "<key>" in `text` (null, as JSON writes a non-finite number, is NaN).
std::vector<double> values_of(const std::string &text, const std::string &key) {
    std::vector<double> out;
    const std::regex re("\"" + key + "\":(-?[0-9.eE+-]+|null)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
        const std::string v = (*it)[1];
        out.push_back(v == "null" ? NAN : std::strtod(v.c_str(), nullptr));
    }
    return out;
}

// The names in the config's `objectives = [...]` line.
std::vector<std::string> objectives_of(const std::string &config) {
    std::smatch line;
    std::vector<std::string> out;
    if (!std::regex_search(config, line, std::regex("objectives = \\[([^\\]]*)\\]"))) return out;
    const std::string list = line[1];
    const std::regex name("\"([a-z_]+)\"");
    for (auto it = std::sregex_iterator(list.begin(), list.end(), name); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

double number_after(const std::string &text, const std::string &key) {
    const size_t at = text.find(key);
    return at == std::string::npos ? NAN : std::strtod(text.c_str() + at + key.size(), nullptr);
}

TEST_F(ConfigSmoke, TheCifar100TableIsComplete) {
    std::set<std::string> folders;
    for (const auto &e : fs::directory_iterator(fs::path(DTOKD_SOURCE_DIR) / "pipelines/configs/cifar100"))
        if (e.is_directory()) folders.insert(e.path().filename().string());
    std::set<std::string> expected;
    for (const auto &[pair, t] : kPairs) expected.insert(pair);
    EXPECT_EQ(folders, expected);
    for (const std::string &pair : folders)
        for (const std::string &m : kMethods) {
            std::vector<std::string> files = {m + ".toml", m + "_dto.toml"};
            if (std::find(kSplit.begin(), kSplit.end(), m) != kSplit.end()) files.push_back(m + "_dto_split.toml");
            for (const std::string &f : files)
                EXPECT_TRUE(fs::exists(fs::path(DTOKD_SOURCE_DIR) / "pipelines/configs/cifar100" / pair / f))
                    << pair << "/" << f;
        }
}

// (pair folder, the baselines or the dto configs): two ctest cases per pair, so that ctest -j
// spreads the pair's ~23 runs.
class PairConfigs : public ConfigSmoke,
                    public ::testing::WithParamInterface<std::tuple<std::string, bool>> {};

// Each config of the pair distills a few steps: finite losses, pi in [0, 1], no skipped
// step, the objectives' modules in the checkpoint, and `dtokd eval` of that checkpoint
// reports the accuracy the run reported.
TEST_P(PairConfigs, EveryConfigDistillsAFewSteps) {
    const auto [pair, dto_configs] = GetParam();
    const std::string t = teacher(kPairs.at(pair));
    ASSERT_TRUE(fs::exists(t));
    int runs = 0;
    for (const auto &entry : fs::directory_iterator(fs::path(DTOKD_SOURCE_DIR) / "pipelines/configs/cifar100" / pair)) {
        const std::string file = entry.path().filename().string();
        if (entry.path().extension() != ".toml") continue;
        if ((file.find("_dto") != std::string::npos) != dto_configs) continue;
        SCOPED_TRACE(pair + "/" + file);
        runs++;
        const fs::path out = dir_ / (pair + "_" + file);
        const dtokd_test::CliResult r = run_cli("distill --config " + entry.path().string() + " --data " +
                                        (dir_ / "data").string() + " --teacher " + t +
                                        " --max-steps 2 --batch-size 8 --crd-negatives 8 --log-interval 1"
                                        " --no-progress --out " + out.string());
        ASSERT_EQ(r.code, 0) << r.output;
        const std::string config = slurp(entry.path()), resolved = slurp(out / "config.toml");
        const std::string metrics = slurp(out / "metrics.jsonl"), summary = slurp(out / "summary.json");
        EXPECT_NE(resolved.find("dataset = \"cifar100\""), std::string::npos) << resolved;
        EXPECT_NE(resolved.find("milestones = [ 150, 180, 210 ]"), std::string::npos) << resolved;
        // Every objective's loss finite on every logged step; pi in [0, 1] under dto, the fixed weight under sum.
        const bool dto = config.find("method = \"dto\"") != std::string::npos;
        const std::vector<std::string> objectives = objectives_of(config);
        EXPECT_GE(objectives.size(), 2u) << config;
        for (const std::string &name : objectives) {
            const std::vector<double> losses = values_of(metrics, "loss_" + name), pis = values_of(metrics, "pi_" + name);
            EXPECT_EQ(losses.size(), 2u) << name << " in " << metrics;  // --log-interval 1, two steps
            EXPECT_EQ(pis.size(), 2u) << name;
            for (double v : losses) EXPECT_TRUE(std::isfinite(v)) << "loss_" << name << " in " << metrics;
            for (double v : pis) {
                EXPECT_GE(v, 0) << "pi_" << name;
                if (dto) {
                    EXPECT_LE(v, 1.0) << "pi_" << name;
                }
            }
        }
        EXPECT_EQ(number_after(summary, "\"skipped_steps\":"), 0) << summary;
        // The modules of the objectives that own one are in the checkpoint.
        const auto state = dtokd::read_objective_state((out / "checkpoint.pt").string());
        for (const std::string &m : kWithModules) {
            if (config.find("\"" + m + "\"") == std::string::npos) continue;
            const bool saved = std::any_of(state.begin(), state.end(), [&](const auto &entry) {
                return entry.first.rfind(m + ".", 0) == 0;
            });
            EXPECT_TRUE(saved) << m << "'s module is not in the checkpoint";
        }
        const dtokd_test::CliResult e = run_cli("eval " + (out / "checkpoint.pt").string() + " --dataset cifar100 --data " +
                                        (dir_ / "data").string());
        ASSERT_EQ(e.code, 0) << e.output;
        EXPECT_NEAR(number_after(e.output, "test accuracy "), number_after(summary, "\"final_test_accuracy\":"), 1e-6)
            << e.output << summary;
    }
    EXPECT_EQ(runs, int(dto_configs ? kMethods.size() + kSplit.size() : kMethods.size()));
}

INSTANTIATE_TEST_SUITE_P(Cifar100, PairConfigs,
                         ::testing::Combine(::testing::Values("resnet56_resnet20", "wrn_40_2_wrn_40_1",
                                                              "resnet32x4_resnet8x4", "resnet50_mobile_half",
                                                              "resnet32x4_shufflev1", "resnet32x4_shufflev2"),
                                            ::testing::Bool()));

TEST_F(ConfigSmoke, FashionMnistConfigIsTheDefaultDistillation) {
    // The config parses and names a method, student and teacher the CLI accepts:
    // with a missing teacher the run must fail on the teacher path, not on a key.
    const dtokd_test::CliResult r = run_cli("distill --config " + config("fashion_mnist.toml") + " --teacher " +
                                    (dir_ / "absent.pt").string() + " --out " + (dir_ / "fm").string());
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.output.find("absent.pt: teacher file not found"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "fm"));
}

}  // namespace
