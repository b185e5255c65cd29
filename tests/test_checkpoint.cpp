// pipelines/checkpoint: a cnn_small checkpoint round-trips parameters, buffers,
// optimizer state and every meta field; loading copies in place (storage kept);
// unreadable, foreign, wrong-version and wrong-shape files give one clear error;
// saves are atomic (no temp files left, nothing created in a missing folder, a
// failed replace keeps the old target).
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "cuda_tagged_archive.h"
#include "model_factory.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;
using dtokd::CheckpointMeta;

CheckpointMeta sample_meta() {
    CheckpointMeta m;
    m.model_name = "cnn_small";
    m.num_classes = 10;
    m.in_channels = 1;
    m.height = 28;
    m.width = 28;
    m.epoch = 3;
    m.step = 1234;
    m.config = "model = \"cnn_small\"\nlr = 0.05\n# unicode: \xc3\xa9\n";
    m.optimizer_kind = "adamw";
    m.optimizer_steps = 1233;
    return m;
}

void expect_same_meta(const CheckpointMeta &a, const CheckpointMeta &b) {
    EXPECT_EQ(a.model_name, b.model_name);
    EXPECT_EQ(a.num_classes, b.num_classes);
    EXPECT_EQ(a.in_channels, b.in_channels);
    EXPECT_EQ(a.height, b.height);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.epoch, b.epoch);
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.config, b.config);
    EXPECT_EQ(a.optimizer_kind, b.optimizer_kind);
    EXPECT_EQ(a.optimizer_steps, b.optimizer_steps);
}

// A cnn_small whose buffers (BatchNorm running stats, batch counts) are not the
// fresh defaults, so a round trip that skipped buffers would be caught.
std::shared_ptr<dtokd::ClassifierImpl> trained_looking_cnn_small(uint64_t seed) {
    torch::manual_seed(seed);
    auto m = dtokd::make_model("cnn_small", 1, 10);
    torch::NoGradGuard no_grad;
    for (auto &b : m->named_buffers(true)) {
        if (b.value().is_floating_point())
            b.value().copy_(torch::rand_like(b.value()) + 0.5);
        else
            b.value().fill_(int64_t(seed) + 7);
    }
    return m;
}

TEST(Checkpoint, RoundTripsWeightsBuffersOptimizerStateAndMeta) {
    ScratchDir dir("ckpt");
    const std::string path = dir / "checkpoint.pt";
    auto saved = trained_looking_cnn_small(1);
    ASSERT_GT(saved->named_buffers(true).size(), 0u) << "cnn_small has BatchNorm buffers";
    torch::manual_seed(2);
    const std::vector<at::Tensor> opt_state = {torch::randn({8, 1, 3, 3}), torch::randn({10}),
                                               torch::arange(5, torch::kLong), torch::randn({})};
    const std::vector<std::pair<std::string, at::Tensor>> objective_state = {
        {"fitnet.conv.weight", torch::randn({4, 2, 1, 1})}, {"crd.memory_s", torch::randn({6, 3})}};
    dtokd::CheckpointEntries state;
    for (size_t i = 0; i < opt_state.size(); i++) state.emplace_back("optimizer/" + std::to_string(i), opt_state[i]);
    for (const auto &[key, t] : objective_state) state.emplace_back("objective/" + key, t);
    state.emplace_back("loop/rng", torch::arange(3, torch::kByte));
    dtokd::save_checkpoint(path, *saved, sample_meta(), state);
    ASSERT_TRUE(fs::exists(path));
    const auto objective_loaded = dtokd::read_objective_state(path);
    ASSERT_EQ(objective_loaded.size(), objective_state.size());
    for (const auto &[key, t] : objective_state) {
        auto it = std::find_if(objective_loaded.begin(), objective_loaded.end(),
                               [&](const auto &e) { return e.first == key; });
        ASSERT_NE(it, objective_loaded.end()) << key;
        EXPECT_TRUE(torch::equal(it->second, t)) << key;
    }
    EXPECT_TRUE(dtokd::is_dtokd_checkpoint(path));
    expect_same_meta(dtokd::read_checkpoint_meta(path), sample_meta());

    auto loaded = trained_looking_cnn_small(99);
    // Different before loading (otherwise the test proves nothing).
    EXPECT_FALSE(torch::equal(loaded->named_parameters()["fc.weight"], saved->named_parameters()["fc.weight"]));
    std::map<std::string, const void *> storage_before;
    for (const auto &p : loaded->named_parameters(true)) storage_before[p.key()] = p.value().data_ptr();
    for (const auto &b : loaded->named_buffers(true)) storage_before[b.key()] = b.value().data_ptr();

    dtokd::CheckpointEntries state_loaded = {{"stale", torch::ones({1})}};  // replaced, not appended to
    const CheckpointMeta meta = dtokd::load_checkpoint(path, *loaded, &state_loaded);
    expect_same_meta(meta, sample_meta());

    const auto sp = saved->named_parameters(true), lp = loaded->named_parameters(true);
    ASSERT_EQ(sp.size(), lp.size());
    for (const auto &p : sp) {
        EXPECT_TRUE(torch::equal(p.value(), lp[p.key()])) << p.key();
        EXPECT_EQ(lp[p.key()].data_ptr(), storage_before[p.key()]) << p.key() << " was replaced, not copied into";
        EXPECT_TRUE(lp[p.key()].requires_grad()) << p.key();
    }
    const auto sb = saved->named_buffers(true), lb = loaded->named_buffers(true);
    ASSERT_EQ(sb.size(), lb.size());
    for (const auto &b : sb) {
        EXPECT_TRUE(torch::equal(b.value(), lb[b.key()])) << b.key();
        EXPECT_EQ(lb[b.key()].data_ptr(), storage_before[b.key()]) << b.key();
    }
    ASSERT_EQ(state_loaded.size(), state.size());  // every entry, nothing else (no weights, no metadata)
    std::map<std::string, at::Tensor> by_key(state_loaded.begin(), state_loaded.end());
    for (const auto &[key, t] : state) {
        ASSERT_TRUE(by_key.count(key)) << key;
        EXPECT_EQ(by_key[key].scalar_type(), t.scalar_type()) << key;
        EXPECT_TRUE(torch::equal(by_key[key], t)) << key;
    }
    // A state key that would shadow the weights or the metadata is refused.
    EXPECT_THROW(dtokd::save_checkpoint(dir / "x.pt", *saved, sample_meta(), {{"param/fc.weight", torch::ones({1})}}),
                 std::invalid_argument);
    EXPECT_THROW(dtokd::save_checkpoint(dir / "x.pt", *saved, sample_meta(), {{"epoch", torch::ones({1})}}),
                 std::invalid_argument);
    // Same outputs in eval mode (running stats included).
    saved->eval();
    loaded->eval();
    const torch::Tensor x = torch::randn({3, 1, 28, 28});
    EXPECT_TRUE(torch::equal(saved->forward(x), loaded->forward(x)));
}

TEST(Checkpoint, LoadsIntoParametersViewingOneArena) {
    // The trainer's parameters are views of one flat buffer: loading must write
    // through the views, not rebind them.
    ScratchDir dir("ckptview");
    auto saved = trained_looking_cnn_small(3);
    dtokd::save_checkpoint(dir / "c.pt", *saved, sample_meta(), {});
    auto target = dtokd::make_model("cnn_small", 1, 10);
    int64_t total = 0;
    for (const auto &p : target->parameters()) total += p.numel();
    torch::Tensor flat = torch::zeros({total});
    {
        torch::NoGradGuard no_grad;
        int64_t off = 0;
        for (auto &p : target->parameters()) {
            p.set_data(flat.narrow(0, off, p.numel()).view(p.sizes()));
            off += p.numel();
        }
    }
    dtokd::CheckpointEntries none = {{"stale", torch::ones({2})}};
    dtokd::load_checkpoint(dir / "c.pt", *target, &none);
    EXPECT_TRUE(none.empty());
    int64_t off = 0;
    for (const auto &p : saved->parameters()) {
        EXPECT_TRUE(torch::equal(flat.narrow(0, off, p.numel()).view(p.sizes()), p));
        off += p.numel();
    }
}

// A checkpoint a CUDA run wrote (every storage tagged cuda:0) loads on this CPU-only
// LibTorch: archives are read with map_location CPU, then copied into the modules.
TEST(Checkpoint, CudaTaggedCheckpointLoadsOnCpu) {
    ScratchDir dir("ckptcuda");
    auto saved = trained_looking_cnn_small(5);
    const dtokd::CheckpointEntries state = {{"optimizer/0", torch::randn({8, 1, 3, 3})},
                                            {"loop/rng", torch::arange(4, torch::kByte)}};
    dtokd::save_checkpoint(dir / "cpu.pt", *saved, sample_meta(), state);
    const Bytes file = read_bytes(dir / "cpu.pt");
    const std::string framed(file.begin(), file.end());
    constexpr size_t kFrameBytes = 24;  // magic, payload length, checksum
    const std::string tagged = retag_archive_to_cuda(framed.substr(kFrameBytes));
    {
        // Without map_location this LibTorch would have to create CUDA tensors: the helper
        // really tagged them, so the test below cannot pass by rewriting nothing.
        torch::serialize::InputArchive raw;
        std::istringstream in(tagged);
        EXPECT_ANY_THROW(raw.load_from(in));
    }
    const std::string tagged_file = dtokd::frame_checkpoint_payload(tagged);
    write_bytes(dir / "cuda.pt", Bytes(tagged_file.begin(), tagged_file.end()));
    expect_same_meta(dtokd::read_checkpoint_meta(dir / "cuda.pt"), sample_meta());
    auto loaded = trained_looking_cnn_small(77);
    dtokd::CheckpointEntries state_loaded;
    dtokd::load_checkpoint(dir / "cuda.pt", *loaded, &state_loaded);
    for (const auto &p : saved->named_parameters(true))
        EXPECT_TRUE(torch::equal(p.value(), loaded->named_parameters()[p.key()])) << p.key();
    for (const auto &b : saved->named_buffers(true))
        EXPECT_TRUE(torch::equal(b.value(), loaded->named_buffers()[b.key()])) << b.key();
    ASSERT_EQ(state_loaded.size(), state.size());
    for (size_t i = 0; i < state.size(); i++) {
        EXPECT_EQ(state_loaded[i].first, state[i].first);
        EXPECT_TRUE(state_loaded[i].second.is_cpu());
        EXPECT_TRUE(torch::equal(state_loaded[i].second, state[i].second)) << state[i].first;
    }
}

TEST(Checkpoint, MissingGarbageTruncatedAndForeignFiles) {
    ScratchDir dir("ckpterr");
    const std::string missing = dir / "absent.pt";
    expect_error([&] { dtokd::read_checkpoint_meta(missing); }, {missing, "not found"});
    EXPECT_FALSE(dtokd::is_dtokd_checkpoint(missing));

    const std::string garbage = dir / "garbage.pt";
    write_bytes(garbage, random_bytes(3000, 4));
    expect_error([&] { dtokd::read_checkpoint_meta(garbage); }, {garbage, "unreadable"});
    EXPECT_FALSE(dtokd::is_dtokd_checkpoint(garbage));

    const std::string whole = dir / "whole.pt", cut = dir / "cut.pt";
    dtokd::save_checkpoint(whole, *dtokd::make_model("cnn_small", 1, 10), sample_meta(), {});
    const Bytes bytes = read_bytes(whole);
    write_bytes(cut, Bytes(bytes.begin(), bytes.begin() + long(bytes.size() / 2)));
    expect_error([&] { dtokd::read_checkpoint_meta(cut); }, {cut, "truncated"});
    auto model = dtokd::make_model("cnn_small", 1, 10);
    expect_error([&] { dtokd::load_checkpoint(cut, *model); }, {cut, "truncated"});

    // A LibTorch archive, but not one dtokd wrote.
    const std::string foreign = dir / "foreign.pt";
    torch::serialize::OutputArchive ar;
    ar.write("weight", torch::randn({4}));
    ar.save_to(foreign);
    expect_error([&] { dtokd::read_checkpoint_meta(foreign); }, {foreign, "not a dtokd checkpoint"});
    expect_error([&] { dtokd::load_checkpoint(foreign, *model); }, {foreign, "not a dtokd checkpoint"});
    EXPECT_FALSE(dtokd::is_dtokd_checkpoint(foreign));

    // A future format version.
    const std::string future = dir / "future.pt";
    torch::serialize::OutputArchive v2;
    v2.write("dtokd_format_version", torch::scalar_tensor(dtokd::kCheckpointFormatVersion + 1, torch::kLong));
    v2.save_to(future);
    expect_error([&] { dtokd::read_checkpoint_meta(future); },
                 {future, "version " + std::to_string(dtokd::kCheckpointFormatVersion + 1),
                  "reads version " + std::to_string(dtokd::kCheckpointFormatVersion)});
}

// Fuzz regression (fuzz_checkpoint's oracle on the seeds fuzz/corpus/checkpoint/
// invalid-payload-*): an archive that verifies (or a bare version-1 one) but lacks an entry
// or holds one of the wrong kind escaped as c10::Error ("No such serialized tensor
// 'model_name'", "a Tensor with 2 elements cannot be converted to Scalar"), without the
// file's name. Now one std::runtime_error naming the file, the entry and what was expected.
TEST(Checkpoint, FuzzRegressionMissingOrMalformedEntriesAreOneError) {
    ScratchDir dir("ckptentry");
    auto framed = [&](const std::string &name, const std::function<void(torch::serialize::OutputArchive &)> &fill) {
        torch::serialize::OutputArchive ar;
        fill(ar);
        std::ostringstream os;
        ar.save_to(os);
        const std::string file = dtokd::frame_checkpoint_payload(os.str());
        const std::string path = dir / name;
        write_bytes(path, Bytes(file.begin(), file.end()));
        return path;
    };
    const at::Tensor v2 = torch::scalar_tensor(dtokd::kCheckpointFormatVersion, torch::kLong);
    const std::string only_version = framed("only-version.pt", [&](auto &ar) { ar.write("dtokd_format_version", v2); });
    expect_error([&] { dtokd::read_checkpoint_meta(only_version); },
                 {only_version, "checkpoint entry 'model_name' is missing"});
    auto model = dtokd::make_model("cnn_small", 1, 10);
    expect_error([&] { dtokd::load_checkpoint(only_version, *model); }, {only_version, "'model_name' is missing"});
    expect_error([&] { dtokd::read_objective_state(only_version); }, {only_version, "'model_name' is missing"});

    const std::string not_int = framed("not-int.pt", [&](auto &ar) {
        ar.write("dtokd_format_version", v2);
        ar.write("model_name", torch::full({1}, 108, torch::kByte));
        ar.write("num_classes", torch::zeros({2}));
    });
    expect_error([&] { dtokd::read_checkpoint_meta(not_int); },
                 {not_int, "checkpoint entry 'num_classes' is a Float tensor of shape [2]; expected one integer"});
    const std::string not_text = framed("not-text.pt", [&](auto &ar) {
        ar.write("dtokd_format_version", v2);
        ar.write("model_name", torch::zeros({2, 2}));
    });
    expect_error([&] { dtokd::read_checkpoint_meta(not_text); },
                 {not_text, "'model_name' is a Float tensor of shape [2, 2]; expected text (1-d uint8)"});
    const std::string bad_version = framed("bad-version.pt", [&](auto &ar) { ar.write("dtokd_format_version", torch::ones({3})); });
    expect_error([&] { dtokd::read_checkpoint_meta(bad_version); }, {bad_version, "'dtokd_format_version' is a Float"});

    // A bare version-1 archive has no checksum: the same entries are checked.
    const std::string v1 = dir / "v1.pt";
    torch::serialize::OutputArchive bare;
    bare.write("dtokd_format_version", torch::scalar_tensor(1, torch::kLong));
    bare.write("model_name", torch::full({1}, 108, torch::kByte));
    bare.save_to(v1);
    expect_error([&] { dtokd::read_checkpoint_meta(v1); }, {v1, "'num_classes' is missing"});
}

// Fuzz regression (fuzz_checkpoint, mode 1: tests/data/fuzz-regressions/checkpoint/
// torchscript-class-constant-segv): a payload whose code/__torch__.py had "__parameters"
// changed to "ByteStorages", framed with a correct checksum, crashed the process (SEGV in
// LibTorch 1.13's ScriptTypeParser::parseClassConstant): LibTorch does not check the zip
// members' CRC-32. The reader now checks them first: one error naming the file and member.
TEST(Checkpoint, FuzzRegressionChangedTorchScriptSourceIsOneError) {
    ScratchDir dir("ckptcrc");
    const Bytes input = read_bytes(std::string(DTOKD_SOURCE_DIR) +
                                   "/tests/data/fuzz-regressions/checkpoint/torchscript-class-constant-segv");
    ASSERT_EQ(input.at(0), 1) << "a mode-1 input: the payload follows";
    const std::string payload(input.begin() + 1, input.end());
    ASSERT_NE(payload.find("ByteStorages__ = ["), std::string::npos);
    const std::string file = dtokd::frame_checkpoint_payload(payload);
    const std::string framed = dir / "framed.pt", bare = dir / "bare.pt";
    write_bytes(framed, Bytes(file.begin(), file.end()));
    expect_error([&] { dtokd::read_checkpoint_meta(framed); },
                 {framed, "corrupt zip archive: member 'archive/code/__torch__.py' fails its CRC-32"});
    EXPECT_TRUE(dtokd::is_dtokd_checkpoint(framed));  // framed: a dtokd checkpoint, a corrupt one
    // The same change in a bare archive (version 1 format: no checksum of ours).
    write_bytes(bare, Bytes(payload.begin(), payload.end()));
    expect_error([&] { dtokd::read_checkpoint_meta(bare); }, {bare, "fails its CRC-32"});
    EXPECT_FALSE(dtokd::is_dtokd_checkpoint(bare));
}

// Any changed byte, in the header or anywhere in the payload (metadata, weights, the
// archive's own zip records), is one error naming the file; never a silent load.
TEST(Checkpoint, AFlippedByteAnywhereIsOneError) {
    ScratchDir dir("ckptflip");
    const std::string whole = dir / "whole.pt", bad = dir / "bad.pt";
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::save_checkpoint(whole, *model, sample_meta(),
                           {{"optimizer/0", torch::ones({5})}, {"objective/fitnet.conv.weight", torch::ones({2})}});
    const Bytes bytes = read_bytes(whole);
    std::vector<size_t> offsets;
    for (size_t i = 0; i < 24; i++) offsets.push_back(i);                    // magic, length, checksum
    for (size_t i = 24; i < bytes.size(); i += bytes.size() / 400) offsets.push_back(i);  // the archive
    offsets.push_back(bytes.size() - 1);                                     // its end record
    for (const size_t at : offsets) {
        SCOPED_TRACE("byte " + std::to_string(at) + " of " + std::to_string(bytes.size()));
        Bytes flipped = bytes;
        flipped[at] = char(flipped[at] ^ 0x10);
        write_bytes(bad, flipped);
        auto target = dtokd::make_model("cnn_small", 1, 10);
        EXPECT_THROW(dtokd::load_checkpoint(bad, *target), std::runtime_error);
        try {
            dtokd::read_checkpoint_meta(bad);
            ADD_FAILURE() << "read without complaint";
        } catch (const std::runtime_error &e) {
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
    // A payload taken out of its frame (no checksum) is refused too.
    write_bytes(bad, Bytes(bytes.begin() + 24, bytes.end()));
    expect_error([&] { dtokd::read_checkpoint_meta(bad); }, {bad, "without its checksum"});
}

// The disk refuses the write (here: the file-size limit, which fails write() as a full
// disk does): one error naming the checkpoint, the previous one intact, no temp file left.
TEST(Checkpoint, AFailedWriteKeepsThePreviousCheckpoint) {
    ScratchDir dir("ckptfull");
    const std::string path = dir / "checkpoint.pt";
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::save_checkpoint(path, *model, sample_meta(), {});
    const Bytes before = read_bytes(path);
    struct rlimit old_limit {};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // as dtokd's main: EFBIG instead of a kill
    struct rlimit small = old_limit;
    small.rlim_cur = before.size() / 2;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    CheckpointMeta m = sample_meta();
    m.step = 777;
    std::string message;
    try {
        dtokd::save_checkpoint(path, *model, m, {});
    } catch (const std::runtime_error &e) {
        message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("write failed"), std::string::npos) << message;
    EXPECT_EQ(read_bytes(path), before);
    EXPECT_EQ(files_under(dir.path()), std::vector<std::string>{"checkpoint.pt"});
    EXPECT_EQ(dtokd::read_checkpoint_meta(path).step, sample_meta().step);
}

TEST(Checkpoint, ShapeMismatchNamesTheKeyAndBothShapes) {
    ScratchDir dir("ckptshape");
    const std::string path = dir / "small.pt";
    auto small = dtokd::make_model("cnn_small", 1, 10);
    dtokd::save_checkpoint(path, *small, sample_meta(), {});
    auto large = dtokd::make_model("cnn_large", 1, 10);
    const auto small_params = small->named_parameters(true);
    // The first parameter of cnn_large (load order) whose shape differs from cnn_small's.
    std::string key, small_shape, large_shape;
    for (const auto &p : large->named_parameters(true)) {
        const at::Tensor *s = small_params.find(p.key());
        ASSERT_NE(s, nullptr) << "cnn_small lacks " << p.key() << "; the test expects a shape mismatch first";
        if (s->sizes() != p.value().sizes()) {
            key = p.key();
            small_shape = c10::str(s->sizes());
            large_shape = c10::str(p.value().sizes());
            break;
        }
    }
    ASSERT_FALSE(key.empty());
    expect_error([&] { dtokd::load_checkpoint(path, *large); },
                 {path, "'param/" + key + "'", small_shape, large_shape});

    // Same shapes, another class count: the fc layer names the mismatch.
    auto eleven = dtokd::make_model("cnn_small", 1, 11);
    expect_error([&] { dtokd::load_checkpoint(path, *eleven); }, {path, "param/fc.", "[10", "[11"});
}

TEST(Checkpoint, SavesAtomically) {
    ScratchDir dir("ckptatomic");
    const std::string path = dir / "checkpoint.pt";
    auto a = dtokd::make_model("cnn_small", 1, 10);
    CheckpointMeta m = sample_meta();
    dtokd::save_checkpoint(path, *a, m, {});
    m.step = 5555;
    dtokd::save_checkpoint(path, *a, m, {{"optimizer/0", torch::ones({3})}});  // replaces the first
    EXPECT_EQ(files_under(dir.path()), std::vector<std::string>{"checkpoint.pt"});
    EXPECT_EQ(dtokd::read_checkpoint_meta(path).step, 5555);

    const std::string nowhere = dir / "no/such/folder";
    expect_error([&] { dtokd::save_checkpoint(nowhere + "/c.pt", *a, m, {}); }, {nowhere, "does not exist"});
    EXPECT_FALSE(fs::exists(dir / "no"));
    EXPECT_EQ(files_under(dir.path()), std::vector<std::string>{"checkpoint.pt"});
}

TEST(WriteFileAtomic, ReplacesContentWhole) {
    ScratchDir dir("atomic");
    const std::string path = dir / "summary.json";
    dtokd::write_file_atomic(path, std::string(10000, 'x') + "tail");
    dtokd::write_file_atomic(path, "short");
    const Bytes got = read_bytes(path);
    EXPECT_EQ(std::string(got.begin(), got.end()), "short");  // not "short" + the old tail
    dtokd::write_file_atomic(path, "");
    EXPECT_EQ(fs::file_size(path), 0u);
    EXPECT_EQ(files_under(dir.path()), std::vector<std::string>{"summary.json"});

    expect_error([&] { dtokd::write_file_atomic(dir / "absent/x.txt", "x"); }, {dir / "absent", "does not exist"});
    EXPECT_FALSE(fs::exists(dir / "absent"));

    // The rename fails (the target is a non-empty folder): the error propagates,
    // the folder is untouched and the temp file is removed.
    fs::create_directories(dir / "busy");
    write_bytes(dir / "busy/keep", Bytes{1, 2, 3});
    EXPECT_ANY_THROW(dtokd::write_file_atomic(dir / "busy", "new"));
    EXPECT_EQ(read_bytes(dir / "busy/keep"), (Bytes{1, 2, 3}));
    EXPECT_EQ(files_under(dir.path()), (std::vector<std::string>{"busy", "busy/keep", "summary.json"}));
}

}  // namespace
