// pipelines/model_handle load_teacher: TorchScript teachers written by PyTorch
// (Debian's python3-torch at /usr/bin/python3, run here) give the same logits in
// dtokd as in PyTorch, and, when they return (logits, dict) as mdistiller's models
// do, the same features; a malformed output, a class-count or input-shape mismatch,
// for TorchScript and for dtokd checkpoint teachers, is one clear error raised before
// any training (run_training creates no run folder).
#include <torch/script.h>
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "cuda_tagged_archive.h"
#include "model_factory.h"
#include "model_handle.h"
#include "scratch_data.h"
#include "train_config.h"
#include "trainer.h"

namespace {

using namespace dtokd_test;

// Not the `python3` on PATH (a pyenv without torch): Debian's python3-torch.
constexpr const char *kPython = "/usr/bin/python3";

// Writes, into argv[1]: linear.pt (Flatten + Linear(784, 10), 1x28x28 -> 10),
// rgb.pt (Conv2d(3, 10, 28) + Flatten, 3x28x28 -> 10), feats.pt (mdistiller's
// (logits, {"feats", "preact_feats", "pooled_feat"}) form), pooled.pt ((logits,
// {"pooled"}) only), five malformed outputs (bad_*.pt), and for linear.pt and
// feats.pt a fixed input and PyTorch's outputs as raw little-endian float32.
constexpr const char *kScript = R"PY(
import struct, sys, torch
from typing import Any, Dict, List
out = sys.argv[1]
torch.manual_seed(0)
linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
torch.jit.save(torch.jit.script(linear), out + "/linear.pt")
rgb = torch.nn.Sequential(torch.nn.Conv2d(3, 10, 28), torch.nn.Flatten()).eval()
torch.jit.save(torch.jit.script(rgb), out + "/rgb.pt")

class WithFeats(torch.nn.Module):  # a stem and one stage, as mdistiller's forward returns them
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(6, 10)
    def forward(self, x):
        f0 = torch.relu(self.stem(x))
        f1_pre = self.conv(f0)
        f1 = torch.relu(f1_pre)
        avg = f1.mean([2, 3])
        feats: Dict[str, Any] = {}
        feats["feats"] = [f0, f1]
        feats["preact_feats"] = [f0, f1_pre]
        feats["pooled_feat"] = avg
        return self.fc(avg), feats

class PooledOnly(torch.nn.Module):  # the "pooled" spelling, no stage lists
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
    def forward(self, x):
        flat = x.flatten(1)
        d: Dict[str, torch.Tensor] = {"pooled": flat}
        return self.fc(flat), d

class Base(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)

class BadTuple(Base):  # a tuple without a dict
    def forward(self, x):
        y = self.fc(x.flatten(1))
        return y, y

class BadFeatsTensor(Base):  # a tensor where a list belongs
    def forward(self, x):
        y = self.fc(x.flatten(1))
        d: Dict[str, torch.Tensor] = {"feats": y}
        return y, d

class BadNoKeys(Base):  # none of the feature keys
    def forward(self, x):
        y = self.fc(x.flatten(1))
        d: Dict[str, torch.Tensor] = {"logits_again": y}
        return y, d

class BadBatch(Base):  # not per sample: [1, 28, 28] for any batch
    def forward(self, x):
        y = self.fc(x.flatten(1))
        d: Dict[str, List[torch.Tensor]] = {"feats": [x.sum(0)]}
        return y, d

class BadList(Base):  # a list, neither logits nor (logits, dict)
    def forward(self, x):
        return [self.fc(x.flatten(1))]

with_feats = WithFeats().eval()
torch.jit.save(torch.jit.script(with_feats), out + "/feats.pt")
torch.jit.save(torch.jit.script(PooledOnly().eval()), out + "/pooled.pt")
for name, cls in [("tuple", BadTuple), ("feats_tensor", BadFeatsTensor), ("no_keys", BadNoKeys),
                  ("batch", BadBatch), ("list", BadList)]:
    torch.jit.save(torch.jit.script(cls().eval()), out + "/bad_" + name + ".pt")

x = torch.randn(3, 1, 28, 28)
with torch.no_grad():
    y = linear(x)
    fy, fd = with_feats(x)
def put(name, t):
    v = t.contiguous().view(-1).tolist()
    with open(out + "/" + name, "wb") as f:
        f.write(struct.pack("<%df" % len(v), *v))
put("input.f32", x)
put("expected.f32", y)
put("feats_logits.f32", fy)
put("feats_f1.f32", fd["feats"][1])
put("feats_f1_pre.f32", fd["preact_feats"][1])
put("feats_pooled.f32", fd["pooled_feat"])
)PY";

torch::Tensor read_f32(const std::string &path, std::vector<int64_t> shape) {
    const Bytes b = read_bytes(path);
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    EXPECT_EQ(b.size(), size_t(t.numel()) * 4) << path;
    std::memcpy(t.data_ptr<float>(), b.data(), std::min(b.size(), size_t(t.numel()) * 4));
    return t;
}

class TorchScriptTeacher : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new ScratchDir("tsteacher");
        if (std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
            skip_reason_ = std::string(kPython) + " cannot import torch (install python3-torch: scripts/setup.sh)";
            return;
        }
        write_bytes(*dir_ / "make_teachers.py", Bytes(kScript, kScript + std::strlen(kScript)));
        const std::string cmd = std::string(kPython) + " " + (*dir_ / "make_teachers.py") + " " + dir_->str() + " 2>&1";
        if (std::system(cmd.c_str()) != 0) failure_ = "the TorchScript export script failed: " + cmd;
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    void SetUp() override {
        if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
        ASSERT_TRUE(failure_.empty()) << failure_;
    }
    static std::string path(const std::string &name) { return *dir_ / name; }

    static ScratchDir *dir_;
    static std::string skip_reason_, failure_;
};
ScratchDir *TorchScriptTeacher::dir_ = nullptr;
std::string TorchScriptTeacher::skip_reason_, TorchScriptTeacher::failure_;

TEST_F(TorchScriptTeacher, LogitsMatchPyTorch) {
    dtokd::ModelHandle h = dtokd::load_teacher(path("linear.pt"), 1, 28, 28, 10);
    EXPECT_EQ(h.name, "torchscript:" + path("linear.pt"));
    EXPECT_EQ(h.num_classes, 10);
    EXPECT_EQ(h.module, nullptr);
    const torch::Tensor x = read_f32(path("input.f32"), {3, 1, 28, 28});
    const torch::Tensor expected = read_f32(path("expected.f32"), {3, 10});
    torch::NoGradGuard no_grad;
    const torch::Tensor y = h.forward(x);
    ASSERT_EQ(y.sizes(), expected.sizes());
    EXPECT_LT((y - expected).abs().max().item<double>(), 1e-5);
    EXPECT_GT(expected.abs().max().item<double>(), 1e-3);  // a real output, not zeros
}

// A TorchScript teacher saved from a CUDA module (storages tagged cuda:0) loads on this
// CPU-only LibTorch (torch::jit::load with map_location CPU) and gives the same logits.
TEST_F(TorchScriptTeacher, CudaSavedTorchScriptLoadsOnCpu) {
    const Bytes file = read_bytes(path("linear.pt"));
    const std::string tagged = retag_archive_to_cuda(std::string(file.begin(), file.end()));
    write_bytes(path("linear_cuda.pt"), Bytes(tagged.begin(), tagged.end()));
    EXPECT_ANY_THROW(torch::jit::load(path("linear_cuda.pt"))) << "the helper tagged nothing";
    dtokd::ModelHandle h = dtokd::load_teacher(path("linear_cuda.pt"), 1, 28, 28, 10);
    const torch::Tensor x = read_f32(path("input.f32"), {3, 1, 28, 28});
    const torch::Tensor expected = read_f32(path("expected.f32"), {3, 10});
    torch::NoGradGuard no_grad;
    EXPECT_LT((h.forward(x) - expected).abs().max().item<double>(), 1e-5);
}

TEST_F(TorchScriptTeacher, ClassCountMismatch) {
    expect_error([] { dtokd::load_teacher(path("linear.pt"), 1, 28, 28, 7); },
                 {path("linear.pt"), "[2, 10]", "expected [2, 7]", "7 classes"});
}

TEST_F(TorchScriptTeacher, InputShapeMismatch) {
    // rgb.pt takes 3 channels; the data has 1.
    expect_error([] { dtokd::load_teacher(path("rgb.pt"), 1, 28, 28, 10); }, {path("rgb.pt"), "1x28x28"});
    EXPECT_NO_THROW(dtokd::load_teacher(path("rgb.pt"), 3, 28, 28, 10));
    // Flatten + Linear(784) cannot take 3x32x32 either.
    expect_error([] { dtokd::load_teacher(path("linear.pt"), 3, 32, 32, 10); }, {path("linear.pt"), "3x32x32"});
}

TEST_F(TorchScriptTeacher, LogitsOnlyTeacherGivesNoFeatures) {
    dtokd::ModelHandle h = dtokd::load_teacher(path("linear.pt"), 1, 28, 28, 10);
    EXPECT_FALSE(h.gives_features());
    const dtokd::FeatureRequest feats{/*feats=*/true, /*preact_feats=*/false, /*pooled=*/false};
    expect_error([&] { dtokd::check_gives_features(h, feats); },
                 {path("linear.pt"), "does not give the intermediate features feats", "it gives: none"});
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 1, 28, 28});
    expect_error([&] { h.forward_features(x, feats); }, {path("linear.pt"), "does not give"});
    EXPECT_TRUE(torch::equal(h.forward_features(x, {}).logits, h.forward(x)));
}

TEST_F(TorchScriptTeacher, DictOutputGivesTheFeatures) {
    dtokd::ModelHandle h = dtokd::load_teacher(path("feats.pt"), 1, 28, 28, 10);
    EXPECT_TRUE(h.gives_features());
    EXPECT_TRUE(h.feature_taps.feats && h.feature_taps.preact_feats && h.feature_taps.pooled);
    const torch::Tensor x = read_f32(path("input.f32"), {3, 1, 28, 28});
    torch::NoGradGuard no_grad;
    const dtokd::ModelOutputs out =
        h.forward_features(x, dtokd::FeatureRequest{/*feats=*/true, /*preact_feats=*/true, /*pooled=*/true});
    // Two entries each: the stem [3, 4, 28, 28] and the stride-2 stage [3, 6, 14, 14].
    ASSERT_EQ(out.feats.size(), 2u);
    ASSERT_EQ(out.preact_feats.size(), 2u);
    EXPECT_EQ(out.feats[0].sizes(), (std::vector<int64_t>{3, 4, 28, 28}));
    const auto close = [](const torch::Tensor &a, const torch::Tensor &b) {
        return a.sizes() == b.sizes() && (a - b).abs().max().item<double>() < 1e-5;
    };
    EXPECT_TRUE(close(out.logits, read_f32(path("feats_logits.f32"), {3, 10})));
    EXPECT_TRUE(close(out.feats[1], read_f32(path("feats_f1.f32"), {3, 6, 14, 14})));
    EXPECT_TRUE(close(out.preact_feats[1], read_f32(path("feats_f1_pre.f32"), {3, 6, 14, 14})));
    EXPECT_TRUE(close(out.pooled, read_f32(path("feats_pooled.f32"), {3, 6})));
    EXPECT_TRUE(torch::equal(h.forward(x), out.logits));
    // Only what is asked for comes back.
    const dtokd::ModelOutputs pooled_only =
        h.forward_features(x, dtokd::FeatureRequest{/*feats=*/false, /*preact_feats=*/false, /*pooled=*/true});
    EXPECT_TRUE(pooled_only.feats.empty());
    EXPECT_TRUE(pooled_only.preact_feats.empty());
    EXPECT_TRUE(pooled_only.pooled.defined());
}

TEST_F(TorchScriptTeacher, PooledSpellingAndPartialDicts) {
    dtokd::ModelHandle h = dtokd::load_teacher(path("pooled.pt"), 1, 28, 28, 10);
    EXPECT_TRUE(h.gives_features());
    EXPECT_FALSE(h.feature_taps.feats);
    EXPECT_FALSE(h.feature_taps.preact_feats);
    EXPECT_TRUE(h.feature_taps.pooled);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 1, 28, 28});
    const dtokd::FeatureRequest pooled{/*feats=*/false, /*preact_feats=*/false, /*pooled=*/true};
    EXPECT_EQ(h.forward_features(x, pooled).pooled.sizes(), (std::vector<int64_t>{2, 784}));
    expect_error([&] { dtokd::check_gives_features(h, {/*feats=*/false, /*preact_feats=*/true, /*pooled=*/true}); },
                 {path("pooled.pt"), "features preact_feats", "it gives: pooled"});
}

TEST_F(TorchScriptTeacher, MalformedOutputIsOneClearError) {
    const std::pair<const char *, const char *> cases[] = {
        {"bad_tuple.pt", "is Tuple[Tensor, Tensor]"},
        {"bad_feats_tensor.pt", "has 'feats' of type Tensor, not a non-empty list of tensors"},
        {"bad_no_keys.pt", "holds none of the feature keys (its keys: 'logits_again')"},
        {"bad_batch.pt", "feats[0] of shape [1, 28, 28] for a batch of 2"},
        {"bad_list.pt", "is List[Tensor]"},
    };
    for (const auto &[file, what] : cases)
        expect_error([&] { dtokd::load_teacher(path(file), 1, 28, 28, 10); },
                     {path(file), what, "expected logits [B, classes], or a tuple (logits, dict)", "'pooled_feat'"});
}

TEST(TeacherImport, CheckpointTeacherGivesFeatures) {
    ScratchDir dir("ckfeats");
    torch::manual_seed(6);
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::CheckpointMeta meta;
    meta.model_name = "cnn_small";
    meta.num_classes = 10;
    meta.in_channels = 1;
    meta.height = 28;
    meta.width = 28;
    dtokd::save_checkpoint(dir / "t.pt", *model, meta, {});
    dtokd::ModelHandle h = dtokd::load_teacher(dir / "t.pt", 1, 28, 28, 10);
    EXPECT_TRUE(h.gives_features());
    const dtokd::FeatureRequest all{/*feats=*/true, /*preact_feats=*/true, /*pooled=*/true};
    EXPECT_NO_THROW(dtokd::check_gives_features(h, all));
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 1, 28, 28});
    const dtokd::ModelOutputs got = h.forward_features(x, all), want = model->forward_features(x, all);
    ASSERT_EQ(got.feats.size(), want.feats.size());
    for (size_t i = 0; i < got.feats.size(); i++) EXPECT_TRUE(torch::equal(got.feats[i], want.feats[i])) << i;
    EXPECT_TRUE(torch::equal(got.pooled, want.pooled));
    EXPECT_TRUE(torch::equal(got.logits, h.forward(x)));
}

TEST(TeacherImport, MissingAndUnrecognizedFiles) {
    ScratchDir dir("teacherbad");
    expect_error([&] { dtokd::load_teacher(dir / "absent.pt", 1, 28, 28, 10); }, {dir / "absent.pt", "not found"});
    write_bytes(dir / "junk.pt", random_bytes(500, 3));
    expect_error([&] { dtokd::load_teacher(dir / "junk.pt", 1, 28, 28, 10); },
                 {dir / "junk.pt", "neither a dtokd checkpoint nor a TorchScript file"});
}

dtokd::CheckpointMeta meta_for(const std::string &model, int classes, int channels, int size) {
    dtokd::CheckpointMeta m;
    m.model_name = model;
    m.num_classes = classes;
    m.in_channels = channels;
    m.height = size;
    m.width = size;
    return m;
}

TEST(TeacherImport, CheckpointTeacherLoadsInEvalMode) {
    ScratchDir dir("ckteacher");
    torch::manual_seed(5);
    auto model = dtokd::make_model("cnn_small", 1, 10);
    {
        // Non-default running stats so train/eval outputs differ.
        torch::NoGradGuard no_grad;
        for (auto &b : model->named_buffers(true))
            if (b.value().is_floating_point()) b.value().copy_(torch::rand_like(b.value()) + 0.5);
    }
    dtokd::save_checkpoint(dir / "t.pt", *model, meta_for("cnn_small", 10, 1, 28), {});
    dtokd::ModelHandle h = dtokd::load_teacher(dir / "t.pt", 1, 28, 28, 10);
    EXPECT_EQ(h.name, "cnn_small");
    ASSERT_NE(h.module, nullptr);
    EXPECT_FALSE(h.module->is_training());
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({4, 1, 28, 28});
    EXPECT_TRUE(torch::allclose(h.forward(x), model->forward(x), /*rtol=*/0, /*atol=*/1e-6));
}

// Every method that reads teacher features, with a logits-only TorchScript teacher: one
// error naming the objective and the teacher file, before any run folder exists.
TEST_F(TorchScriptTeacher, FeatureMethodsNeedATeacherThatGivesFeatures) {
    ScratchDir dir("tsfeatmethods");
    fs::create_directories(dir / "data");
    const IdxSplit s = random_idx_split(16, 28, 28, 10, 2);
    write_idx_dataset(dir / "data", s, s, 28, 28, false);
    for (const std::string method : {"fitnet", "at", "pkt", "rkd", "rkd_angle", "ofd", "crd", "reviewkd"}) {
        SCOPED_TRACE(method);
        dtokd::TrainConfig cfg;
        cfg.dataset = "mnist";
        cfg.data_dir = dir / "data";
        cfg.model = "cnn_small";
        cfg.method = "dto";
        cfg.objectives = {method, "ce"};
        cfg.teacher = path("linear.pt");
        cfg.max_steps = 1;
        cfg.batch_size = 8;
        cfg.progress = false;
        cfg.out = dir / ("run-" + method);
        try {
            dtokd::run_training(cfg, "");
            ADD_FAILURE() << "expected std::invalid_argument";
        } catch (const std::invalid_argument &e) {
            for (const std::string &part : {"'" + method + "'", path("linear.pt"), std::string("features")})
                EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
        }
        EXPECT_FALSE(fs::exists(cfg.out));
        EXPECT_FALSE(fs::exists(cfg.out + ".partial"));
    }
}

TEST(TeacherImport, CheckpointTeacherMismatchFailsBeforeTraining) {
    ScratchDir dir("ckmismatch");
    dtokd::save_checkpoint(dir / "seven.pt", *dtokd::make_model("cnn_small", 1, 7), meta_for("cnn_small", 7, 1, 28),
                           {});
    dtokd::save_checkpoint(dir / "rgb.pt", *dtokd::make_model("cnn_small", 3, 10), meta_for("cnn_small", 10, 3, 32),
                           {});
    expect_error([&] { dtokd::load_teacher(dir / "seven.pt", 1, 28, 28, 10); },
                 {dir / "seven.pt", "cnn_small", "has 7 classes", "the data has 10"});
    expect_error([&] { dtokd::load_teacher(dir / "rgb.pt", 1, 28, 28, 10); },
                 {dir / "rgb.pt", "takes 3x32x32", "data is 1x28x28"});

    // Through the trainer: the error comes before the run folder exists.
    fs::create_directories(dir / "data");
    const IdxSplit s = random_idx_split(16, 28, 28, 10, 2);
    write_idx_dataset(dir / "data", s, s, 28, 28, false);
    dtokd::TrainConfig cfg;
    cfg.dataset = "mnist";
    cfg.data_dir = dir / "data";
    cfg.model = "cnn_small";
    cfg.method = "dto";
    cfg.teacher = dir / "seven.pt";
    cfg.epochs = 1;
    cfg.max_steps = 1;
    cfg.batch_size = 8;
    cfg.progress = false;
    cfg.out = dir / "run";
    expect_error([&] { dtokd::run_training(cfg, ""); }, {dir / "seven.pt", "has 7 classes"});
    EXPECT_FALSE(fs::exists(dir / "run"));
    EXPECT_FALSE(fs::exists(dir / "run.partial"));
    EXPECT_FALSE(fs::exists(dir / "cache"));
}

}  // namespace
