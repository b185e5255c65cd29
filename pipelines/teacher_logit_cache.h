// Teacher logits for every training image, computed once and kept on disk next
// to the run data, keyed by a hash of the teacher weights file and the dataset
// (pixels, labels, normalization) and verified by a payload checksum. Valid only
// when the teacher sees un-augmented inputs. Any mismatch recomputes.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "model_handle.h"
#include "image_dataset.h"

namespace dtokd {

struct TeacherLogits {
    at::Tensor logits;  // float32 [N, C], row i = teacher(train image i)
    bool from_cache = false;
    std::string path;
};

// `workers`: threads making the batches; with `skip_bad_images` an image file that cannot
// be decoded gets zero logits (training leaves that file out too).
TeacherLogits teacher_logits_for(ModelHandle &teacher, const std::string &teacher_file, const ImageDataset &data,
                                 const std::string &cache_dir, bool progress, int workers = 1,
                                 bool skip_bad_images = false);

}  // namespace dtokd
