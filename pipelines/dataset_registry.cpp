// See dataset_registry.h.
#include "dataset_registry.h"

#include <stdexcept>

namespace dtokd {

DatasetPair load_dataset(const std::string &kind, const std::string &dir, const ImageFolderOptions &folder) {
    if (kind == "fashion-mnist" || kind == "mnist") {
        std::string d = dir;
        if (d.empty()) {
            d = kind == "fashion-mnist" ? default_fashion_mnist_dir() : "";
            if (d.empty())
                throw std::runtime_error("no --data directory given and the Debian package dataset-fashion-mnist "
                                         "is not installed (expected /usr/share/datasets/fashion-mnist)");
        }
        DatasetPair p = load_idx_dataset(d, kind, 10);
        const double mean = kind == "fashion-mnist" ? 0.2860 : 0.1307, std = kind == "fashion-mnist" ? 0.3530 : 0.3081;
        for (ImageDataset *s : {&p.train, &p.test}) {
            s->mean = {mean};
            s->std = {std};
        }
        return p;
    }
    if (kind == "cifar10" || kind == "cifar100") {
        if (dir.empty()) throw std::runtime_error(kind + " needs --data DIR (the folder of its binary files)");
        return load_cifar_dataset(dir, kind == "cifar10" ? 10 : 100);
    }
    if (kind == "folder") return load_image_folder(dir, folder);
    throw std::invalid_argument("dataset '" + kind +
                                "' is unknown; expected fashion-mnist, mnist, cifar10, cifar100 or folder");
}

}  // namespace dtokd
