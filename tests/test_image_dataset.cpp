// pipelines/image_dataset: IDX (plain and gzip) and CIFAR-10/100 binary files
// written here in their real formats round-trip exactly (pixels, labels, layout);
// every malformed input gives one std::runtime_error naming the file and what was
// expected; the installed Fashion-MNIST (Debian dataset-fashion-mnist) loads whole.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataset_registry.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;
using dtokd::ImageDataset;

// The dataset's pixels of image i as bytes (row-major, channel-major for CIFAR).
Bytes image_bytes(const ImageDataset &d, int64_t i) {
    at::Tensor t = d.images[i].contiguous();
    return Bytes(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
}

void expect_matches(const ImageDataset &d, const Bytes &pixels, const Bytes &labels, int64_t rows, int64_t cols) {
    const int64_t n = int64_t(labels.size());
    ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{n, 1, rows, cols}));
    ASSERT_EQ(d.images.scalar_type(), at::kByte);
    ASSERT_EQ(d.labels.scalar_type(), at::kLong);
    ASSERT_EQ(d.size(), n);
    at::Tensor img = d.images.contiguous();
    EXPECT_EQ(0, std::memcmp(img.data_ptr<uint8_t>(), pixels.data(), pixels.size()));
    for (int64_t i = 0; i < n; i++) EXPECT_EQ(d.labels[i].item<int64_t>(), int64_t(labels[size_t(i)])) << i;
}

// Odd sizes so a transposed or mis-strided read cannot pass.
constexpr uint32_t kRows = 5, kCols = 7, kN = 9;

class IdxFiles : public ::testing::TestWithParam<bool> {};

TEST_P(IdxFiles, PairRoundTripsExactly) {
    const bool gz = GetParam();
    ScratchDir dir("idx");
    const IdxSplit s = random_idx_split(kN, kRows, kCols, 10, 11);
    const std::string images = dir / (gz ? "img.gz" : "img"), labels = dir / (gz ? "lab.gz" : "lab");
    if (gz) {
        write_gzip(images, idx_images(kN, kRows, kCols, s.pixels));
        write_gzip(labels, idx_labels(s.labels));
        // A real gzip stream, not a plain file that happens to carry a .gz name.
        const Bytes raw = read_bytes(images);
        ASSERT_GE(raw.size(), 2u);
        ASSERT_EQ(raw[0], 0x1f);
        ASSERT_EQ(raw[1], 0x8b);
    } else {
        write_bytes(images, idx_images(kN, kRows, kCols, s.pixels));
        write_bytes(labels, idx_labels(s.labels));
    }
    const ImageDataset d = dtokd::load_idx_pair(images, labels, "toy/train", 10);
    EXPECT_EQ(d.name, "toy/train");
    EXPECT_EQ(d.num_classes, 10);
    expect_matches(d, s.pixels, s.labels, kRows, kCols);
}

TEST_P(IdxFiles, DatasetFolderLoadsTrainAndTest) {
    const bool gz = GetParam();
    ScratchDir dir("idxdir");
    const IdxSplit train = random_idx_split(kN, kRows, kCols, 4, 21), test = random_idx_split(3, kRows, kCols, 4, 31);
    write_idx_dataset(dir.str(), train, test, kRows, kCols, gz);
    const dtokd::DatasetPair p = dtokd::load_idx_dataset(dir.str(), "toy", 4);
    EXPECT_EQ(p.train.name, "toy/train");
    EXPECT_EQ(p.test.name, "toy/test");
    expect_matches(p.train, train.pixels, train.labels, kRows, kCols);
    expect_matches(p.test, test.pixels, test.labels, kRows, kCols);
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxFiles, ::testing::Values(false, true),
                         [](const auto &info) { return info.param ? "gzip" : "plain"; });

TEST(IdxFiles, GzipPreferredWhenBothExist) {
    ScratchDir dir("idxboth");
    const IdxSplit a = random_idx_split(kN, kRows, kCols, 10, 1), b = random_idx_split(kN, kRows, kCols, 10, 2);
    write_idx_dataset(dir.str(), a, a, kRows, kCols, /*gz=*/false);
    write_idx_dataset(dir.str(), b, b, kRows, kCols, /*gz=*/true);
    const dtokd::DatasetPair p = dtokd::load_idx_dataset(dir.str(), "toy", 10);
    expect_matches(p.train, b.pixels, b.labels, kRows, kCols);
}

// Bad inputs: one std::runtime_error naming the file and what was expected.
class IdxErrors : public ::testing::Test {
protected:
    ScratchDir dir{"idxerr"};
    IdxSplit s = random_idx_split(kN, kRows, kCols, 10, 5);
    std::string images = dir / "img", labels = dir / "lab";
    void SetUp() override {
        write_bytes(images, idx_images(kN, kRows, kCols, s.pixels));
        write_bytes(labels, idx_labels(s.labels));
    }
    void load() { dtokd::load_idx_pair(images, labels, "toy", 10); }
};

TEST_F(IdxErrors, MissingFile) {
    fs::remove(labels);
    expect_error([&] { load(); }, {labels, "not found"});
    expect_error([&] { dtokd::load_idx_pair(dir / "nope", labels, "toy", 10); }, {dir / "nope", "not found"});
}

TEST_F(IdxErrors, MissingFolderAndMissingFileInFolder) {
    expect_error([&] { dtokd::load_idx_dataset(dir / "absent", "toy", 10); }, {dir / "absent", "not found"});
    write_idx_dataset(dir.str(), s, s, kRows, kCols, false);
    fs::remove(dir / "t10k-labels-idx1-ubyte");
    expect_error([&] { dtokd::load_idx_dataset(dir.str(), "toy", 10); },
                 {dir / "t10k-labels-idx1-ubyte", "not found"});
}

TEST_F(IdxErrors, WrongMagic) {
    write_bytes(images, idx_images(kN, kRows, kCols, s.pixels, /*magic=*/0x801));
    expect_error([&] { load(); }, {images, "magic", "0x00000801", "expected 0x00000803"});
    write_bytes(images, idx_images(kN, kRows, kCols, s.pixels));
    write_bytes(labels, idx_labels(s.labels, /*magic=*/0x803));
    expect_error([&] { load(); }, {labels, "magic", "expected 0x00000801"});
}

TEST_F(IdxErrors, ShorterThanHeader) {
    write_bytes(images, Bytes{0, 0, 8, 3, 0});
    expect_error([&] { load(); }, {images, "too short", "16 bytes"});
}

TEST_F(IdxErrors, TruncatedImages) {
    Bytes cut = idx_images(kN, kRows, kCols, s.pixels);
    cut.resize(cut.size() - 10);
    write_bytes(images, cut);
    const size_t expected = 16 + size_t(kN) * kRows * kCols;
    expect_error([&] { load(); },
                 {images, "has " + std::to_string(expected - 10) + " bytes", "expected " + std::to_string(expected),
                  std::to_string(kN) + " images of 5x7"});
}

TEST_F(IdxErrors, TrailingBytesInImages) {
    Bytes extra = idx_images(kN, kRows, kCols, s.pixels);
    extra.push_back(0);
    write_bytes(images, extra);
    expect_error([&] { load(); }, {images, "expected " + std::to_string(16 + kN * kRows * kCols)});
}

TEST_F(IdxErrors, LabelCountDiffersFromImageCount) {
    Bytes fewer(s.labels.begin(), s.labels.end() - 1);
    write_bytes(labels, idx_labels(fewer));
    expect_error([&] { load(); }, {labels, std::to_string(kN - 1) + " labels", std::to_string(kN) + " images"});
}

TEST_F(IdxErrors, TruncatedLabels) {
    Bytes fewer(s.labels.begin(), s.labels.end() - 2);
    write_bytes(labels, idx_labels(fewer, 0x801, /*count=*/kN));  // header still claims kN
    expect_error([&] { load(); }, {labels, "expected " + std::to_string(8 + kN), "truncated"});
}

TEST_F(IdxErrors, LabelOutOfRange) {
    Bytes bad = s.labels;
    bad[3] = 10;  // == num_classes
    write_bytes(labels, idx_labels(bad));
    expect_error([&] { load(); }, {labels, "label 10", "[0, 9]"});
    // The top class itself is fine.
    bad[3] = 9;
    write_bytes(labels, idx_labels(bad));
    EXPECT_NO_THROW(load());
}

TEST_F(IdxErrors, CorruptGzipPayload) {
    // A valid gzip member header (RFC 1952: magic, deflate, no flags, mtime, xfl, OS)
    // followed by bytes that are not a deflate stream.
    Bytes bad = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03};
    const Bytes noise = random_bytes(400, 77);
    bad.insert(bad.end(), noise.begin(), noise.end());
    const std::string gz = dir / "img.gz";
    write_bytes(gz, bad);
    expect_error([&] { dtokd::load_idx_pair(gz, labels, "toy", 10); }, {gz, "corrupt"});
}

TEST_F(IdxErrors, TruncatedGzip) {
    const std::string gz = dir / "img.gz";
    write_gzip(gz, idx_images(kN, kRows, kCols, s.pixels));
    const Bytes whole = read_bytes(gz);
    // Cut in the middle of the deflate data: the image bytes come up short.
    write_bytes(gz, Bytes(whole.begin(), whole.begin() + long(whole.size() / 2)));
    expect_error([&] { dtokd::load_idx_pair(gz, labels, "toy", 10); }, {gz, "truncated"});
    // Cut only the 8-byte trailer (CRC-32 + size): every image byte is there, but
    // the file is incomplete and its integrity unchecked.
    write_bytes(gz, Bytes(whole.begin(), whole.end() - 8));
    expect_error([&] { dtokd::load_idx_pair(gz, labels, "toy", 10); }, {gz, "truncated"});
}

TEST_F(IdxErrors, GzipWithBadChecksum) {
    const std::string gz = dir / "img.gz";
    write_gzip(gz, idx_images(kN, kRows, kCols, s.pixels));
    Bytes b = read_bytes(gz);
    b[b.size() - 8] ^= 0xff;  // CRC-32 of the trailer
    write_bytes(gz, b);
    expect_error([&] { dtokd::load_idx_pair(gz, labels, "toy", 10); }, {gz, "corrupt"});
}

// CIFAR binary format: per record 1 label byte (CIFAR-100: coarse, fine) then
// 3072 pixels, the 1024 red, then green, then blue, each row-major 32x32.
constexpr size_t kPlane = 32 * 32, kPixels = 3 * kPlane;

struct CifarRecords {
    Bytes file;
    std::vector<int64_t> labels;
    std::vector<Bytes> pixels;
};

CifarRecords cifar_records(int count, int label_bytes, int classes, uint32_t seed) {
    CifarRecords r;
    for (int i = 0; i < count; i++) {
        const int fine = int((seed * 7 + uint32_t(i) * 13) % uint32_t(classes));
        if (label_bytes == 2) r.file.push_back(uint8_t(19 - fine % 20));  // coarse label: not the one used
        r.file.push_back(uint8_t(fine));
        r.labels.push_back(fine);
        r.pixels.push_back(random_bytes(kPixels, seed * 100 + uint32_t(i)));
        r.file.insert(r.file.end(), r.pixels.back().begin(), r.pixels.back().end());
    }
    return r;
}

void expect_cifar(const ImageDataset &d, const std::vector<CifarRecords> &files) {
    int64_t i = 0;
    for (const CifarRecords &f : files) {
        for (size_t k = 0; k < f.labels.size(); k++, i++) {
            ASSERT_LT(i, d.size());
            EXPECT_EQ(d.labels[i].item<int64_t>(), f.labels[k]) << i;
            EXPECT_EQ(image_bytes(d, i), f.pixels[k]) << i;
            // Channel-major: [c][y][x] is byte c*1024 + y*32 + x of the record's pixels.
            EXPECT_EQ(d.images[i][2][31][0].item<int64_t>(), int64_t(f.pixels[k][2 * kPlane + 31 * 32]));
            EXPECT_EQ(d.images[i][1][0][5].item<int64_t>(), int64_t(f.pixels[k][kPlane + 5]));
        }
    }
    EXPECT_EQ(d.size(), i);
}

TEST(CifarFiles, Cifar10RoundTrips) {
    ScratchDir dir("cifar10");
    std::vector<CifarRecords> train;
    for (int b = 1; b <= 5; b++) {
        train.push_back(cifar_records(b == 3 ? 1 : 2, 1, 10, uint32_t(b)));
        write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), train.back().file);
    }
    const CifarRecords test = cifar_records(3, 1, 10, 9);
    write_bytes(dir / "test_batch.bin", test.file);
    const dtokd::DatasetPair p = dtokd::load_cifar_dataset(dir.str(), 10);
    ASSERT_EQ(p.train.images.sizes(), (std::vector<int64_t>{9, 3, 32, 32}));
    ASSERT_EQ(p.test.images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
    expect_cifar(p.train, train);  // batches 1..5 in order
    expect_cifar(p.test, {test});
    EXPECT_EQ(p.train.num_classes, 10);
    EXPECT_EQ(p.train.mean.size(), 3u);
    EXPECT_EQ(p.test.std.size(), 3u);
}

TEST(CifarFiles, Cifar100UsesTheFineLabel) {
    ScratchDir dir("cifar100");
    CifarRecords train = cifar_records(4, 2, 100, 3);
    // The top fine class, with a coarse label that differs.
    train.file[0 * (kPixels + 2) + 1] = 99;
    train.labels[0] = 99;
    const CifarRecords test = cifar_records(2, 2, 100, 4);
    write_bytes(dir / "train.bin", train.file);
    write_bytes(dir / "test.bin", test.file);
    const dtokd::DatasetPair p = dtokd::load_cifar_dataset(dir.str(), 100);
    EXPECT_EQ(p.train.num_classes, 100);
    expect_cifar(p.train, {train});
    expect_cifar(p.test, {test});
}

TEST(CifarFiles, SizeNotAMultipleOfTheRecord) {
    ScratchDir dir("cifarsize");
    for (int b = 1; b <= 5; b++)
        write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(1, 1, 10, 1).file);
    write_bytes(dir / "test_batch.bin", cifar_records(1, 1, 10, 2).file);
    Bytes odd = cifar_records(2, 1, 10, 3).file;
    odd.push_back(7);
    write_bytes(dir / "data_batch_4.bin", odd);
    expect_error([&] { dtokd::load_cifar_dataset(dir.str(), 10); },
                 {dir / "data_batch_4.bin", std::to_string(odd.size()) + " bytes", "multiple of 3073"});
    // CIFAR-100 records are 3074 bytes: a CIFAR-10 file there is caught too.
    write_bytes(dir / "train.bin", cifar_records(2, 1, 10, 3).file);
    write_bytes(dir / "test.bin", cifar_records(1, 2, 100, 3).file);
    expect_error([&] { dtokd::load_cifar_dataset(dir.str(), 100); }, {dir / "train.bin", "multiple of 3074"});
}

TEST(CifarFiles, LabelOutOfRangeAndMissingFiles) {
    ScratchDir dir("cifarlabel");
    for (int b = 1; b <= 5; b++)
        write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(2, 1, 10, 1).file);
    CifarRecords bad = cifar_records(3, 1, 10, 2);
    bad.file[2 * (kPixels + 1)] = 10;  // record 2
    write_bytes(dir / "test_batch.bin", bad.file);
    expect_error([&] { dtokd::load_cifar_dataset(dir.str(), 10); },
                 {dir / "test_batch.bin", "record 2", "label 10", "[0, 9]"});

    CifarRecords bad100 = cifar_records(2, 2, 100, 5);
    bad100.file[1 * (kPixels + 2) + 1] = 100;  // fine label of record 1
    write_bytes(dir / "train.bin", bad100.file);
    write_bytes(dir / "test.bin", cifar_records(1, 2, 100, 6).file);
    expect_error([&] { dtokd::load_cifar_dataset(dir.str(), 100); },
                 {dir / "train.bin", "record 1", "label 100", "[0, 99]"});

    fs::remove(dir / "data_batch_5.bin");
    expect_error([&] { dtokd::load_cifar_dataset(dir.str(), 10); }, {dir / "data_batch_5.bin", "not found"});
    expect_error([&] { dtokd::load_cifar_dataset(dir / "absent", 10); }, {dir / "absent", "not found"});
}

TEST(LoadDataset, UnknownKindAndMissingData) {
    expect_error<std::invalid_argument>([] { dtokd::load_dataset("svhn", "/tmp"); }, {"svhn", "cifar100"});
    expect_error([] { dtokd::load_dataset("cifar10", ""); }, {"cifar10", "--data"});
}

TEST(LoadDataset, MnistNormalizationIsSet) {
    ScratchDir dir("mnistnorm");
    const IdxSplit s = random_idx_split(4, 28, 28, 10, 8);
    write_idx_dataset(dir.str(), s, s, 28, 28, true);
    const dtokd::DatasetPair p = dtokd::load_dataset("mnist", dir.str());
    ASSERT_EQ(p.train.mean.size(), 1u);
    EXPECT_DOUBLE_EQ(p.train.mean[0], 0.1307);
    EXPECT_DOUBLE_EQ(p.test.std[0], 0.3081);
    EXPECT_EQ(p.train.name, "mnist/train");
}

TEST(FashionMnist, InstalledDatasetLoads) {
    const std::string dir = dtokd::default_fashion_mnist_dir();
    if (dir.empty()) GTEST_SKIP() << "/usr/share/datasets/fashion-mnist not installed (Debian dataset-fashion-mnist)";
    const dtokd::DatasetPair p = dtokd::load_dataset("fashion-mnist", "");
    EXPECT_EQ(p.train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
    EXPECT_EQ(p.test.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
    EXPECT_EQ(p.train.labels.min().item<int64_t>(), 0);
    EXPECT_EQ(p.train.labels.max().item<int64_t>(), 9);
    EXPECT_EQ(p.test.labels.min().item<int64_t>(), 0);
    EXPECT_EQ(p.test.labels.max().item<int64_t>(), 9);
    // Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    EXPECT_TRUE(torch::equal(torch::bincount(p.train.labels), torch::full({10}, 6000, torch::kLong)));
    EXPECT_TRUE(torch::equal(torch::bincount(p.test.labels), torch::full({10}, 1000, torch::kLong)));
    EXPECT_GT(p.train.images.to(torch::kFloat).mean().item<double>(), 50.0);  // not all zero
}

}  // namespace
