// Scratch folders and tiny datasets written in the real on-disk formats, for the
// pipeline tests (datasets, loader, checkpoints, teacher import, logit cache, CLI).
// Everything lives under the system temp folder with a unique name and is removed
// when the ScratchDir goes out of scope.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dtokd_test {

namespace fs = std::filesystem;

class ScratchDir {
public:
    explicit ScratchDir(const std::string &tag) {
        static std::atomic<int> counter{0};
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("dtokd-" + tag + "-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(counter++) + "-" + std::to_string(rd() % 1000000));
        fs::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir &) = delete;
    ScratchDir &operator=(const ScratchDir &) = delete;

    const fs::path &path() const { return path_; }
    std::string str() const { return path_.string(); }
    std::string operator/(const std::string &name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

using Bytes = std::vector<uint8_t>;

// What `f` throws as a std::runtime_error ("" when it throws nothing).
inline std::string error_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const std::runtime_error &e) {
        return e.what();
    }
    return "";
}

inline void append_be32(Bytes &b, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(uint8_t(v >> shift));
}

// IDX3 uint8 images: magic 0x00000803, n, rows, cols (big-endian), then the pixels.
inline Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, const Bytes &pixels, uint32_t magic = 0x803) {
    Bytes b;
    append_be32(b, magic);
    append_be32(b, n);
    append_be32(b, rows);
    append_be32(b, cols);
    b.insert(b.end(), pixels.begin(), pixels.end());
    return b;
}

// IDX1 uint8 labels: magic 0x00000801, n (big-endian), then the labels.
inline Bytes idx_labels(const Bytes &labels, uint32_t magic = 0x801, int64_t count = -1) {
    Bytes b;
    append_be32(b, magic);
    append_be32(b, count < 0 ? uint32_t(labels.size()) : uint32_t(count));
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}

inline Bytes random_bytes(size_t n, uint32_t seed, int lo = 0, int hi = 255) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    Bytes b(n);
    for (auto &v : b) v = uint8_t(d(rng));
    return b;
}

inline void write_bytes(const std::string &path, const Bytes &bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error(path + ": test could not write the file");
}

inline Bytes read_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": test could not read the file");
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A gzip file as gzip(1) would write it (zlib's gzwrite).
inline void write_gzip(const std::string &path, const Bytes &bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error(path + ": gzopen failed");
    const int n = bytes.empty() ? 0 : gzwrite(f, bytes.data(), unsigned(bytes.size()));
    const int rc = gzclose(f);
    if (n != int(bytes.size()) || rc != Z_OK) throw std::runtime_error(path + ": gzwrite failed");
}

struct IdxSplit {
    Bytes pixels, labels;  // n*rows*cols pixels, n labels
};

// A random IDX split of n rows x cols images with labels in [0, classes).
inline IdxSplit random_idx_split(uint32_t n, uint32_t rows, uint32_t cols, int classes, uint32_t seed) {
    IdxSplit s;
    s.pixels = random_bytes(size_t(n) * rows * cols, seed);
    s.labels = random_bytes(n, seed + 1, 0, classes - 1);
    return s;
}

// DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] as MNIST ships them.
inline void write_idx_dataset(const std::string &dir, const IdxSplit &train, const IdxSplit &test, uint32_t rows,
                              uint32_t cols, bool gz) {
    auto put = [&](const std::string &stem, const Bytes &bytes) {
        if (gz)
            write_gzip(dir + "/" + stem + ".gz", bytes);
        else
            write_bytes(dir + "/" + stem, bytes);
    };
    put("train-images-idx3-ubyte", idx_images(uint32_t(train.labels.size()), rows, cols, train.pixels));
    put("train-labels-idx1-ubyte", idx_labels(train.labels));
    put("t10k-images-idx3-ubyte", idx_images(uint32_t(test.labels.size()), rows, cols, test.pixels));
    put("t10k-labels-idx1-ubyte", idx_labels(test.labels));
}

// Runs `fn`, expects it to throw an exception of type E whose message contains
// every one of `parts`; returns the message ("" when it did not throw E).
template <typename E = std::runtime_error>
std::string expect_error(const std::function<void()> &fn, std::initializer_list<std::string> parts) {
    try {
        fn();
    } catch (const E &e) {
        const std::string msg = e.what();
        for (const std::string &p : parts)
            EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
        return msg;
    } catch (const std::exception &e) {
        ADD_FAILURE() << "threw another exception type: " << e.what();
        return "";
    }
    ADD_FAILURE() << "did not throw";
    return "";
}

inline bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

inline std::vector<std::string> files_under(const fs::path &dir) {
    std::vector<std::string> out;
    for (const auto &e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace dtokd_test
