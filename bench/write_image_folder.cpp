// Writes a built-in dataset (fashion-mnist, mnist, cifar10, cifar100) as an image
// folder in torchvision's ImageFolder layout: OUT/train/<label>/<row>.<ext> and
// OUT/val/<label>/<row>.<ext>, class folders named by zero-padded label so their sorted
// order is the label order. For comparing `--dataset folder` with the built-in readers
// (bench/folder_vs_idx.sh) and for the decode benchmark.
// Usage: write_image_folder DATASET DATA_DIR OUT [png|jpeg] [max_train] [max_val]
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "dataset_registry.h"
#include "image_encode.h"

namespace fs = std::filesystem;

namespace {

void write_split(const dtokd::ImageDataset &d, const fs::path &dir, bool png, int64_t limit) {
    const int c = d.channels(), h = d.height(), w = d.width();
    const int64_t n = limit > 0 ? std::min(limit, d.size()) : d.size();
    const int digits = d.num_classes > 10 ? 3 : 2;
    for (int k = 0; k < d.num_classes; k++) {
        char name[16];
        std::snprintf(name, sizeof name, "%0*d", digits, k);
        fs::create_directories(dir / name);
    }
    std::vector<uint8_t> hwc(size_t(c * h * w));
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *chw = d.images[i].contiguous().data_ptr<uint8_t>();
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < h * w; p++) hwc[size_t(p * c + ch)] = chw[ch * h * w + p];
        char name[64];
        std::snprintf(name, sizeof name, "%0*d/%06lld.%s", digits, int(d.labels[i].item<int64_t>()),
                      static_cast<long long>(i), png ? "png" : "jpg");
        dtokd::write_bytes((dir / name).string(),
                           png ? dtokd::encode_png(hwc.data(), w, h, c) : dtokd::encode_jpeg(hwc.data(), w, h, c, 95));
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::cerr << "usage: write_image_folder DATASET DATA_DIR OUT [png|jpeg] [max_train] [max_val]\n";
        return 2;
    }
    try {
        const std::string format = argc > 4 ? argv[4] : "png";
        if (format != "png" && format != "jpeg") throw std::invalid_argument("format '" + format + "'; expected png or jpeg");
        const dtokd::DatasetPair p = dtokd::load_dataset(argv[1], argv[2]);
        if (fs::exists(argv[3])) throw std::runtime_error(std::string(argv[3]) + ": already exists");
        write_split(p.train, fs::path(argv[3]) / "train", format == "png", argc > 5 ? std::stoll(argv[5]) : 0);
        write_split(p.test, fs::path(argv[3]) / "val", format == "png", argc > 6 ? std::stoll(argv[6]) : 0);
    } catch (const std::exception &e) {
        std::cerr << "write_image_folder: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
