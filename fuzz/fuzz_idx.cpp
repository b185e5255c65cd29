// Fuzz target: the IDX reader (load_idx_pair), plain or gzip (zlib's gzread reads both,
// so the corpus decides: fuzz/corpus/idx holds plain files, fuzz/corpus/idx_gz gzip ones).
// Input: [u16 LE n][the images file: n bytes][the labels file: the rest].
#include <ATen/core/Tensor.h>

#include <algorithm>

#include "fuzz_support.h"
#include "image_dataset.h"

namespace dtokd::fuzz {

int fuzz_idx(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const size_t n = std::min<size_t>(data[0] | (size_t(data[1]) << 8), size - 2);
    const char *p = reinterpret_cast<const char *>(data) + 2;
    const std::string images = write_scratch("images-idx3-ubyte", std::string_view(p, n));
    const std::string labels = write_scratch("labels-idx1-ubyte", std::string_view(p + n, size - 2 - n));
    ImageDataset d;
    const bool ok = accepts(images, [&] { d = load_idx_pair(images, labels, "fuzz", 10); }, labels);
    if (!ok) return 0;
    if (d.images.dim() != 4 || d.images.size(0) != d.labels.numel() || d.labels.numel() == 0)
        throw FuzzFinding("load_idx_pair accepted " + images + " but returned inconsistent tensors");
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_idx)
