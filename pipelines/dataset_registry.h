// The datasets a user picks by name (--dataset): the built-in IDX and CIFAR readers
// and image folders.
#pragma once
#include <string>

#include "image_dataset.h"
#include "image_folder.h"

namespace dtokd {

// "fashion-mnist" (IDX, 10 classes), "mnist" (IDX, 10), "cifar10", "cifar100" (binary
// files), "folder" (DIR/train and DIR/val image folders, read with `folder`).
DatasetPair load_dataset(const std::string &kind, const std::string &dir, const ImageFolderOptions &folder = {});

}  // namespace dtokd
