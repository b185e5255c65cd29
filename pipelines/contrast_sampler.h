// Class-aware negative sample indices for contrastive objectives (CRD): per sample,
// its own dataset index, then K distinct indices drawn uniformly without replacement
// from the samples of OTHER classes, as the reference's CIFAR100InstanceSample does
// in its "exact" mode. Draws are a pure function of the seed (the loader passes one
// per (seed, epoch, batch)), so a run's negatives do not depend on thread timing.
// No per-class negative lists are stored (the reference keeps N x (C-1) indices): the
// rows sorted by class let a position in [0, N - n_c) address class c's negatives.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace dtokd {

class ContrastSampler {
public:
    // `labels`: int64 [N] in [0, num_classes). Throws std::invalid_argument when
    // `negatives` < 1 or exceeds the smallest other-class pool (max_negatives()).
    ContrastSampler(const at::Tensor &labels, int num_classes, int64_t negatives);

    int64_t negatives() const { return negatives_; }
    // The most negatives every sample can get without replacement: N minus the size
    // of the largest class.
    int64_t max_negatives() const { return max_negatives_; }

    // int64 [rows.size(), 1 + K]: column 0 = rows[i], then K distinct other-class rows.
    at::Tensor sample(const std::vector<int64_t> &rows, uint64_t seed) const;

private:
    std::vector<int64_t> labels_;    // per row
    std::vector<int64_t> by_class_;  // rows sorted by class (stable)
    std::vector<int64_t> start_, count_;  // per class: its first position in by_class_, its size
    int64_t negatives_ = 0, max_negatives_ = 0;
};

}  // namespace dtokd
