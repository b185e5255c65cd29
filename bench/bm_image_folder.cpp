// Decode + augment throughput of image folders: the BatchLoader's training transform
// (decode, RandomResizedCrop, flip, normalize) over a folder written at start, per
// worker count, at two sizes:
//   32:  CIFAR-like 32x32 RGB PNG files, output 32x32;
//   224: ImageNet-like 500x375 RGB JPEG files (quality 90), output 224x224.
// Each iteration is one epoch of the folder in batches of 64; images/s is the counter.
// The machine's core count bounds what more workers can give.
//   build/bench/bm_image_folder [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "batch_loader.h"
#include "image_encode.h"
#include "image_folder.h"

namespace fs = std::filesystem;

namespace {

// Smooth colour gradients plus noise: compresses like a photo more than noise does.
std::vector<uint8_t> photo_like(int w, int h, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> noise(-12, 12), phase(0, 255);
    const int p0 = phase(rng), p1 = phase(rng), p2 = phase(rng);
    std::vector<uint8_t> px(size_t(w * h * 3));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int base[3] = {p0 + 255 * x / w, p1 + 255 * y / h, p2 + 128 * (x + y) / (w + h)};
            for (int c = 0; c < 3; c++) px[size_t((y * w + x) * 3 + c)] = uint8_t(std::clamp(base[c] % 256 + noise(rng), 0, 255));
        }
    return px;
}

struct Folder {
    fs::path root;
    dtokd::DatasetPair data;
};

// One folder per size, written once per process under the temp folder and removed at exit.
const Folder &folder(int size) {
    static std::map<int, Folder> folders;
    auto it = folders.find(size);
    if (it != folders.end()) return it->second;
    Folder f;
    f.root = fs::temp_directory_path() / ("dtokd-bm-image-folder-" + std::to_string(size) + "-" + std::to_string(::getpid()));
    const bool small = size == 32;
    const int w = small ? 32 : 500, h = small ? 32 : 375, per_class = small ? 256 : 64;
    for (const std::string split : {"train", "val"})
        for (int k = 0; k < 2; k++) {
            const fs::path dir = f.root / split / ("class" + std::to_string(k));
            fs::create_directories(dir);
            for (int i = 0; i < (split == "train" ? per_class : 1); i++) {
                const std::vector<uint8_t> px = photo_like(w, h, uint32_t(k * 10000 + i));
                dtokd::write_bytes((dir / (std::to_string(i) + (small ? ".png" : ".jpg"))).string(),
                                   small ? dtokd::encode_png(px.data(), w, h, 3) : dtokd::encode_jpeg(px.data(), w, h, 3, 90));
            }
        }
    dtokd::ImageFolderOptions o;
    o.image_size = size;
    o.mean = {0.5, 0.5, 0.5};
    o.std = {0.25, 0.25, 0.25};
    f.data = dtokd::load_image_folder(f.root.string(), o);
    std::atexit([] {
        for (auto &[s, fo] : folders) {
            std::error_code ec;
            fs::remove_all(fo.root, ec);
        }
    });
    return folders.emplace(size, std::move(f)).first->second;
}

void BM_FolderEpoch(benchmark::State &state) {
    const int size = int(state.range(0)), workers = int(state.range(1));
    const dtokd::ImageDataset &train = folder(size).data.train;
    dtokd::LoaderOptions o;
    o.batch_size = 64;
    o.random_resized_crop = true;
    o.flip = true;
    o.workers = workers;
    dtokd::BatchLoader loader(train, o);
    int epoch = 0;
    for (auto _ : state) {
        loader.start_epoch(epoch++);
        int64_t n = 0;
        while (auto b = loader.next()) n += b->labels.numel();
        benchmark::DoNotOptimize(n);
    }
    state.SetItemsProcessed(state.iterations() * train.size());
    state.counters["images_per_s"] = benchmark::Counter(double(state.iterations() * train.size()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_FolderEpoch)
    ->ArgNames({"size", "workers"})
    ->ArgsProduct({{32, 224}, {1, 2, 4}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
