// IDX and CIFAR binary readers (see image_dataset.h). zlib's gzread reads both
// gzip and plain files, so one path serves .gz and uncompressed IDX.
#include "image_dataset.h"

#include "image_folder.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace dtokd {

namespace fs = std::filesystem;

int ImageDataset::channels() const { return files ? files->channels : int(images.size(1)); }
int ImageDataset::height() const { return files ? files->image_size : int(images.size(2)); }
int ImageDataset::width() const { return files ? files->image_size : int(images.size(3)); }

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &what) {
    throw std::runtime_error(path + ": " + what);
}

// Whole file contents (decompressed when gzip).
std::vector<uint8_t> read_all(const std::string &path) {
    if (!fs::exists(path)) fail(path, "file not found");
    std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
    if (!f) fail(path, "cannot open for reading");
    std::vector<uint8_t> out;
    std::vector<uint8_t> chunk(1 << 20);
    for (;;) {
        const int n = gzread(f.get(), chunk.data(), unsigned(chunk.size()));
        // A gzip stream cut short (even just its CRC/size trailer) ends with n == 0
        // and Z_BUF_ERROR ("unexpected end of file"), not n < 0: check both.
        int err = Z_OK;
        const char *msg = n <= 0 ? gzerror(f.get(), &err) : nullptr;
        if (n < 0 || err != Z_OK)
            fail(path, std::string("corrupt or truncated compressed data (") + (msg ? msg : "zlib error") + ")");
        if (n == 0) break;
        out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    }
    return out;
}

uint32_t be32(const std::vector<uint8_t> &b, size_t at) {
    return (uint32_t(b[at]) << 24) | (uint32_t(b[at + 1]) << 16) | (uint32_t(b[at + 2]) << 8) | uint32_t(b[at + 3]);
}

std::string existing(const std::string &dir, const std::string &stem) {
    for (const std::string &candidate : {dir + "/" + stem + ".gz", dir + "/" + stem})
        if (fs::exists(candidate)) return candidate;
    fail(dir + "/" + stem + "[.gz]", "file not found");
}

at::Tensor check_labels(at::Tensor labels, int num_classes, const std::string &path) {
    if (labels.numel() == 0) fail(path, "no labels");
    const int64_t hi = labels.max().item<int64_t>();
    if (hi >= num_classes)
        fail(path, "label " + std::to_string(hi) + " out of range; expected labels in [0, " +
                       std::to_string(num_classes - 1) + "]");
    return labels;
}

}  // namespace

ImageDataset load_idx_pair(const std::string &images_path, const std::string &labels_path, const std::string &name,
                           int num_classes) {
    const std::vector<uint8_t> img = read_all(images_path);
    if (img.size() < 16) fail(images_path, "too short for an IDX image header (16 bytes)");
    if (be32(img, 0) != 0x00000803)
        fail(images_path, "bad magic number 0x" + [&] {
            char buf[16];
            snprintf(buf, sizeof buf, "%08x", be32(img, 0));
            return std::string(buf);
        }() + "; expected 0x00000803 (IDX uint8, 3 dimensions)");
    const uint32_t n = be32(img, 4), rows = be32(img, 8), cols = be32(img, 12);
    if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
        fail(images_path, "implausible image size " + std::to_string(rows) + "x" + std::to_string(cols));
    const size_t expected = 16 + size_t(n) * rows * cols;
    if (img.size() != expected)
        fail(images_path, "has " + std::to_string(img.size()) + " bytes; expected " + std::to_string(expected) +
                              " for " + std::to_string(n) + " images of " + std::to_string(rows) + "x" +
                              std::to_string(cols) + " (truncated or corrupt)");

    const std::vector<uint8_t> lab = read_all(labels_path);
    if (lab.size() < 8) fail(labels_path, "too short for an IDX label header (8 bytes)");
    if (be32(lab, 0) != 0x00000801) fail(labels_path, "bad magic number; expected 0x00000801 (IDX uint8, 1 dimension)");
    const uint32_t nl = be32(lab, 4);
    if (nl != n)
        fail(labels_path, "holds " + std::to_string(nl) + " labels but " + images_path + " holds " +
                              std::to_string(n) + " images; expected the same count");
    if (lab.size() != 8 + size_t(nl))
        fail(labels_path, "has " + std::to_string(lab.size()) + " bytes; expected " + std::to_string(8 + nl) +
                              " (truncated or corrupt)");

    ImageDataset d;
    d.name = name;
    d.num_classes = num_classes;
    d.images = at::empty({int64_t(n), 1, int64_t(rows), int64_t(cols)}, at::kByte);
    std::memcpy(d.images.data_ptr<uint8_t>(), img.data() + 16, size_t(n) * rows * cols);
    at::Tensor labels8 = at::empty({int64_t(n)}, at::kByte);
    std::memcpy(labels8.data_ptr<uint8_t>(), lab.data() + 8, nl);
    d.labels = check_labels(labels8.to(at::kLong), num_classes, labels_path);
    return d;
}

DatasetPair load_idx_dataset(const std::string &dir, const std::string &name, int num_classes) {
    if (!fs::is_directory(dir)) fail(dir, "data directory not found");
    DatasetPair p;
    p.train = load_idx_pair(existing(dir, "train-images-idx3-ubyte"), existing(dir, "train-labels-idx1-ubyte"),
                            name + "/train", num_classes);
    p.test = load_idx_pair(existing(dir, "t10k-images-idx3-ubyte"), existing(dir, "t10k-labels-idx1-ubyte"),
                           name + "/test", num_classes);
    if (p.train.images.sizes().slice(1) != p.test.images.sizes().slice(1))
        fail(dir, "train and test images differ in shape");
    return p;
}

namespace {
ImageDataset load_cifar_files(const std::vector<std::string> &paths, int num_classes, const std::string &name) {
    const size_t label_bytes = num_classes == 100 ? 2 : 1, record = label_bytes + 3072;
    std::vector<uint8_t> pixels, labels;
    for (const std::string &path : paths) {
        if (!fs::exists(path)) fail(path, "file not found");
        std::ifstream in(path, std::ios::binary);
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (bytes.empty() || bytes.size() % record != 0)
            fail(path, "has " + std::to_string(bytes.size()) + " bytes; expected a multiple of " +
                           std::to_string(record) + " (CIFAR-" + std::to_string(num_classes) + " records)");
        for (size_t off = 0; off < bytes.size(); off += record) {
            const uint8_t label = bytes[off + label_bytes - 1];  // CIFAR-100: fine label is the 2nd byte
            if (label >= num_classes)
                fail(path, "record " + std::to_string(off / record) + " has label " + std::to_string(label) +
                               "; expected [0, " + std::to_string(num_classes - 1) + "]");
            labels.push_back(label);
            pixels.insert(pixels.end(), bytes.begin() + off + label_bytes, bytes.begin() + off + record);
        }
    }
    ImageDataset d;
    d.name = name;
    d.num_classes = num_classes;
    const int64_t n = int64_t(labels.size());
    d.images = at::empty({n, 3, 32, 32}, at::kByte);
    std::memcpy(d.images.data_ptr<uint8_t>(), pixels.data(), pixels.size());
    at::Tensor l8 = at::empty({n}, at::kByte);
    std::memcpy(l8.data_ptr<uint8_t>(), labels.data(), labels.size());
    d.labels = l8.to(at::kLong);
    return d;
}
}  // namespace

DatasetPair load_cifar_dataset(const std::string &dir, int num_classes) {
    if (num_classes != 10 && num_classes != 100)
        throw std::invalid_argument("CIFAR has 10 or 100 classes; got " + std::to_string(num_classes));
    if (!fs::is_directory(dir)) fail(dir, "data directory not found");
    DatasetPair p;
    const std::string tag = "cifar" + std::to_string(num_classes);
    if (num_classes == 10) {
        std::vector<std::string> train;
        for (int i = 1; i <= 5; i++) train.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
        p.train = load_cifar_files(train, 10, tag + "/train");
        p.test = load_cifar_files({dir + "/test_batch.bin"}, 10, tag + "/test");
    } else {
        p.train = load_cifar_files({dir + "/train.bin"}, 100, tag + "/train");
        p.test = load_cifar_files({dir + "/test.bin"}, 100, tag + "/test");
    }
    for (ImageDataset *d : {&p.train, &p.test}) {
        // CIFAR-100 statistics are close; the mdistiller recipe uses these.
        d->mean = {0.5071, 0.4865, 0.4409};
        d->std = {0.2673, 0.2564, 0.2762};
    }
    return p;
}

std::string default_fashion_mnist_dir() {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    return fs::exists(dir + "/train-images-idx3-ubyte.gz") ? dir : "";
}

}  // namespace dtokd
