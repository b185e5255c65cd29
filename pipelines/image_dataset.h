// An in-memory labelled image dataset (uint8 pixels), as loaded from IDX
// (MNIST / Fashion-MNIST) or CIFAR binary files. Loaders check every header,
// size and label and throw std::runtime_error naming the file and what was expected.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace dtokd {

struct ImageDataset {
    std::string name;    // e.g. "fashion-mnist/train"
    at::Tensor images;   // uint8 [N, C, H, W]
    at::Tensor labels;   // int64 [N], in [0, num_classes)
    int num_classes = 0;
    // Per-channel normalization used by the loader.
    std::vector<double> mean, std;

    int64_t size() const { return labels.numel(); }
    int channels() const { return int(images.size(1)); }
    int height() const { return int(images.size(2)); }
    int width() const { return int(images.size(3)); }
};

struct DatasetPair {
    ImageDataset train, test;
};

// IDX files (plain or .gz): DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
DatasetPair load_idx_dataset(const std::string &dir, const std::string &name, int num_classes);
// One IDX image file and its label file.
ImageDataset load_idx_pair(const std::string &images_path, const std::string &labels_path, const std::string &name,
                           int num_classes);

// CIFAR binary: cifar10 -> DIR/data_batch_{1..5}.bin + DIR/test_batch.bin;
// cifar100 -> DIR/train.bin + DIR/test.bin (coarse + fine label; fine is used).
DatasetPair load_cifar_dataset(const std::string &dir, int num_classes);

// The Debian package dataset-fashion-mnist's folder, or "" when it is not installed.
std::string default_fashion_mnist_dir();

// "fashion-mnist" (IDX, 10 classes), "mnist" (IDX, 10), "cifar10", "cifar100".
DatasetPair load_dataset(const std::string &kind, const std::string &dir);

}  // namespace dtokd
