// Fuzz target: the teacher-logit cache reader (read_teacher_logit_file), which must turn
// every bad file into a cache miss. Input: [mode][file]. Mode 1 writes a correct checksum
// (bytes 32..39, FNV-1a of everything after the 40-byte header) so mutations reach the
// code behind it. The reader is asked for key kFuzzLogitKey and the header's own shape
// when that is plausible (1..256 rows and classes, as a dataset would ask), else 4x3.
// Oracle: an accepted file's logits are exactly its payload.
#include <ATen/core/Tensor.h>

#include <cstring>

#include "content_hash.h"
#include "fuzz_support.h"
#include "teacher_logit_file.h"

namespace dtokd::fuzz {

int fuzz_logit_cache(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    std::string file(reinterpret_cast<const char *>(data) + 1, size - 1);
    constexpr size_t kHeader = 40;
    if ((data[0] & 1) && file.size() >= kHeader) {
        const uint64_t checksum = fnv1a64(file.data() + kHeader, file.size() - kHeader);
        std::memcpy(file.data() + 32, &checksum, 8);
    }
    int64_t rows = 4, classes = 3;
    if (file.size() >= kHeader) {
        int64_t r = 0, c = 0;
        std::memcpy(&r, file.data() + 16, 8);
        std::memcpy(&c, file.data() + 24, 8);
        if (r >= 1 && r <= 256 && c >= 1 && c <= 256) rows = r, classes = c;
    }
    const std::string path = write_scratch("teacher-logits.bin", file);
    at::Tensor logits;
    if (!accepts(path, [&] { logits = read_teacher_logit_file(path, kFuzzLogitKey, rows, classes); }) ||
        !logits.defined())
        return 0;
    const size_t bytes = size_t(rows * classes) * sizeof(float);
    if (logits.dim() != 2 || logits.size(0) != rows || logits.size(1) != classes || file.size() != kHeader + bytes ||
        std::memcmp(logits.data_ptr<float>(), file.data() + kHeader, bytes) != 0)
        throw FuzzFinding("read_teacher_logit_file accepted " + path + " but its logits are not the file's payload");
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_logit_cache)
