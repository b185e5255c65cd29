// Smoke test of every config in pipelines/configs/: each CIFAR-100 pair trains its
// teacher and distills its student for a few steps on small CIFAR-100 files in the
// real binary format (written here), through the dtokd CLI, overriding only data,
// output, step count and batch size. Checks exit codes and the finished run folders.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

struct CommandResult {
    int status;
    std::string output;
};

CommandResult run_cli(const std::string &args) {
    const std::string cmd = std::string(DTOKD_CLI) + " " + args + " 2>&1";
    CommandResult r{0, ""};
    FILE *pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return {-1, "popen failed"};
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
    r.status = pclose(pipe);
    return r;
}

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
        write_cifar100(dir_ / "data" / "test.bin", 16, 2);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    // Trains `teacher` once per suite with the teacher config; returns its checkpoint.
    static std::string teacher(const std::string &model) {
        const fs::path out = dir_ / ("teacher_" + model);
        if (!fs::exists(out)) {
            const CommandResult r = run_cli("train --config " + config("cifar100_teacher.toml") + " --model " +
                                            model + " --data " + (dir_ / "data").string() +
                                            " --max-steps 2 --batch-size 8 --no-progress --out " + out.string());
            EXPECT_EQ(r.status, 0) << r.output;
        }
        return (out / "checkpoint.pt").string();
    }
    static std::string config(const std::string &name) {
        return (fs::path(DTOKD_SOURCE_DIR) / "pipelines" / "configs" / name).string();
    }
    static fs::path dir_;
};
fs::path ConfigSmoke::dir_;

TEST_F(ConfigSmoke, EveryCifar100PairConfigDistillsAFewSteps) {
    const std::map<std::string, std::string> pairs = {
        {"cifar100_resnet56_resnet20.toml", "resnet56"},      {"cifar100_wrn_40_2_wrn_40_1.toml", "wrn_40_2"},
        {"cifar100_resnet32x4_resnet8x4.toml", "resnet32x4"}, {"cifar100_resnet50_mobile_half.toml", "resnet50"},
        {"cifar100_resnet32x4_shufflev1.toml", "resnet32x4"}, {"cifar100_resnet32x4_shufflev2.toml", "resnet32x4"}};
    int found = 0;
    for (const auto &entry : fs::directory_iterator(fs::path(DTOKD_SOURCE_DIR) / "pipelines" / "configs"))
        if (entry.path().filename().string().rfind("cifar100_", 0) == 0 &&
            entry.path().filename() != "cifar100_teacher.toml")
            found++;
    EXPECT_EQ(found, int(pairs.size())) << "a CIFAR-100 pair config is not covered by this test";
    for (const auto &[file, teacher_model] : pairs) {
        SCOPED_TRACE(file);
        const std::string t = teacher(teacher_model);
        ASSERT_TRUE(fs::exists(t));
        const fs::path out = dir_ / ("student_" + file);
        const CommandResult r = run_cli("distill --config " + config(file) + " --data " + (dir_ / "data").string() +
                                        " --teacher " + t + " --max-steps 2 --batch-size 8 --no-progress --out " +
                                        out.string());
        ASSERT_EQ(r.status, 0) << r.output;
        for (const char *f : {"config.toml", "metrics.jsonl", "checkpoint.pt", "summary.json"})
            EXPECT_TRUE(fs::exists(out / f)) << f;
        std::ifstream cfg(out / "config.toml");
        const std::string text((std::istreambuf_iterator<char>(cfg)), std::istreambuf_iterator<char>());
        EXPECT_NE(text.find("dataset = \"cifar100\""), std::string::npos) << text;
        EXPECT_NE(text.find("method = \"dto\""), std::string::npos) << text;
        EXPECT_NE(text.find("milestones = [150, 180, 210]"), std::string::npos) << text;
    }
}

TEST_F(ConfigSmoke, FashionMnistConfigIsTheDefaultDistillation) {
    // The config parses and names a method, student and teacher the CLI accepts:
    // with a missing teacher the run must fail on the teacher path, not on a key.
    const CommandResult r = run_cli("distill --config " + config("fashion_mnist.toml") + " --teacher " +
                                    (dir_ / "absent.pt").string() + " --out " + (dir_ / "fm").string());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("absent.pt: teacher file not found"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "fm"));
}

}  // namespace
