// Mini-batches from an ImageDataset, produced on a background thread into a small
// queue so the training step does not wait for data. Order and augmentation
// (random crop with padding, horizontal flip) are a pure function of (seed, epoch).
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "contrast_sampler.h"
#include "image_dataset.h"

namespace dtokd {

struct Batch {
    at::Tensor images;   // float32 [B, C, H, W], normalized
    at::Tensor labels;   // int64 [B]
    at::Tensor indices;  // int64 [B]: dataset rows (teacher-logit cache key)
    at::Tensor contrast_indices;  // int64 [B, 1 + K] when the loader draws K negatives (CRD), else undefined
};

struct LoaderOptions {
    int64_t batch_size = 128;
    bool shuffle = true;
    bool drop_last = false;
    int crop_padding = 0;  // > 0: random crop of the original size from the zero-padded image
    bool flip = false;     // random horizontal flip
    uint64_t seed = 0;
    int prefetch = 4;      // batches buffered ahead
    // > 0: every batch carries Batch::contrast_indices with this many class-aware
    // negatives per sample (contrast_sampler.h); drawn from their own random stream, so
    // images and augmentation are the same with and without them.
    int64_t contrast_negatives = 0;
    // Data-parallel (torch.utils.data.DistributedSampler's split): batch_size is the
    // global batch, in the same order on every rank; rank r of R takes its rows r, r + R,
    // ... An epoch's last batch is cut to a multiple of R (and left out when smaller than
    // R), so every rank sees the same number of equal shares. Augmentation and negatives
    // are drawn per rank (not the draws of one process on the whole batch).
    int rank = 0, world_size = 1;
};

class BatchLoader {
public:
    // Throws std::invalid_argument on bad options (also: more contrast negatives than
    // the smallest other-class pool holds), before any thread starts.
    BatchLoader(const ImageDataset &data, LoaderOptions options);
    ~BatchLoader();
    BatchLoader(const BatchLoader &) = delete;
    BatchLoader &operator=(const BatchLoader &) = delete;

    // Starts producing epoch `epoch` from its batch `first_batch` (resume: the batches
    // before it are skipped, not made; the rest are the same as without skipping).
    // Stops any epoch in flight.
    void start_epoch(int epoch, int64_t first_batch = 0);
    // The next batch (this rank's share) of the epoch, or nullopt at its end.
    std::optional<Batch> next();

    int64_t batches_per_epoch() const;
    // Samples an epoch leaves out on every rank (the cut of its last batch; 0 in one process).
    int64_t samples_left_out() const;
    bool augments() const { return options_.crop_padding > 0 || options_.flip; }
    // Seconds next() spent waiting for the producer since construction.
    double wait_seconds() const { return wait_seconds_; }

private:
    void produce(int epoch, int64_t first_batch);
    Batch make_batch(const std::vector<int64_t> &rows, uint64_t rng_seed) const;
    void stop();

    const ImageDataset &data_;
    LoaderOptions options_;
    std::optional<ContrastSampler> contrast_;
    std::thread worker_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    bool done_ = true, stop_ = false;
    double wait_seconds_ = 0;
};

}  // namespace dtokd
