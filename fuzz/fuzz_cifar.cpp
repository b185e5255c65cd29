// Fuzz target: the CIFAR binary reader (load_cifar_dataset). Input: [mode][file bytes];
// mode bit 0 picks CIFAR-100 (train.bin, test.bin) over CIFAR-10 (data_batch_1..5.bin,
// test_batch.bin). Every file name of the folder is a link to the one input file.
#include <ATen/core/Tensor.h>

#include <filesystem>

#include "fuzz_support.h"
#include "image_dataset.h"

namespace dtokd::fuzz {

namespace {
const std::string &cifar_dir() {
    static const std::string dir = [] {
        namespace fs = std::filesystem;
        const fs::path d = fs::path(scratch_dir()) / "cifar";
        fs::create_directories(d);
        for (const char *name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                 "data_batch_5.bin", "test_batch.bin", "train.bin", "test.bin"}) {
            std::error_code ec;
            fs::remove(d / name, ec);
            fs::create_symlink("../cifar-input.bin", d / name);
        }
        return d.string();
    }();
    return dir;
}
}  // namespace

int fuzz_cifar(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int classes = (data[0] & 1) ? 100 : 10;
    const std::string &dir = cifar_dir();
    write_scratch("cifar-input.bin", std::string_view(reinterpret_cast<const char *>(data) + 1, size - 1));
    DatasetPair p;
    if (!accepts(dir, [&] { p = load_cifar_dataset(dir, classes); })) return 0;
    for (const ImageDataset *d : {&p.train, &p.test})
        if (d->images.size(0) != d->labels.numel() || d->images.size(1) != 3 || d->labels.numel() == 0)
            throw FuzzFinding("load_cifar_dataset accepted " + dir + " but returned inconsistent tensors");
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_cifar)
