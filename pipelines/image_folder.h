// Image folders in torchvision's ImageFolder layout: DIR/train/<class>/... and
// DIR/val/<class>/... (JPEG or PNG, grey or colour, any size, searched recursively).
// The classes are the sorted folder names of DIR/train; val must have the same ones.
// Loading lists the files and reads every header (so an unsupported or corrupt file is
// found before training, naming it); pixels are decoded per batch by the loader's
// workers (batch_loader.h), with torchvision's transforms (image_resample.h).
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "image_dataset.h"

namespace dtokd {

struct ImageFolderOptions {
    int image_size = 32;                // the square model input
    int channels = 0;                   // 1 or 3; 0: 1 when every training image is grey, else 3
    double center_crop_fraction = 0.875;  // evaluation: resize to image_size / fraction, crop the centre
    std::vector<double> mean, std;      // per channel, of pixels in [0, 1]; empty: computed (below)
    bool skip_bad_images = false;       // leave out (and list) unreadable files instead of failing
    int threads = 1;                    // for reading the headers and the statistics
};

// The files of one split and how each becomes a model input.
struct ImageFiles {
    std::vector<std::string> paths;
    int channels = 3, image_size = 32;
    double center_crop_fraction = 0.875;

    // Decodes `row` into out [C, S, S], normalized with mean/std. `random_crop`: a
    // RandomResizedCrop (area fraction from min_scale) drawn from rng; else Resize +
    // CenterCrop. `mirror`: flipped left-right. Throws (naming the file) when it cannot.
    void render(int64_t row, bool random_crop, double min_scale, bool mirror, std::mt19937_64 &rng,
                const std::vector<double> &mean, const std::vector<double> &std, float *out) const;
    // Paths, sizes and modification times: a key for caches of what the files hold.
    uint64_t fingerprint() const;
};

// Normalization statistics when none are given: per-channel mean and standard deviation
// of the evaluation-transformed pixels of up to this many evenly spaced training images.
constexpr int64_t kStatisticsImages = 2000;

// Throws std::runtime_error naming the folder or file and what was expected.
DatasetPair load_image_folder(const std::string &dir, const ImageFolderOptions &options);

}  // namespace dtokd
