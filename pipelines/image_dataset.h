// A labelled image dataset: uint8 pixels in memory, as loaded from IDX (MNIST /
// Fashion-MNIST) or CIFAR binary files, or image files decoded per batch (image
// folders, image_folder.h). Loaders check every header, size and label and throw
// std::runtime_error naming the file and what was expected.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

namespace dtokd {

struct ImageFiles;

struct ImageDataset {
    std::string name;    // e.g. "fashion-mnist/train"
    at::Tensor images;   // uint8 [N, C, H, W]; undefined when `files` holds the images
    at::Tensor labels;   // int64 [N], in [0, num_classes)
    int num_classes = 0;
    // Per-channel normalization used by the loader.
    std::vector<double> mean, std;
    // Image folders: the files, decoded by the loader per batch.
    std::shared_ptr<const ImageFiles> files;
    std::vector<std::string> class_names;  // image folders: the sorted class folder names
    std::vector<std::string> left_out;     // files left out as unreadable ("path: why")

    int64_t size() const { return labels.numel(); }
    // The model input's shape (for files: after the transforms).
    int channels() const;
    int height() const;
    int width() const;
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

}  // namespace dtokd
