// pipelines/teacher_logit_cache: the first call computes teacher(image i) for
// every training row and writes the cache file; the next returns it from the file
// bit for bit; a corrupted or truncated file is recomputed and rewritten; the cache
// key follows the teacher file's bytes and the data, not the teacher's path.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <string>

#include "checkpoint.h"
#include "model_factory.h"
#include "model_handle.h"
#include "scratch_data.h"
#include "teacher_logit_cache.h"
#include "content_hash.h"

namespace {

using namespace dtokd_test;
using dtokd::TeacherLogits;

class TeacherLogitCache : public ::testing::Test {
protected:
    ScratchDir dir{"logitcache"};
    std::string cache = dir / "cache";  // created by the first call
    std::string teacher_file = dir / "teacher.pt";
    dtokd::ImageDataset data;
    dtokd::ModelHandle teacher;

    void SetUp() override {
        data.name = "toy/train";
        data.num_classes = 10;
        torch::manual_seed(8);
        data.images = torch::randint(0, 256, {21, 1, 28, 28}, torch::kByte);
        data.labels = torch::arange(21, torch::kLong).remainder(10);
        data.mean = {0.2};
        data.std = {0.3};
        save_teacher(teacher_file, 11);
        teacher = dtokd::load_teacher(teacher_file, 1, 28, 28, 10);
    }
    static void save_teacher(const std::string &path, uint64_t seed) {
        torch::manual_seed(seed);
        dtokd::CheckpointMeta m;
        m.model_name = "cnn_small";
        m.num_classes = 10;
        m.in_channels = 1;
        m.height = 28;
        m.width = 28;
        dtokd::save_checkpoint(path, *dtokd::make_model("cnn_small", 1, 10), m, {});
    }
    TeacherLogits logits() { return dtokd::teacher_logits_for(teacher, teacher_file, data, cache, false); }
};

TEST_F(TeacherLogitCache, ComputesThenReadsBack) {
    const TeacherLogits first = logits();
    EXPECT_FALSE(first.from_cache);
    EXPECT_TRUE(fs::exists(first.path));
    EXPECT_EQ(fs::path(first.path).parent_path(), fs::path(cache));
    EXPECT_EQ(files_under(cache), std::vector<std::string>{fs::path(first.path).filename().string()});
    ASSERT_EQ(first.logits.sizes(), (std::vector<int64_t>{21, 10}));
    // Header (magic, key, rows, classes, checksum: 40 bytes) + the float32 payload.
    EXPECT_EQ(fs::file_size(first.path), 40u + 21u * 10u * 4u);

    // Row i is the teacher's output for normalized training image i.
    torch::NoGradGuard no_grad;
    const torch::Tensor x = (data.images.to(torch::kFloat) / 255.0 - 0.2) / 0.3;
    EXPECT_LT((teacher.forward(x) - first.logits).abs().max().item<double>(), 1e-5);

    const TeacherLogits second = logits();
    EXPECT_TRUE(second.from_cache);
    EXPECT_EQ(second.path, first.path);
    EXPECT_TRUE(torch::equal(second.logits, first.logits));
}

TEST_F(TeacherLogitCache, CorruptPayloadIsRecomputedAndFixed) {
    const TeacherLogits first = logits();
    const Bytes good = read_bytes(first.path);
    Bytes bad = good;
    bad[40 + 4 * 37 + 2] ^= 0x10;  // one byte of the payload (row 3, class 7)
    write_bytes(first.path, bad);
    const TeacherLogits again = logits();
    EXPECT_FALSE(again.from_cache);
    EXPECT_TRUE(torch::equal(again.logits, first.logits));
    EXPECT_EQ(read_bytes(first.path), good);
    EXPECT_TRUE(logits().from_cache);

    // A truncated file and a wrong magic are recomputed too.
    write_bytes(first.path, Bytes(good.begin(), good.end() - 4));
    EXPECT_FALSE(logits().from_cache);
    EXPECT_EQ(read_bytes(first.path), good);
    bad = good;
    bad[0] = 'X';
    write_bytes(first.path, bad);
    EXPECT_FALSE(logits().from_cache);
    EXPECT_EQ(read_bytes(first.path), good);
}

TEST_F(TeacherLogitCache, KeyFollowsTeacherBytesAndData) {
    const TeacherLogits first = logits();

    // Same bytes at another path: same cache entry.
    const std::string copy = dir / "copy-of-teacher.pt";
    fs::copy_file(teacher_file, copy);
    const TeacherLogits same = dtokd::teacher_logits_for(teacher, copy, data, cache, false);
    EXPECT_TRUE(same.from_cache);
    EXPECT_EQ(same.path, first.path);

    // Another teacher file (different weights, different bytes): another entry.
    const std::string other_file = dir / "other.pt";
    save_teacher(other_file, 12);
    ASSERT_NE(read_bytes(other_file), read_bytes(teacher_file));
    dtokd::ModelHandle other = dtokd::load_teacher(other_file, 1, 28, 28, 10);
    const TeacherLogits other_logits = dtokd::teacher_logits_for(other, other_file, data, cache, false);
    EXPECT_FALSE(other_logits.from_cache);
    EXPECT_NE(other_logits.path, first.path);
    EXPECT_FALSE(torch::equal(other_logits.logits, first.logits));

    // One pixel of the data changed: another entry.
    data.images[5][0][3][4].fill_(uint8_t(data.images[5][0][3][4].item<int64_t>() ^ 1));
    const TeacherLogits changed = logits();
    EXPECT_FALSE(changed.from_cache);
    EXPECT_NE(changed.path, first.path);
    // Another normalization: another entry.
    data.std = {0.31};
    EXPECT_NE(logits().path, changed.path);
    EXPECT_EQ(files_under(cache).size(), 4u);
}

TEST(Fnv1a64, KnownValues) {
    // Reference values of 64-bit FNV-1a (Fowler/Noll/Vo test vectors).
    EXPECT_EQ(dtokd::fnv1a64("", 0), 0xcbf29ce484222325ull);
    EXPECT_EQ(dtokd::fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
    EXPECT_EQ(dtokd::fnv1a64("foobar", 6), 0x85944171f73967e8ull);
}

}  // namespace
