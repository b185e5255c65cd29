// `--dataset folder` end to end through the dtokd binary: a folder of PNG and JPEG
// files of several sizes, grey and colour, with unreadable files; the class list in the
// checkpoint; teachers and evaluation sets of other classes; worker counts and resume.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>

#include "checkpoint.h"
#include "cli_runner.h"
#include "dataset_registry.h"
#include "image_encode.h"
#include "scratch_data.h"

namespace {

using dtokd_test::Bytes;
using dtokd_test::CliResult;
using dtokd_test::contains;
using dtokd_test::quoted;
using dtokd_test::run_cli;
using dtokd_test::ScratchDir;
using dtokd_test::slurp;
namespace fs = std::filesystem;
using Json = nlohmann::json;

// Three classes whose images differ in brightness (learnable), sizes 12..23, every
// third one grey, PNG and JPEG.
void write_folder(const fs::path &root, const std::vector<std::string> &classes, int per_class_train = 12,
                  int per_class_val = 4) {
    uint32_t seed = 1;
    for (const std::string split : {"train", "val"})
        for (size_t k = 0; k < classes.size(); k++)
            for (int i = 0; i < (split == "train" ? per_class_train : per_class_val); i++) {
                const int w = 12 + (i * 5) % 12, h = 12 + (i * 7) % 12, c = i % 3 == 0 ? 1 : 3;
                Bytes pixels = dtokd_test::random_bytes(size_t(w * h * c), seed++, 0, 80);
                for (uint8_t &p : pixels) p = uint8_t(p + 80 * k);
                const fs::path dir = root / split / classes[k];
                fs::create_directories(dir);
                const bool jpeg = i % 2 == 1;
                dtokd::write_bytes((dir / (std::to_string(i) + (jpeg ? ".jpg" : ".png"))).string(),
                                   jpeg ? dtokd::encode_jpeg(pixels.data(), w, h, c) : dtokd::encode_png(pixels.data(), w, h, c));
            }
}

// A JPEG cut in its scan data: found when decoded, not when its header is read.
void write_cut_jpeg(const fs::path &path) {
    const Bytes pixels = dtokd_test::random_bytes(48 * 48 * 3, 77);
    Bytes jpeg = dtokd::encode_jpeg(pixels.data(), 48, 48, 3);
    jpeg.resize(jpeg.size() / 2);
    dtokd::write_bytes(path.string(), jpeg);
}

std::string train_args(const fs::path &data, const std::string &extra = "", int epochs = 2) {
    return "--threads 1 train --dataset folder --data " + quoted(data.string()) +
           " --model cnn_small --image-size 16 --batch-size 8 --lr 0.02 --no-progress --epochs " +
           std::to_string(epochs) + " " + extra;
}

// The loss and accuracy fields of every metrics line (timing fields differ run to run).
std::vector<std::string> learning_curve(const std::string &run) {
    std::vector<std::string> out;
    std::ifstream in(run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
        const Json j = Json::parse(line);
        std::string kept;
        for (const auto &[k, v] : j.items())
            if (k.rfind("loss_", 0) == 0 || k.rfind("pi_", 0) == 0 || k == "test_accuracy" || k == "step")
                kept += k + "=" + v.dump() + " ";
        out.push_back(kept);
    }
    return out;
}

class FolderCli : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = std::make_unique<ScratchDir>("folder-cli");
        data_ = root_->path() / "data";
        write_folder(data_, {"bright", "dark", "mid"});
    }
    std::unique_ptr<ScratchDir> root_;
    fs::path data_;
};

TEST_F(FolderCli, TrainsOnMixedImagesAndRecordsClassesNormalizationAndLeftOutFiles) {
    write_cut_jpeg(data_ / "train/dark/cut.jpg");
    dtokd_test::write_bytes((data_ / "val/mid/notes.png").string(), Bytes{'n', 'o', 't', 'e'});
    const std::string run = (root_->path() / "run").string();
    const CliResult r = run_cli(train_args(data_, "--skip-bad-images --augment --out " + quoted(run)));
    ASSERT_EQ(r.code, 0) << r.output;
    const Json summary = Json::parse(slurp(run + "/summary.json"));
    EXPECT_EQ(summary["classes"], Json({"bright", "dark", "mid"}));
    ASSERT_EQ(summary["bad_images"]["count"], 2) << summary.dump();
    const std::string listed = summary["bad_images"]["files"].dump();
    EXPECT_TRUE(contains(listed, "dark/cut.jpg: corrupt JPEG")) << listed;
    EXPECT_TRUE(contains(listed, "mid/notes.png: not a JPEG or PNG")) << listed;
    ASSERT_EQ(summary["normalization"]["mean"].size(), 3u);  // one colour image makes the input RGB
    const dtokd::CheckpointMeta meta = dtokd::read_checkpoint_meta(run + "/checkpoint.pt");
    EXPECT_EQ(meta.class_names, (std::vector<std::string>{"bright", "dark", "mid"}));
    EXPECT_EQ(meta.in_channels, 3);
    EXPECT_EQ(meta.height, 16);
    EXPECT_EQ(Json(meta.mean), summary["normalization"]["mean"]);
    EXPECT_EQ(Json(meta.std), summary["normalization"]["std"]);
    for (const std::string &line : learning_curve(run))
        EXPECT_FALSE(contains(line, "loss_ce=null")) << "a non-finite loss: " << line;
    // The classes differ in brightness: two epochs learn them (chance is 1/3).
    EXPECT_GT(summary["final_test_accuracy"].get<double>(), 0.5) << summary.dump();
    // eval recomputes the run's last accuracy from the checkpoint alone (its normalization,
    // size and crop travel with it), skipping the same unreadable file.
    const CliResult e = run_cli("eval " + quoted(run + "/checkpoint.pt") + " --dataset folder --skip-bad-images --data " +
                                quoted(data_.string()));
    ASSERT_EQ(e.code, 0) << e.output;
    char expected[32];
    std::snprintf(expected, sizeof expected, "%.6f", summary["final_test_accuracy"].get<double>());
    EXPECT_TRUE(contains(e.output, expected)) << e.output << " vs " << expected;
    // export tells a PyTorch user the label order and the normalization.
    const CliResult x = run_cli("export " + quoted(run) + " --out " + quoted((root_->path() / "s.pth").string()));
    ASSERT_EQ(x.code, 0) << x.output;
    EXPECT_TRUE(contains(x.output, "classes (label order): bright, dark, mid")) << x.output;
    EXPECT_TRUE(contains(x.output, "inputs: 16x16, pixels / 255 normalized with mean [")) << x.output;
}

TEST_F(FolderCli, WithoutSkippingABadFileIsOneErrorNamingItAndNoRunIsLeft) {
    write_cut_jpeg(data_ / "train/dark/cut.jpg");
    const std::string run = (root_->path() / "run").string();
    const CliResult r = run_cli(train_args(data_, "--out " + quoted(run)));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(dtokd_test::count(r.output, "error"), 1) << r.output;
    EXPECT_TRUE(contains(r.output, "dark/cut.jpg: corrupt JPEG")) << r.output;
    EXPECT_FALSE(fs::exists(run));
    EXPECT_FALSE(fs::exists(run + ".partial"));
}

TEST_F(FolderCli, TheWorkerCountDoesNotChangeTheRun) {
    const std::string one = (root_->path() / "w1").string(), three = (root_->path() / "w3").string();
    ASSERT_EQ(run_cli(train_args(data_, "--augment --workers 1 --out " + quoted(one))).code, 0);
    const CliResult r = run_cli(train_args(data_, "--augment --workers 3 --out " + quoted(three)));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(learning_curve(one), learning_curve(three));
    EXPECT_FALSE(learning_curve(one).empty());
}

TEST_F(FolderCli, KilledAndResumedIsTheUninterruptedRun) {
    const std::string whole = (root_->path() / "whole").string(), cut = (root_->path() / "cut").string();
    const std::string args = "--augment --checkpoint-every 2 --log-interval 1";
    ASSERT_EQ(run_cli(train_args(data_, args + " --out " + quoted(whole))).code, 0);
    const CliResult killed = run_cli(train_args(data_, args + " --out " + quoted(cut)), "DTOKD_FAULT_KILL_AFTER_STEP=7 ");
    ASSERT_EQ(killed.code, 128 + SIGKILL) << killed.output;
    const CliResult resumed = run_cli("--threads 1 train --resume " + quoted(cut) + " --workers 2");
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_EQ(learning_curve(whole), learning_curve(cut));
    EXPECT_EQ(Json::parse(slurp(whole + "/summary.json"))["normalization"],
              Json::parse(slurp(cut + "/summary.json"))["normalization"]);
}

TEST_F(FolderCli, ATeacherOrEvaluationSetOfOtherClassesIsOneError) {
    const std::string teacher = (root_->path() / "teacher").string();
    ASSERT_EQ(run_cli(train_args(data_, "--out " + quoted(teacher), 1)).code, 0);
    const fs::path other = root_->path() / "other";
    write_folder(other, {"bright", "dark", "medium"}, 4, 2);
    const CliResult d = run_cli("--threads 1 distill --dataset folder --data " + quoted(other.string()) +
                                " --model cnn_small --image-size 16 --batch-size 8 --epochs 1 --no-progress --teacher " +
                                quoted(teacher + "/checkpoint.pt") + " --out " + quoted((root_->path() / "s").string()));
    EXPECT_EQ(d.code, 1) << d.output;
    EXPECT_TRUE(contains(d.output, "trained on other classes")) << d.output;
    EXPECT_TRUE(contains(d.output, "label 2 is 'mid' there and 'medium' here")) << d.output;
    EXPECT_FALSE(fs::exists(root_->path() / "s.partial"));
    const CliResult e = run_cli("eval " + quoted(teacher + "/checkpoint.pt") + " --dataset folder --data " +
                                quoted(other.string()));
    EXPECT_EQ(e.code, 1) << e.output;
    EXPECT_TRUE(contains(e.output, "trained on other classes")) << e.output;
}

// The first `n` rows of a Fashion-MNIST split as IDX bytes, and as PNG files in class
// folders "0".."9" (sorted = label order).
dtokd_test::IdxSplit write_fashion_subset(const dtokd::ImageDataset &d, int64_t n, const fs::path &folder) {
    dtokd_test::IdxSplit idx;
    for (int k = 0; k < 10; k++) fs::create_directories(folder / std::to_string(k));
    for (int64_t i = 0; i < n; i++) {
        const at::Tensor img = d.images[i].contiguous();
        const uint8_t *px = img.data_ptr<uint8_t>();
        idx.pixels.insert(idx.pixels.end(), px, px + 28 * 28);
        const int64_t label = d.labels[i].item<int64_t>();
        idx.labels.push_back(uint8_t(label));
        dtokd::write_bytes((folder / std::to_string(label) / (std::to_string(i) + ".png")).string(),
                           dtokd::encode_png(px, 28, 28, 1));
    }
    return idx;
}

// The same Fashion-MNIST images through the IDX reader and as PNG folders, with the IDX
// normalization and an identity crop (so the inputs are the same pixels): only the data
// order differs (folders list images by class), so the accuracies agree within noise.
TEST_F(FolderCli, FashionMnistAsPngFoldersTrainsLikeTheIdxFiles) {
    if (dtokd::default_fashion_mnist_dir().empty()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const dtokd::DatasetPair fm = dtokd::load_dataset("fashion-mnist", "");
    const fs::path idx = root_->path() / "idx", png = root_->path() / "png";
    fs::create_directories(idx);
    const dtokd_test::IdxSplit train = write_fashion_subset(fm.train, 6000, png / "train");
    const dtokd_test::IdxSplit test = write_fashion_subset(fm.test, 1000, png / "val");
    dtokd_test::write_idx_dataset(idx.string(), train, test, 28, 28, false);
    const std::string common = "--threads 1 train --model cnn_small --epochs 2 --no-progress ";
    const std::string a = (root_->path() / "a").string(), b = (root_->path() / "b").string();
    const CliResult ri = run_cli(common + "--dataset fashion-mnist --data " + quoted(idx.string()) + " --out " + quoted(a));
    ASSERT_EQ(ri.code, 0) << ri.output;
    const CliResult rf = run_cli(common + "--dataset folder --data " + quoted(png.string()) +
                                 " --image-size 28 --center-crop-fraction 1 --mean 0.2860 --std 0.3530 --out " + quoted(b));
    ASSERT_EQ(rf.code, 0) << rf.output;
    const double acc_idx = Json::parse(slurp(a + "/summary.json"))["final_test_accuracy"];
    const double acc_png = Json::parse(slurp(b + "/summary.json"))["final_test_accuracy"];
    std::cout << "[ measured ] 6000 train / 1000 test, 2 epochs: IDX " << acc_idx << ", PNG folders " << acc_png << "\n";
    EXPECT_GT(acc_idx, 0.7);
    EXPECT_NEAR(acc_png, acc_idx, 0.03);
}

// pipelines/configs/image_folder.toml as its comment says: a teacher, then a DTO student.
TEST_F(FolderCli, TheTemplateConfigTrainsATeacherAndDistillsAStudent) {
    const std::string config = quoted(std::string(DTOKD_SOURCE_DIR) + "/pipelines/configs/image_folder.toml");
    const std::string small = " --data " + quoted(data_.string()) + " --batch-size 8 --max-steps 2 --epochs 1 --no-progress";
    const std::string teacher = (root_->path() / "teacher").string(), student = (root_->path() / "student").string();
    const CliResult t = run_cli("--threads 1 train --config " + config + small + " --out " + quoted(teacher));
    ASSERT_EQ(t.code, 0) << t.output;
    const CliResult d = run_cli("--threads 1 distill --config " + config + small + " --teacher " +
                                quoted(teacher + "/checkpoint.pt") + " --model resnet8x4 --method dto --out " +
                                quoted(student));
    ASSERT_EQ(d.code, 0) << d.output;
    const Json summary = Json::parse(slurp(student + "/summary.json"));
    EXPECT_EQ(summary["classes"], Json({"bright", "dark", "mid"}));
    EXPECT_EQ(summary["steps"], 2);
    EXPECT_EQ(dtokd::read_checkpoint_meta(student + "/checkpoint.pt").height, 32);
}

// The options DtokdCli.TheResolvedConfigHasEveryOption leaves to this test: a folder run
// with a train fraction records each of them, and the run reads back from its config.
TEST_F(FolderCli, ItsConfigRecordsEveryFolderOption) {
    const std::string run = (root_->path() / "cfg").string(), again = (root_->path() / "again").string();
    const CliResult r = run_cli(train_args(data_, "--mean 0.4,0.4,0.4 --std 0.2,0.2,0.2 --train-fraction 0.5 --subset-seed 3 "
                                                  "--channels 3 --max-steps 2 --out " + quoted(run), 1));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::string config = slurp(run + "/config.toml");
    for (const char *key : {"image-size = 16", "channels = 3", "center-crop-fraction = 0.875", "min-crop-scale = 0.08",
                            "mean = [", "std = [", "skip-bad-images = false", "train-fraction = 0.5", "subset-seed = 3"})
        EXPECT_TRUE(contains(config, std::string("\n") + key)) << key << " is not in:\n" << config;
    const CliResult a = run_cli("--threads 1 train --config " + quoted(run + "/config.toml") + " --out " + quoted(again));
    ASSERT_EQ(a.code, 0) << a.output;
    EXPECT_EQ(learning_curve(run), learning_curve(again));
    EXPECT_EQ(Json::parse(slurp(again + "/summary.json"))["train_samples"], 18);  // half of 3 x 12
}

TEST_F(FolderCli, FolderOptionsWithABuiltInDatasetAreAnError) {
    const CliResult r = run_cli("train --dataset fashion-mnist --image-size 64 --out " +
                                quoted((root_->path() / "x").string()));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "image-size applies to image folders")) << r.output;
    const CliResult help = run_cli("train --help");
    for (const char *opt : {"--image-size", "--channels", "--center-crop-fraction", "--min-crop-scale", "--mean",
                            "--std", "--skip-bad-images", "--workers"})
        EXPECT_TRUE(contains(help.output, opt)) << opt;
}

}  // namespace
