// The label-scarce regime's subset (dataset_subset.h): stratified counts, rows kept with
// their own images and labels, the choice fixed by the subset seed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "dataset_subset.h"
#include "image_folder.h"
#include "scratch_data.h"

namespace {

// 3 classes of 50, 20 and 7 rows, interleaved; image i is filled with i % 256.
dtokd::ImageDataset toy() {
    std::vector<int64_t> labels;
    for (int i = 0; i < 50; i++) labels.push_back(0);
    for (int i = 0; i < 20; i++) labels.push_back(1);
    for (int i = 0; i < 7; i++) labels.push_back(2);
    std::mt19937 rng(1);
    std::shuffle(labels.begin(), labels.end(), rng);
    dtokd::ImageDataset d;
    d.name = "toy";
    d.num_classes = 3;
    d.labels = at::tensor(labels, at::kLong);
    d.images = (at::arange(int64_t(labels.size())) % 256).to(at::kByte).view({-1, 1, 1, 1}).expand({-1, 1, 2, 2}).contiguous();
    d.mean = {0.5};
    d.std = {0.5};
    return d;
}

std::map<int64_t, int64_t> counts(const at::Tensor &labels) {
    std::map<int64_t, int64_t> c;
    for (int64_t i = 0; i < labels.numel(); i++) c[labels[i].item<int64_t>()]++;
    return c;
}

TEST(StratifiedSubset, KeepsTheFractionOfEveryClassWithTheirOwnImages) {
    const dtokd::ImageDataset d = toy();
    const dtokd::ImageDataset s = dtokd::stratified_subset(d, 0.1, 0);
    // round(0.1 * 50) = 5, round(0.1 * 20) = 2, round(0.1 * 7) = 1 (at least one).
    EXPECT_EQ(counts(s.labels), (std::map<int64_t, int64_t>{{0, 5}, {1, 2}, {2, 1}}));
    for (int64_t i = 0; i < s.size(); i++) {
        const int64_t row = s.images[i][0][0][0].item<uint8_t>();  // the original row (< 256)
        EXPECT_EQ(d.labels[row].item<int64_t>(), s.labels[i].item<int64_t>());
        if (i > 0) EXPECT_GT(row, s.images[i - 1][0][0][0].item<uint8_t>()) << "original order";
    }
    EXPECT_TRUE(at::equal(s.images, dtokd::stratified_subset(d, 0.1, 0).images));
    EXPECT_FALSE(at::equal(s.images, dtokd::stratified_subset(d, 0.1, 1).images));
    EXPECT_TRUE(at::equal(dtokd::stratified_subset(d, 1.0, 5).images, d.images));
    EXPECT_EQ(dtokd::stratified_subset(d, 0.5, 0).size(), 25 + 10 + 4);  // round(3.5) = 4
    EXPECT_THROW(dtokd::stratified_subset(d, 0.0, 0), std::invalid_argument);
    EXPECT_THROW(dtokd::stratified_subset(d, 1.5, 0), std::invalid_argument);
}

TEST(StratifiedSubset, ImageFilesKeepTheirPathsWithTheirLabels) {
    dtokd::ImageDataset d = toy();
    auto files = std::make_shared<dtokd::ImageFiles>();
    for (int64_t i = 0; i < d.size(); i++) files->paths.push_back("f" + std::to_string(i) + "-c" + std::to_string(d.labels[i].item<int64_t>()));
    d.images = at::Tensor();
    d.files = files;
    const dtokd::ImageDataset s = dtokd::stratified_subset(d, 0.2, 3);
    ASSERT_EQ(int64_t(s.files->paths.size()), s.size());
    for (int64_t i = 0; i < s.size(); i++)
        EXPECT_EQ(s.files->paths[size_t(i)].substr(s.files->paths[size_t(i)].find("-c") + 2),
                  std::to_string(s.labels[i].item<int64_t>()));
    EXPECT_EQ(d.files->paths.size(), 77u) << "the original is not changed";
}

TEST(StratifiedSubset, TrainFractionThroughTheCli) {
    dtokd_test::ScratchDir dir("subset-cli");
    dtokd_test::write_idx_dataset(dir.str(), dtokd_test::random_idx_split(200, 28, 28, 10, 4),
                                  dtokd_test::random_idx_split(50, 28, 28, 10, 5), 28, 28, false);
    const std::string run = dir / "run";
    const dtokd_test::CliResult r =
        dtokd_test::run_cli("--threads 1 train --dataset mnist --data " + dtokd_test::quoted(dir.str()) +
                            " --model cnn_small --epochs 1 --batch-size 8 --no-progress --train-fraction 0.25 --out " +
                            dtokd_test::quoted(run));
    ASSERT_EQ(r.code, 0) << r.output;
    const nlohmann::json summary = nlohmann::json::parse(dtokd_test::slurp(run + "/summary.json"));
    EXPECT_NEAR(summary["train_samples"].get<double>(), 50, 5);  // per-class rounding
    EXPECT_EQ(summary["steps"].get<int64_t>(), (summary["train_samples"].get<int64_t>() + 7) / 8);
    EXPECT_TRUE(dtokd_test::contains(dtokd_test::slurp(run + "/config.toml"), "train-fraction = 0.25"));
}

}  // namespace
