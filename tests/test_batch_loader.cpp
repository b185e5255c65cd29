// pipelines/batch_loader: batches are a pure function of (seed, epoch) (order and
// augmentation), every row appears exactly once per epoch, pixels are normalized as
// (u8/255 - mean)/std, flips mirror the source image and random crops shift it with
// zero padding (-mean/std after normalization), checked against a plain reference.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "batch_loader.h"
#include "cuda_device.h"
#include "scratch_data.h"

namespace {

using dtokd::Batch;
using dtokd::BatchLoader;
using dtokd::ImageDataset;
using dtokd::LoaderOptions;

// 37 rows (a short last batch), 3 channels, 5x7 images (odd, not square);
// pixels in [1, 255] so no real pixel looks like padding.
ImageDataset toy_dataset() {
    ImageDataset d;
    d.name = "toy";
    d.num_classes = 4;
    torch::manual_seed(3);
    d.images = torch::randint(1, 256, {37, 3, 5, 7}, torch::kByte);
    d.labels = torch::arange(37, torch::kLong).remainder(4);
    d.mean = {0.1, 0.5, 0.9};
    d.std = {0.5, 0.25, 0.2};
    return d;
}

std::vector<Batch> epoch_batches(BatchLoader &loader, int epoch) {
    loader.start_epoch(epoch);
    std::vector<Batch> out;
    while (auto b = loader.next()) out.push_back(*b);
    return out;
}

torch::Tensor all_indices(const std::vector<Batch> &batches) {
    std::vector<torch::Tensor> parts;
    for (const Batch &b : batches) parts.push_back(b.indices);
    return torch::cat(parts);
}

// Reference normalization in float64: (u8/255 - mean)/std per channel, [N, C, H, W].
torch::Tensor normalized(const ImageDataset &d, const torch::Tensor &rows) {
    torch::Tensor x = d.images.index_select(0, rows).to(torch::kDouble) / 255.0;
    const auto mean = torch::tensor(d.mean, torch::kDouble).view({1, -1, 1, 1});
    const auto std = torch::tensor(d.std, torch::kDouble).view({1, -1, 1, 1});
    return (x - mean) / std;
}

// What the loader should produce for one image [C, H, W] cropped with offset
// (dy, dx) from its zero-padded version: out[y][x] = src[y+dy][x+dx], or the
// normalized zero outside the image.
torch::Tensor shifted(const torch::Tensor &norm_img, const std::vector<double> &mean, const std::vector<double> &std,
                      int dy, int dx) {
    const int64_t c = norm_img.size(0), h = norm_img.size(1), w = norm_img.size(2);
    torch::Tensor out = torch::empty_like(norm_img);
    for (int64_t ch = 0; ch < c; ch++) out[ch].fill_(-mean[size_t(ch)] / std[size_t(ch)]);
    const int64_t y0 = std::max<int64_t>(0, -dy), y1 = std::min<int64_t>(h, h - dy);
    const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(w, w - dx);
    if (y0 < y1 && x0 < x1)
        out.index_put_({torch::indexing::Slice(), torch::indexing::Slice(y0, y1), torch::indexing::Slice(x0, x1)},
                       norm_img.index({torch::indexing::Slice(), torch::indexing::Slice(y0 + dy, y1 + dy),
                                       torch::indexing::Slice(x0 + dx, x1 + dx)}));
    return out;
}

constexpr double kTol = 1e-5;  // float32 output vs float64 reference

TEST(BatchLoader, SameSeedAndEpochGiveIdenticalBatches) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 8;
    o.crop_padding = 2;
    o.flip = true;
    o.seed = 42;
    o.prefetch = 2;
    BatchLoader a(d, o), b(d, o);
    const auto ea = epoch_batches(a, 3), eb = epoch_batches(b, 3);
    // Epoch 3 again on the same loader, after another epoch in between.
    epoch_batches(a, 1);
    const auto ea2 = epoch_batches(a, 3);
    ASSERT_EQ(ea.size(), 5u);
    ASSERT_EQ(eb.size(), ea.size());
    ASSERT_EQ(ea2.size(), ea.size());
    for (size_t i = 0; i < ea.size(); i++) {
        EXPECT_TRUE(torch::equal(ea[i].indices, eb[i].indices)) << i;
        EXPECT_TRUE(torch::equal(ea[i].images, eb[i].images)) << i;
        EXPECT_TRUE(torch::equal(ea[i].labels, eb[i].labels)) << i;
        EXPECT_TRUE(torch::equal(ea[i].indices, ea2[i].indices)) << i;
        EXPECT_TRUE(torch::equal(ea[i].images, ea2[i].images)) << i;
    }
}

TEST(BatchLoader, EpochsAndSeedsChangeTheOrder) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 8;
    o.seed = 1;
    BatchLoader a(d, o);
    std::vector<torch::Tensor> orders;
    for (int epoch = 0; epoch < 5; epoch++) orders.push_back(all_indices(epoch_batches(a, epoch)));
    for (size_t i = 0; i < orders.size(); i++)
        for (size_t j = i + 1; j < orders.size(); j++)
            EXPECT_FALSE(torch::equal(orders[i], orders[j])) << "epochs " << i << " and " << j;
    const torch::Tensor e0 = orders[0];
    EXPECT_FALSE(torch::equal(e0, torch::arange(37, torch::kLong)));  // shuffled at all
    o.seed = 2;
    BatchLoader b(d, o);
    EXPECT_FALSE(torch::equal(e0, all_indices(epoch_batches(b, 0))));
}

TEST(BatchLoader, EveryRowOncePerEpochWithItsLabel) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 8;
    o.seed = 5;
    BatchLoader loader(d, o);
    EXPECT_EQ(loader.batches_per_epoch(), 5);  // ceil(37 / 8): no drop_last
    for (int epoch = 0; epoch < 4; epoch++) {
        const auto batches = epoch_batches(loader, epoch);
        ASSERT_EQ(int64_t(batches.size()), loader.batches_per_epoch());
        for (size_t i = 0; i + 1 < batches.size(); i++) EXPECT_EQ(batches[i].labels.numel(), 8);
        EXPECT_EQ(batches.back().labels.numel(), 37 - 4 * 8);
        const torch::Tensor idx = all_indices(batches);
        EXPECT_TRUE(torch::equal(std::get<0>(idx.sort()), torch::arange(37, torch::kLong))) << "epoch " << epoch;
        for (const Batch &b : batches) EXPECT_TRUE(torch::equal(b.labels, d.labels.index_select(0, b.indices)));
    }
}

TEST(BatchLoader, UnshuffledIsInOrderAndDropLastDrops) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 10;
    o.shuffle = false;
    BatchLoader plain(d, o);
    EXPECT_TRUE(torch::equal(all_indices(epoch_batches(plain, 7)), torch::arange(37, torch::kLong)));
    o.drop_last = true;
    BatchLoader dropping(d, o);
    EXPECT_EQ(dropping.batches_per_epoch(), 3);
    EXPECT_TRUE(torch::equal(all_indices(epoch_batches(dropping, 0)), torch::arange(30, torch::kLong)));
}

TEST(BatchLoader, NormalizesWithoutAugmentation) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 16;
    o.seed = 9;
    BatchLoader loader(d, o);
    EXPECT_FALSE(loader.augments());
    for (const Batch &b : epoch_batches(loader, 0)) {
        ASSERT_EQ(b.images.scalar_type(), torch::kFloat);
        ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{b.labels.numel(), 3, 5, 7}));
        const torch::Tensor ref = normalized(d, b.indices);
        EXPECT_LT((b.images.to(torch::kDouble) - ref).abs().max().item<double>(), kTol);
    }
}

TEST(BatchLoader, FlipMirrorsTheSourceImage) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 37;
    o.flip = true;
    o.seed = 4;
    BatchLoader loader(d, o);
    EXPECT_TRUE(loader.augments());
    const auto batches = epoch_batches(loader, 0);
    ASSERT_EQ(batches.size(), 1u);
    const Batch &b = batches[0];
    const torch::Tensor ref = normalized(d, b.indices);
    int flipped = 0, kept = 0;
    for (int64_t i = 0; i < 37; i++) {
        const torch::Tensor got = b.images[i].to(torch::kDouble);
        const bool same = (got - ref[i]).abs().max().item<double>() < kTol;
        const bool mirrored = (got - ref[i].flip({2})).abs().max().item<double>() < kTol;
        EXPECT_TRUE(same != mirrored) << "row " << b.indices[i].item<int64_t>()
                                      << " is neither the image nor its mirror";
        flipped += mirrored;
        kept += same;
    }
    // A fair coin per image: both outcomes occur among 37 (odds of not: 2^-36).
    EXPECT_GT(flipped, 0);
    EXPECT_GT(kept, 0);
}

TEST(BatchLoader, CropShiftsContentWithZeroPadding) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 37;
    o.crop_padding = 2;
    o.seed = 6;
    BatchLoader loader(d, o);
    const Batch b = epoch_batches(loader, 0).at(0);
    const torch::Tensor ref = normalized(d, b.indices);
    std::set<std::pair<int, int>> offsets;
    int shifted_rows = 0;
    for (int64_t i = 0; i < 37; i++) {
        const torch::Tensor got = b.images[i].to(torch::kDouble);
        int matches = 0;
        for (int dy = -2; dy <= 2; dy++)
            for (int dx = -2; dx <= 2; dx++) {
                if ((got - shifted(ref[i], d.mean, d.std, dy, dx)).abs().max().item<double>() < kTol) {
                    matches++;
                    offsets.insert({dy, dx});
                    if (dy != 0 || dx != 0) shifted_rows++;
                }
            }
        EXPECT_EQ(matches, 1) << "row " << b.indices[i].item<int64_t>()
                              << " is not one shifted, zero-padded crop of its image";
    }
    // Offsets are uniform in [-2, 2]^2: 37 draws land on several of the 25.
    EXPECT_GE(offsets.size(), 5u);
    EXPECT_GT(shifted_rows, 0);
    // A padded pixel is the normalized zero: -mean/std (channel 1: -0.5/0.25 = -2).
    const float pad_value = float(-d.mean[1] / d.std[1]);
    EXPECT_GT((b.images.select(1, 1) == pad_value).sum().item<int64_t>(), 0);
}

TEST(BatchLoader, StopsMidEpochAndRejectsBadInput) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 1;
    o.prefetch = 1;
    {
        BatchLoader loader(d, o);
        loader.start_epoch(0);
        ASSERT_TRUE(loader.next().has_value());
        loader.start_epoch(1);  // abandons epoch 0 with the producer blocked on a full queue
        EXPECT_EQ(all_indices([&] {
                      std::vector<Batch> v;
                      while (auto b = loader.next()) v.push_back(*b);
                      return v;
                  }()).numel(),
                  37);
        loader.start_epoch(2);
        ASSERT_TRUE(loader.next().has_value());
    }  // destroyed mid-epoch: must not hang

    o.batch_size = 0;
    dtokd_test::expect_error<std::invalid_argument>([&] { BatchLoader bad(d, o); }, {"batch_size", ">= 1"});
    o.batch_size = 4;
    ImageDataset no_norm = d;
    no_norm.std = {1.0};
    dtokd_test::expect_error<std::invalid_argument>([&] { BatchLoader bad(no_norm, o); }, {"toy", "mean/std"});
}

}  // namespace

// Data-parallel shares (DistributedSampler's split of each global batch): the ranks'
// shares of a batch are disjoint, equal in size, and together the one-process batch
// (rank r takes its rows r, r + R, ...), with the same images and labels; over an epoch
// every sample is seen exactly once but for the last batch's cut to a multiple of R.
TEST(BatchLoader, RanksSplitEachGlobalBatchEvenly) {
    const ImageDataset d = toy_dataset();  // 37 rows
    struct Case {
        int world;
        int64_t batch, batches, left_out;
    };
    // 37 = 4 x 8 + 5: the last batch is cut to 4; 37 = 3 x 12 + 1: the last one (1 row) is left out.
    for (const Case c : {Case{2, 8, 5, 1}, Case{4, 8, 5, 1}, Case{3, 12, 3, 1}}) {
        SCOPED_TRACE("world " + std::to_string(c.world) + ", batch " + std::to_string(c.batch));
        LoaderOptions o;
        o.batch_size = c.batch;
        o.seed = 5;
        BatchLoader whole(d, o);
        const std::vector<Batch> global = epoch_batches(whole, 2);
        std::vector<torch::Tensor> seen;
        for (int r = 0; r < c.world; r++) {
            o.rank = r;
            o.world_size = c.world;
            BatchLoader loader(d, o);
            EXPECT_EQ(loader.batches_per_epoch(), c.batches);
            EXPECT_EQ(loader.samples_left_out(), c.left_out);
            const std::vector<Batch> mine = epoch_batches(loader, 2);
            ASSERT_EQ(int64_t(mine.size()), c.batches);
            for (size_t j = 0; j < mine.size(); j++) {
                const int64_t share = (global[j].labels.numel() / c.world);
                const torch::Tensor pos = torch::arange(r, share * c.world, c.world, torch::kLong);
                EXPECT_TRUE(torch::equal(mine[j].indices, global[j].indices.index_select(0, pos))) << "batch " << j;
                EXPECT_TRUE(torch::equal(mine[j].images, global[j].images.index_select(0, pos))) << "batch " << j;
                EXPECT_TRUE(torch::equal(mine[j].labels, global[j].labels.index_select(0, pos))) << "batch " << j;
            }
            seen.push_back(all_indices(mine));
        }
        const torch::Tensor all = std::get<0>(torch::cat(seen).sort());
        EXPECT_EQ(all.numel(), 37 - c.left_out);
        EXPECT_EQ(std::get<0>(torch::_unique(all)).numel(), all.numel()) << "a sample on two ranks";
    }
    LoaderOptions bad;
    bad.batch_size = 10;
    bad.world_size = 4;
    dtokd_test::expect_error<std::invalid_argument>([&] { BatchLoader loader(d, bad); }, {"batch size 10 cannot be split evenly over 4 ranks"});
    bad.batch_size = 8;
    bad.rank = 4;
    dtokd_test::expect_error<std::invalid_argument>([&] { BatchLoader loader(d, bad); }, {"rank 4 of 4"});
}

// Pinned batches (for asynchronous copies to a GPU): one clear error on a LibTorch without
// CUDA; with CUDA, page-locked and the same batches as unpinned ones.
TEST(BatchLoader, PinnedBatchesNeedCudaAndAreTheSameBatches) {
    const ImageDataset d = toy_dataset();
    LoaderOptions o;
    o.batch_size = 8;
    o.pin_memory = true;
    if (!dtokd::torch_built_with_cuda()) {
        try {
            BatchLoader loader(d, o);
            FAIL() << "a pinned loader was made on a LibTorch without CUDA";
        } catch (const std::invalid_argument &e) {
            EXPECT_STREQ(e.what(), "pinned batches need a CUDA LibTorch; this one was built without CUDA");
        }
        return;
    }
    if (dtokd::visible_gpus().empty()) GTEST_SKIP() << "pinned memory needs a visible GPU";
    BatchLoader pinned(d, o);
    o.pin_memory = false;
    BatchLoader plain(d, o);
    const auto a = epoch_batches(pinned, 0), b = epoch_batches(plain, 0);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_TRUE(a[i].images.is_pinned() && a[i].labels.is_pinned()) << i;
        EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << i;
        EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels)) << i;
    }
}
