// Writes the binary seed corpora under fuzz/corpus/ (idx, idx_gz, cifar, checkpoint,
// logit_cache; config and tuning seeds are text files written by hand). Built in the
// fuzz build as dtokd_fuzz_seeds; rerun it after a format change:
//   build-fuzz/fuzz/dtokd_fuzz_seeds fuzz/corpus
// File names say what the replay test (tests/test_fuzz_corpora.cpp) expects of a seed:
// valid-* is accepted by its reader, invalid-* rejected with a clear error.
#include <torch/nn/modules/linear.h>
#include <torch/serialize/output-archive.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "checkpoint.h"
#include "fuzz_support.h"
#include "image_encode.h"
#include "teacher_logit_file.h"

namespace fs = std::filesystem;

namespace {

void put(const fs::path &path, const std::string &bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

std::string read(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string be32(uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
    std::string s = be32(0x803) + be32(n) + be32(rows) + be32(cols);
    for (uint32_t i = 0; i < n * rows * cols; i++) s += char(i * 7);
    return s;
}

std::string idx_labels(uint32_t n, uint8_t top) {
    std::string s = be32(0x801) + be32(n);
    for (uint32_t i = 0; i < n; i++) s += char(i % (top + 1));
    return s;
}

// The idx target's input: [u16 LE images length][images][labels].
std::string idx_input(const std::string &images, const std::string &labels) {
    return std::string{char(images.size() & 0xff), char(images.size() >> 8)} + images + labels;
}

std::string gzip(const std::string &bytes) {
    const std::string tmp = dtokd::fuzz::scratch_dir() + "/seed.gz";
    gzFile f = gzopen(tmp.c_str(), "wb9");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
    return read(tmp);
}

std::string cifar_records(int n, int label_bytes, uint8_t label) {
    std::string s;
    for (int r = 0; r < n; r++) {
        for (int b = 0; b < label_bytes; b++) s += char(label + b);
        for (int i = 0; i < 3072; i++) s += char((i * 13 + r) & 0xff);
    }
    return s;
}

std::string logit_file(uint64_t key, int64_t rows, int64_t classes) {
    const std::string path = dtokd::fuzz::scratch_dir() + "/logits.bin";
    dtokd::write_teacher_logit_file(path, key, at::arange(rows * classes, at::kFloat).reshape({rows, classes}) * 0.25);
    return read(path);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: dtokd_fuzz_seeds CORPUS_DIR (fuzz/corpus)\n";
        return 2;
    }
    const fs::path root = argv[1];
    at::manual_seed(0);  // the same seeds on every run
    // IDX: 3 images of 4x4 and their labels, plain and gzip.
    const std::string images = idx_images(3, 4, 4), labels = idx_labels(3, 9);
    put(root / "idx/valid-3x4x4", idx_input(images, labels));
    put(root / "idx/valid-1x28x28", idx_input(idx_images(1, 28, 28), idx_labels(1, 0)));
    put(root / "idx/invalid-label-out-of-range", idx_input(images, be32(0x801) + be32(3) + "\x01\x02\x0a"));
    put(root / "idx/invalid-count-mismatch", idx_input(images, idx_labels(2, 9)));
    put(root / "idx/invalid-truncated", idx_input(images.substr(0, 40), labels));
    put(root / "idx_gz/valid-3x4x4", idx_input(gzip(images), gzip(labels)));
    put(root / "idx_gz/valid-images-gz-labels-plain", idx_input(gzip(images), labels));
    const std::string gz = gzip(images);
    put(root / "idx_gz/invalid-truncated-stream", idx_input(gz.substr(0, gz.size() - 6), gzip(labels)));
    // CIFAR: [mode][records]; mode 1 = CIFAR-100 (2 label bytes, the fine one second).
    put(root / "cifar/valid-cifar10-1", std::string(1, '\0') + cifar_records(1, 1, 3));
    put(root / "cifar/valid-cifar100-1", std::string(1, '\1') + cifar_records(1, 2, 42));
    put(root / "cifar/invalid-cifar10-label-10", std::string(1, '\0') + cifar_records(1, 1, 10));
    put(root / "cifar/invalid-cifar100-partial", std::string(1, '\1') + cifar_records(1, 2, 1).substr(0, 3000));
    // Checkpoint of a Linear(4, 3) with 2 optimizer tensors and one objective entry:
    // mode 0 = the file, mode 1 = its payload (the target frames it).
    {
        torch::nn::Linear model(4, 3);
        dtokd::CheckpointMeta meta;
        meta.model_name = "linear";
        meta.num_classes = 3;
        meta.in_channels = 1;
        meta.height = 2;
        meta.width = 2;
        meta.epoch = 1;
        meta.step = 7;
        meta.config = "lr = 0.05\n";
        meta.optimizer_kind = "sgd";
        meta.optimizer_steps = 7;
        const std::string path = dtokd::fuzz::scratch_dir() + "/seed.pt";
        dtokd::save_checkpoint(path, *model, meta,
                               {{"optimizer/0", at::zeros({3, 4})},
                                {"optimizer/1", at::ones({3})},
                                {"objective/kd.scale", at::full({1}, 2.0)}});
        const std::string file = read(path);
        put(root / "checkpoint/valid-linear-file", std::string(1, '\0') + file);
        put(root / "checkpoint/valid-linear-payload", std::string(1, '\1') + file.substr(24));
        std::string flipped = file;
        flipped[flipped.size() / 2] ^= 0x20;
        put(root / "checkpoint/invalid-flipped-byte", std::string(1, '\0') + flipped);
        put(root / "checkpoint/invalid-truncated", std::string(1, '\0') + file.substr(0, file.size() - 100));
    }
    // Payloads that verify but are not what read_meta expects (mode 1): only a format
    // version; a class count that is not one integer.
    {
        auto payload = [](const std::function<void(torch::serialize::OutputArchive &)> &fill) {
            torch::serialize::OutputArchive ar;
            fill(ar);
            std::ostringstream os;
            ar.save_to(os);
            return std::string(1, '\1') + os.str();
        };
        const at::Tensor v2 = at::scalar_tensor(dtokd::kCheckpointFormatVersion, at::kLong);
        put(root / "checkpoint/invalid-payload-missing-entries",
            payload([&](auto &ar) { ar.write("dtokd_format_version", v2); }));
        put(root / "checkpoint/invalid-payload-num-classes-not-an-integer", payload([&](auto &ar) {
                ar.write("dtokd_format_version", v2);
                ar.write("model_name", at::full({3}, 108, at::kByte));
                ar.write("num_classes", at::zeros({2}));
            }));
    }
    // Teacher-logit cache: mode 0 = the file, mode 1 = checksum fixed up by the target.
    const std::string logits = logit_file(dtokd::fuzz::kFuzzLogitKey, 4, 3);
    put(root / "logit_cache/valid-4x3", std::string(1, '\0') + logits);
    put(root / "logit_cache/valid-2x5-fixed-checksum", std::string(1, '\1') + logit_file(dtokd::fuzz::kFuzzLogitKey, 2, 5));
    put(root / "logit_cache/invalid-other-key", std::string(1, '\0') + logit_file(42, 4, 3));
    put(root / "logit_cache/invalid-truncated", std::string(1, '\0') + logits.substr(0, logits.size() - 4));
    // Images: small PNG and JPEG files, grey and RGB; a cut one, a GIF, and a PNG whose
    // header claims 30000 x 30000 pixels (its IHDR checksum redone, so only the size is wrong).
    {
        std::vector<uint8_t> px(7 * 5 * 3);
        for (size_t i = 0; i < px.size(); i++) px[i] = uint8_t(i * 37);
        auto text = [](const std::vector<uint8_t> &b) { return std::string(b.begin(), b.end()); };
        const std::string png = text(dtokd::encode_png(px.data(), 7, 5, 3));
        put(root / "image/valid-png-rgb-7x5", png);
        put(root / "image/valid-png-grey-7x5", text(dtokd::encode_png(px.data(), 7, 5, 1)));
        put(root / "image/valid-jpeg-rgb-7x5", text(dtokd::encode_jpeg(px.data(), 7, 5, 3)));
        put(root / "image/valid-jpeg-grey-7x5", text(dtokd::encode_jpeg(px.data(), 7, 5, 1)));
        put(root / "image/invalid-png-cut", png.substr(0, png.size() / 2));
        put(root / "image/invalid-gif", std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14));
        std::string huge = png;  // IHDR: length(4) "IHDR"(4) width(4) height(4) ... crc, from byte 8
        for (int at : {16, 20}) huge.replace(size_t(at), 4, std::string("\x00\x00\x75\x30", 4));
        const uLong crc = crc32(0, reinterpret_cast<const Bytef *>(huge.data() + 12), 17);
        for (int i = 0; i < 4; i++) huge[size_t(29 + i)] = char((crc >> (24 - 8 * i)) & 0xff);
        put(root / "image/invalid-png-30000x30000-header", huge);
    }
    std::cout << "wrote the binary seeds under " << root << "\n";
    return 0;
}
