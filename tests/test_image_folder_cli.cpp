// `--dataset folder` end to end through the dtokd binary: a folder of PNG and JPEG
// files of several sizes, grey and colour, with unreadable files; the class list in the
// checkpoint; teachers and evaluation sets of other classes; worker counts and resume.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>

#include "checkpoint.h"
#include "cli_runner.h"
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
