// See teacher_logit_file.h.
#include "teacher_logit_file.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "atomic_file.h"
#include "content_hash.h"

namespace dtokd {

namespace {
constexpr char kMagic[8] = {'D', 'T', 'K', 'D', 'T', 'L', 'C', '1'};
}  // namespace

at::Tensor read_teacher_logit_file(const std::string &path, uint64_t key, int64_t rows, int64_t classes) {
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

void write_teacher_logit_file(const std::string &path, uint64_t key, const at::Tensor &logits) {
    std::string blob(kMagic, 8);
    const int64_t rows = logits.size(0), classes = logits.size(1);
    const size_t bytes = size_t(rows * classes) * sizeof(float);
    const uint64_t checksum = fnv1a64(logits.data_ptr<float>(), bytes);
    blob.append(reinterpret_cast<const char *>(&key), 8);
    blob.append(reinterpret_cast<const char *>(&rows), 8);
    blob.append(reinterpret_cast<const char *>(&classes), 8);
    blob.append(reinterpret_cast<const char *>(&checksum), 8);
    blob.append(reinterpret_cast<const char *>(logits.data_ptr<float>()), bytes);
    write_file_atomic(path, blob);
}

}  // namespace dtokd
