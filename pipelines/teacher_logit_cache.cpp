// See teacher_logit_cache.h. File layout: "DTKDTLC1", key u64, rows i64,
// classes i64, checksum u64, then rows*classes float32.
#include "teacher_logit_cache.h"

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <iostream>
#include <vector>

#include "batch_loader.h"
#include "atomic_file.h"
#include "content_hash.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'D', 'T', 'K', 'D', 'T', 'L', 'C', '1'};

uint64_t cache_key(const std::string &teacher_file, const ImageDataset &data) {
    std::ifstream in(teacher_file, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t h = fnv1a64(bytes.data(), bytes.size());
    h = fnv1a64(data.images.data_ptr<uint8_t>(), size_t(data.images.numel()), h);
    h = fnv1a64(data.labels.data_ptr<int64_t>(), size_t(data.labels.numel()) * sizeof(int64_t), h);
    h = fnv1a64(data.mean.data(), data.mean.size() * sizeof(double), h);
    h = fnv1a64(data.std.data(), data.std.size() * sizeof(double), h);
    return h;
}

// The cached logits, or an undefined tensor when the file is absent or does not verify.
at::Tensor try_load(const std::string &path, uint64_t key, int64_t rows, int64_t classes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    char magic[8];
    uint64_t file_key = 0, checksum = 0;
    int64_t file_rows = 0, file_classes = 0;
    in.read(magic, 8);
    in.read(reinterpret_cast<char *>(&file_key), 8);
    in.read(reinterpret_cast<char *>(&file_rows), 8);
    in.read(reinterpret_cast<char *>(&file_classes), 8);
    in.read(reinterpret_cast<char *>(&checksum), 8);
    if (!in || std::memcmp(magic, kMagic, 8) != 0 || file_key != key || file_rows != rows || file_classes != classes)
        return {};
    at::Tensor t = at::empty({rows, classes}, at::kFloat);
    const size_t bytes = size_t(rows * classes) * sizeof(float);
    in.read(reinterpret_cast<char *>(t.data_ptr<float>()), std::streamsize(bytes));
    if (in.gcount() != std::streamsize(bytes) || in.peek() != std::char_traits<char>::eof()) return {};
    if (fnv1a64(t.data_ptr<float>(), bytes) != checksum) return {};
    return t;
}

}  // namespace

TeacherLogits teacher_logits_for(ModelHandle &teacher, const std::string &teacher_file, const ImageDataset &data,
                                 const std::string &cache_dir, bool progress) {
    const uint64_t key = cache_key(teacher_file, data);
    char name[64];
    snprintf(name, sizeof name, "teacher-logits-%016llx.bin", static_cast<unsigned long long>(key));
    TeacherLogits out;
    out.path = (fs::path(cache_dir) / name).string();
    out.logits = try_load(out.path, key, data.size(), data.num_classes);
    if (out.logits.defined()) {
        out.from_cache = true;
        return out;
    }
    LoaderOptions opts;
    opts.batch_size = 512;
    opts.shuffle = false;
    BatchLoader loader(data, opts);
    loader.start_epoch(0);
    out.logits = at::empty({data.size(), data.num_classes}, at::kFloat);
    teacher.set_train(false);
    at::NoGradGuard no_grad;
    int64_t done = 0;
    const bool live = progress && isatty(STDERR_FILENO);  // the \r counter only on a terminal
    if (progress && !live) std::cerr << "teacher logits: computing for " << data.size() << " images\n";
    while (auto batch = loader.next()) {
        const at::Tensor z = teacher.forward(batch->images);
        out.logits.index_copy_(0, batch->indices, z.to(at::kFloat));
        done += batch->labels.numel();
        if (live) std::cerr << "\rteacher logits: " << done << "/" << data.size() << std::flush;
    }
    if (live) std::cerr << "\n";
    fs::create_directories(cache_dir);
    std::string blob(kMagic, 8);
    const int64_t rows = data.size(), classes = data.num_classes;
    const size_t bytes = size_t(rows * classes) * sizeof(float);
    const uint64_t checksum = fnv1a64(out.logits.data_ptr<float>(), bytes);
    blob.append(reinterpret_cast<const char *>(&key), 8);
    blob.append(reinterpret_cast<const char *>(&rows), 8);
    blob.append(reinterpret_cast<const char *>(&classes), 8);
    blob.append(reinterpret_cast<const char *>(&checksum), 8);
    blob.append(reinterpret_cast<const char *>(out.logits.data_ptr<float>()), bytes);
    write_file_atomic(out.path, blob);
    return out;
}

}  // namespace dtokd
