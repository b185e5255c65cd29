// pipelines/contrast_sampler and its use by the batch loader: column 0 is the sample's
// own index, the K negatives are distinct and all of other classes, each pool member
// is about equally likely, draws are a pure function of the seed (so of seed, epoch and
// batch in the loader), differ across epochs, leave the images unchanged, and K above
// the smallest other-class pool fails naming K and the maximum. Also the producer-side
// cost at the reference's size (N 50000, 100 classes, K 16384, B 64), printed.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "batch_loader.h"
#include "contrast_sampler.h"
#include "scratch_data.h"

namespace {

using dtokd::BatchLoader;
using dtokd::ContrastSampler;
using dtokd::ImageDataset;
using dtokd::LoaderOptions;
using namespace dtokd_test;

// Uneven classes: class c has c + 1 samples among 5 classes (15 rows), rows shuffled.
torch::Tensor uneven_labels() {
    std::vector<int64_t> l;
    for (int c = 0; c < 5; c++)
        for (int i = 0; i <= c; i++) l.push_back(c);
    torch::manual_seed(5);
    return torch::tensor(l, torch::kLong).index_select(0, torch::randperm(15, torch::kLong));
}

void expect_valid(const torch::Tensor &idx, const std::vector<int64_t> &rows, const torch::Tensor &labels, int64_t k) {
    ASSERT_EQ(idx.sizes(), (at::IntArrayRef{int64_t(rows.size()), 1 + k}));
    ASSERT_EQ(idx.scalar_type(), torch::kLong);
    const auto a = idx.accessor<int64_t, 2>();
    const auto lab = labels.accessor<int64_t, 1>();
    for (size_t i = 0; i < rows.size(); i++) {
        EXPECT_EQ(a[int64_t(i)][0], rows[i]);
        std::set<int64_t> seen;
        for (int64_t j = 1; j <= k; j++) {
            const int64_t n = a[int64_t(i)][j];
            ASSERT_GE(n, 0);
            ASSERT_LT(n, labels.numel());
            EXPECT_NE(lab[n], lab[rows[i]]) << "negative " << n << " of row " << rows[i] << " is of its class";
            EXPECT_TRUE(seen.insert(n).second) << "negative " << n << " twice for row " << rows[i];
        }
    }
}

TEST(ContrastSampler, OwnIndexThenDistinctOtherClassNegatives) {
    const torch::Tensor labels = uneven_labels();
    const std::vector<int64_t> rows = {0, 3, 7, 14, 9};
    for (int64_t k : {1, 4, 10}) {  // 10 = 15 - 5, the largest class's complement: the whole pool
        SCOPED_TRACE(k);
        const ContrastSampler s(labels, 5, k);
        EXPECT_EQ(s.max_negatives(), 10);
        for (uint64_t seed : {0ull, 1ull, 99ull}) expect_valid(s.sample(rows, seed), rows, labels, k);
    }
}

TEST(ContrastSampler, SameSeedSameDrawsOtherSeedOtherDraws) {
    torch::manual_seed(1);
    const torch::Tensor labels = torch::randint(0, 10, {500}, torch::kLong);
    const ContrastSampler s(labels, 10, 64);
    const std::vector<int64_t> rows = {1, 2, 3, 400};
    EXPECT_TRUE(torch::equal(s.sample(rows, 7), s.sample(rows, 7)));
    EXPECT_FALSE(torch::equal(s.sample(rows, 7), s.sample(rows, 8)));
}

// Each member of a row's other-class pool is drawn with probability K / pool: over many
// draws the counts stay within a loose band around that (fails for a biased sampler,
// e.g. one that always took the first K or favoured the pool's ends).
TEST(ContrastSampler, NegativesAreUniformOverThePool) {
    const torch::Tensor labels = torch::arange(40, torch::kLong).remainder(4);  // 10 per class
    const ContrastSampler s(labels, 4, 6);
    std::vector<int64_t> count(40, 0);
    const int draws = 6000;
    for (int t = 0; t < draws; t++) {
        const torch::Tensor idx = s.sample({0}, uint64_t(t));  // row 0, class 0; pool = the 30 others
        for (int64_t j = 1; j <= 6; j++) count[size_t(idx[0][j].item<int64_t>())]++;
    }
    const double expected = draws * 6.0 / 30.0;  // 1200
    for (int64_t r = 0; r < 40; r++) {
        if (r % 4 == 0)
            EXPECT_EQ(count[size_t(r)], 0) << r;
        else
            EXPECT_NEAR(double(count[size_t(r)]), expected, 0.1 * expected) << r;
    }
}

TEST(ContrastSampler, TooManyNegativesNameKAndTheMaximum) {
    const torch::Tensor labels = uneven_labels();
    expect_error<std::invalid_argument>([&] { ContrastSampler(labels, 5, 11); }, {"K = 11", "K <= 10", "5"});
    expect_error<std::invalid_argument>([&] { ContrastSampler(labels, 5, 0); }, {"K = 0", "1 <= K"});
    expect_error<std::invalid_argument>([&] { ContrastSampler(torch::zeros({3}, torch::kLong), 1, 1); },
                                        {"K = 1", "K <= 0"});
    expect_error<std::invalid_argument>([&] { ContrastSampler(torch::full({3}, 7, torch::kLong), 5, 1); },
                                        {"label 7", "[0, 5)"});
}

ImageDataset labelled_dataset(int64_t n, int classes) {
    ImageDataset d;
    d.name = "toy";
    d.num_classes = classes;
    torch::manual_seed(3);
    d.images = torch::randint(0, 256, {n, 3, 4, 4}, torch::kByte);
    d.labels = torch::randint(0, classes, {n}, torch::kLong);
    d.mean = {0.5, 0.5, 0.5};
    d.std = {0.25, 0.25, 0.25};
    return d;
}

std::vector<dtokd::Batch> epoch_batches(BatchLoader &loader, int epoch) {
    loader.start_epoch(epoch);
    std::vector<dtokd::Batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
}

TEST(ContrastSampler, LoaderBatchesCarryDeterministicNegativesPerEpoch) {
    const ImageDataset data = labelled_dataset(97, 6);
    LoaderOptions o;
    o.batch_size = 16;
    o.seed = 42;
    o.crop_padding = 1;
    o.flip = true;
    LoaderOptions with = o;
    with.contrast_negatives = 20;
    BatchLoader a(data, with), b(data, with), plain(data, o);
    const auto a0 = epoch_batches(a, 0), b0 = epoch_batches(b, 0), a1 = epoch_batches(a, 1), p0 = epoch_batches(plain, 0);
    ASSERT_EQ(a0.size(), 7u);
    for (size_t i = 0; i < a0.size(); i++) {
        const auto &batch = a0[i];
        std::vector<int64_t> rows(batch.indices.data_ptr<int64_t>(),
                                  batch.indices.data_ptr<int64_t>() + batch.indices.numel());
        expect_valid(batch.contrast_indices, rows, data.labels, 20);
        EXPECT_TRUE(torch::equal(batch.contrast_indices, b0[i].contrast_indices)) << "batch " << i;
        // Drawing negatives leaves order and augmentation as they were.
        EXPECT_TRUE(torch::equal(batch.images, p0[i].images)) << "batch " << i;
        EXPECT_FALSE(p0[i].contrast_indices.defined());
    }
    // The same sample gets other negatives in another epoch (not only another order).
    auto negatives_by_row = [](const std::vector<dtokd::Batch> &batches) {
        std::map<int64_t, std::vector<int64_t>> out;
        for (const auto &b : batches)
            for (int64_t i = 0; i < b.indices.numel(); i++) {
                const torch::Tensor neg = std::get<0>(b.contrast_indices[i].narrow(0, 1, 20).sort());
                out[b.indices[i].item<int64_t>()] = std::vector<int64_t>(neg.data_ptr<int64_t>(), neg.data_ptr<int64_t>() + 20);
            }
        return out;
    };
    const auto e0 = negatives_by_row(a0), e1 = negatives_by_row(a1);
    ASSERT_EQ(e0.size(), 97u);
    int same = 0;
    for (const auto &[row, neg] : e0) same += neg == e1.at(row);
    EXPECT_EQ(same, 0);
    LoaderOptions too_many = o;
    too_many.contrast_negatives = 97;
    expect_error<std::invalid_argument>([&] { BatchLoader(data, too_many); }, {"toy", "K = 97", "expected 1 <= K <="});
}

// The reference's size: 64 rows x 16384 negatives from 50000 samples of 100 classes.
// Prints milliseconds per batch (the loader's producer thread pays this once per batch).
TEST(ContrastSampler, ReferenceSizeCost) {
    torch::manual_seed(2);
    const torch::Tensor labels = torch::arange(50000, torch::kLong).remainder(100);
    const ContrastSampler s(labels, 100, 16384);
    std::vector<int64_t> rows(64);
    std::iota(rows.begin(), rows.end(), 1000);
    const int reps = 10;
    const auto t0 = std::chrono::steady_clock::now();
    int64_t check = 0;
    for (int r = 0; r < reps; r++) check += s.sample(rows, uint64_t(r))[63][16384].item<int64_t>();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::cout << "[ contrast sampler ] B 64, K 16384, N 50000, 100 classes: " << ms << " ms per batch\n";
    RecordProperty("ms_per_batch", std::to_string(ms));
    EXPECT_GT(check, 0);
}

}  // namespace
