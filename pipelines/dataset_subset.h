// A fixed, stratified fraction of a training split: the label-scarce regime of KD
// studies (the student sees a few labelled images, the teacher was trained on all).
// Per class, round(fraction * count) rows (at least one) are kept, chosen by a seeded
// shuffle of that class's rows and kept in their original order. The choice depends
// only on (labels, fraction, seed), not on the run's seed: every run of a study that
// passes the same fraction and subset seed trains on the same images.
#pragma once
#include <cstdint>

#include "image_dataset.h"

namespace dtokd {

// Throws std::invalid_argument unless 0 < fraction <= 1. fraction 1 returns `data` as is.
ImageDataset stratified_subset(const ImageDataset &data, double fraction, uint64_t seed);

}  // namespace dtokd
