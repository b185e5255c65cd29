// See contrast_sampler.h. Plain loops on one thread (the loader's producer), no ATen
// parallel ops, so sampling never competes with the training step's thread pool.
#include "contrast_sampler.h"

#include <ATen/ATen.h>

#include <random>
#include <stdexcept>
#include <string>

namespace dtokd {
namespace {

// Uniform in [0, bound) from a 64-bit generator (Lemire's multiply-shift with
// rejection): unbiased, and unlike std::uniform_int_distribution its output is the
// same on every standard library, so negatives are reproducible across builds.
inline uint64_t bounded(std::mt19937_64 &rng, uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(rng()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
        const uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = static_cast<unsigned __int128>(rng()) * bound;
            low = static_cast<uint64_t>(m);
        }
    }
    return static_cast<uint64_t>(m >> 64);
}

}  // namespace

ContrastSampler::ContrastSampler(const at::Tensor &labels, int num_classes, int64_t negatives)
    : negatives_(negatives) {
    if (labels.dim() != 1 || labels.scalar_type() != at::kLong)
        throw std::invalid_argument("contrast sampler: labels are " + std::string(c10::str(labels.sizes())) + " " +
                                    std::string(c10::toString(labels.scalar_type())) + "; expected int64 [N]");
    if (num_classes < 1)
        throw std::invalid_argument("contrast sampler: " + std::to_string(num_classes) + " classes; expected >= 1");
    const at::Tensor l = labels.contiguous();
    const int64_t n = l.numel();
    const int64_t *p = l.data_ptr<int64_t>();
    labels_.assign(p, p + n);
    count_.assign(size_t(num_classes), 0);
    for (int64_t i = 0; i < n; i++) {
        if (labels_[size_t(i)] < 0 || labels_[size_t(i)] >= num_classes)
            throw std::invalid_argument("contrast sampler: row " + std::to_string(i) + " has label " +
                                        std::to_string(labels_[size_t(i)]) + "; expected one in [0, " +
                                        std::to_string(num_classes) + ")");
        count_[size_t(labels_[size_t(i)])]++;
    }
    start_.assign(size_t(num_classes), 0);
    for (int c = 1; c < num_classes; c++) start_[size_t(c)] = start_[size_t(c - 1)] + count_[size_t(c - 1)];
    by_class_.resize(size_t(n));
    std::vector<int64_t> fill = start_;
    for (int64_t i = 0; i < n; i++) by_class_[size_t(fill[size_t(labels_[size_t(i)])]++)] = i;
    int64_t largest = 0;
    for (int64_t c : count_) largest = std::max(largest, c);
    max_negatives_ = n - largest;
    if (negatives_ < 1 || negatives_ > max_negatives_)
        throw std::invalid_argument(
            "contrast sampler: K = " + std::to_string(negatives_) +
            " negatives per sample, drawn without replacement from the samples of other classes; expected 1 <= K <= " +
            std::to_string(max_negatives_) + " (the " + std::to_string(n) + " samples minus the largest class's " +
            std::to_string(largest) + ")");
}

at::Tensor ContrastSampler::sample(const std::vector<int64_t> &rows, uint64_t seed) const {
    const int64_t b = int64_t(rows.size()), k = negatives_;
    at::Tensor out = at::empty({b, 1 + k}, at::kLong);
    int64_t *dst = out.data_ptr<int64_t>();
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> taken(by_class_.size() + 1, 0);  // by pool position; cleared after each row
    for (int64_t i = 0; i < b; i++) {
        const int64_t row = rows[size_t(i)];
        if (row < 0 || row >= int64_t(labels_.size()))
            throw std::invalid_argument("contrast sampler: row " + std::to_string(row) + " is outside the " +
                                        std::to_string(labels_.size()) + " samples");
        const size_t c = size_t(labels_[size_t(row)]);
        const int64_t pool = int64_t(by_class_.size()) - count_[c], skip_at = start_[c], skip = count_[c];
        int64_t *out_row = dst + i * (1 + k);
        out_row[0] = row;
        // Floyd's algorithm: exactly K draws give a uniform K-subset of [0, pool);
        // position j >= skip_at lies past class c's block in by_class_.
        for (int64_t j = pool - k; j < pool; j++) {
            int64_t t = int64_t(bounded(rng, uint64_t(j + 1)));
            if (taken[size_t(t)]) t = j;
            taken[size_t(t)] = 1;
            *++out_row = t;
        }
        out_row = dst + i * (1 + k);
        for (int64_t j = 1; j <= k; j++) {
            const int64_t t = out_row[j];
            taken[size_t(t)] = 0;
            out_row[j] = by_class_[size_t(t < skip_at ? t : t + skip)];
        }
    }
    return out;
}

}  // namespace dtokd
