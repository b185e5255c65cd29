// Replays every committed seed of fuzz/corpus/<target> and every fuzz regression input of
// tests/data/fuzz-regressions/<target> through that fuzz target's entry function
// (fuzz/fuzz_*.cpp, compiled into this suite as plain functions), so the targets and
// their corpora keep building and passing without clang: a seed named valid-* must be
// accepted, invalid-* rejected with an allowed error naming the file, and no input may
// raise a FuzzFinding (another exception type, an error not naming the file, a failed
// round trip). A few seeds are also read directly and their values checked.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "../fuzz/fuzz_support.h"
#include "image_dataset.h"
#include "kernel_selection.h"
#include "scratch_data.h"
#include "teacher_logit_file.h"
#include "tuning_file.h"

namespace {

namespace fs = std::filesystem;
using namespace dtokd::fuzz;

struct Target {
    const char *corpus;
    int (*entry)(const uint8_t *, size_t);
};

const Target kTargets[] = {{"idx", fuzz_idx},          {"idx_gz", fuzz_idx},    {"cifar", fuzz_cifar},
                           {"config", fuzz_config},    {"checkpoint", fuzz_checkpoint},
                           {"tuning", fuzz_tuning},    {"logit_cache", fuzz_logit_cache},
                           {"image", fuzz_image}};

std::string slurp(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<fs::path> files_in(const fs::path &dir) {
    std::vector<fs::path> files;
    if (fs::is_directory(dir))
        for (const auto &e : fs::directory_iterator(dir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

// The entry function's verdict on `file` (1 accepted, 0 rejected), or -1 after a failure.
int replay(const Target &t, const fs::path &file) {
    const std::string bytes = slurp(file);
    try {
        return t.entry(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    } catch (const std::exception &e) {
        ADD_FAILURE() << file << ": " << e.what();
        return -1;
    }
}

class FuzzCorpus : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzCorpus, ValidSeedsAreAcceptedAndInvalidOnesRejectedClearly) {
    const fs::path dir = fs::path(DTOKD_SOURCE_DIR) / "fuzz/corpus" / GetParam().corpus;
    int valid = 0, invalid = 0;
    for (const fs::path &file : files_in(dir)) {
        const std::string name = file.filename().string();
        const int verdict = replay(GetParam(), file);
        if (name.rfind("valid-", 0) == 0) {
            EXPECT_EQ(verdict, 1) << name << " should be accepted";
            valid++;
        } else if (name.rfind("invalid-", 0) == 0) {
            EXPECT_EQ(verdict, 0) << name << " should be rejected with a clear error";
            invalid++;
        } else {
            ADD_FAILURE() << file << ": seed names start with valid- or invalid-";
        }
    }
    EXPECT_GT(valid, 0) << dir;
    EXPECT_GT(invalid, 0) << dir;
}

// Each input is also checked for its fixed behaviour by a test of its reader.
TEST_P(FuzzCorpus, RegressionInputsRaiseNoFinding) {
    const fs::path dir = fs::path(DTOKD_SOURCE_DIR) / "tests/data/fuzz-regressions" / GetParam().corpus;
    for (const fs::path &file : files_in(dir)) EXPECT_GE(replay(GetParam(), file), 0) << file;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<Target> &info) { return std::string(info.param.corpus); });

// A seed without its first byte (the target's mode byte), written to `dir`.
std::string seed_file(const dtokd_test::ScratchDir &dir, const std::string &seed, size_t skip = 1) {
    const std::string bytes = slurp(fs::path(DTOKD_SOURCE_DIR) / "fuzz/corpus" / seed);
    const std::string path = (dir.path() / "seed").string();
    std::ofstream(path, std::ios::binary) << bytes.substr(skip);
    return path;
}

TEST(FuzzSeeds, IdxSeedHoldsThreeImagesAndTheirLabels) {
    const std::string bytes = slurp(fs::path(DTOKD_SOURCE_DIR) / "fuzz/corpus/idx/valid-3x4x4");
    const size_t n = uint8_t(bytes[0]) | size_t(uint8_t(bytes[1])) << 8;
    dtokd_test::ScratchDir dir("fuzz-seed");
    std::ofstream(dir.path() / "images", std::ios::binary) << bytes.substr(2, n);
    std::ofstream(dir.path() / "labels", std::ios::binary) << bytes.substr(2 + n);
    const dtokd::ImageDataset d =
        dtokd::load_idx_pair((dir.path() / "images").string(), (dir.path() / "labels").string(), "seed", 10);
    EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{3, 1, 4, 4}));
    EXPECT_TRUE(at::equal(d.labels, at::arange(3, at::kLong)));
    EXPECT_EQ(d.images.flatten()[5].item<int64_t>(), 35);  // pixel i holds (7 i) mod 256
}

TEST(FuzzSeeds, CheckpointSeedHoldsItsMetaAndObjectiveState) {
    dtokd_test::ScratchDir dir("fuzz-seed");
    const std::string path = seed_file(dir, "checkpoint/valid-linear-file");
    const dtokd::CheckpointMeta meta = dtokd::read_checkpoint_meta(path);
    EXPECT_EQ(meta.model_name, "linear");
    EXPECT_EQ(meta.num_classes, 3);
    EXPECT_EQ(meta.step, 7);
    EXPECT_EQ(meta.optimizer_kind, "sgd");
    EXPECT_EQ(meta.config, "lr = 0.05\n");
    const auto objective = dtokd::read_objective_state(path);
    ASSERT_EQ(objective.size(), 1u);
    EXPECT_EQ(objective[0].first, "kd.scale");
    EXPECT_EQ(objective[0].second.item<double>(), 2.0);
}

TEST(FuzzSeeds, LogitCacheSeedHoldsItsLogits) {
    dtokd_test::ScratchDir dir("fuzz-seed");
    const std::string path = seed_file(dir, "logit_cache/valid-4x3");
    const at::Tensor logits = dtokd::read_teacher_logit_file(path, kFuzzLogitKey, 4, 3);
    ASSERT_TRUE(logits.defined());
    EXPECT_TRUE(at::equal(logits, at::arange(12, at::kFloat).reshape({4, 3}) * 0.25));
    EXPECT_FALSE(dtokd::read_teacher_logit_file(path, kFuzzLogitKey + 1, 4, 3).defined());
    EXPECT_FALSE(dtokd::read_teacher_logit_file(path, kFuzzLogitKey, 3, 4).defined());
}

// load_tuning_file over every tuning seed and regression: never throws, never applies a
// file made for another machine/build, and its message names the file.
TEST(FuzzSeeds, TuningFilesAreIgnoredWithAReasonNamingThem) {
    for (const char *folder : {"fuzz/corpus/tuning", "tests/data/fuzz-regressions/tuning"})
        for (const fs::path &file : files_in(fs::path(DTOKD_SOURCE_DIR) / folder)) {
            const dtokd::TuningLoadResult r = dtokd::load_tuning_file(file.string());
            EXPECT_EQ(r.status, dtokd::TuningLoadResult::Status::ignored) << file << ": " << r.message;
            EXPECT_NE(r.message.find(file.string()), std::string::npos) << r.message;
        }
    dtokd::select_default_kernel_variants();
}

}  // namespace
