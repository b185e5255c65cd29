// Mini-batches from an ImageDataset, made by background worker threads into a small
// queue so the training step does not wait for data. Order and augmentation
// (random crop with padding or RandomResizedCrop, horizontal flip) are a pure function
// of (seed, epoch): the same batches for any number of workers.
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>
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
    // Threads making batches (each makes whole batches; they are queued in order).
    int workers = 1;
    // Image files (ImageDataset::files) only: a RandomResizedCrop with an area fraction in
    // [min_crop_scale, 1] instead of the evaluation transform (resize + centre crop).
    bool random_resized_crop = false;
    double min_crop_scale = 0.08;
    // Image files only: a file that cannot be decoded is left out of its batch and listed
    // (bad_images()) instead of failing next().
    bool skip_bad_images = false;
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
    // Batches (images, labels, indices) in page-locked memory, so a copy to a GPU with
    // non_blocking=true is queued on the stream instead of waiting (a CUDA LibTorch only).
    bool pin_memory = false;
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
    // The next batch (this rank's share) of the epoch, or nullopt at its end. A failure
    // making a batch (e.g. an image file that cannot be decoded) is rethrown here.
    std::optional<Batch> next();

    int64_t batches_per_epoch() const;
    // Samples an epoch leaves out on every rank (the cut of its last batch; 0 in one process).
    int64_t samples_left_out() const;
    bool augments() const { return options_.crop_padding > 0 || options_.flip || options_.random_resized_crop; }
    // With skip_bad_images: the files left out so far ("path: why"), sorted, each once.
    std::vector<std::string> bad_images() const;
    // Seconds next() spent waiting for the producer since construction.
    double wait_seconds() const { return wait_seconds_; }

private:
    void produce(int epoch, int64_t first_batch);
    Batch make_batch(const std::vector<int64_t> &rows, uint64_t rng_seed);
    // One image: from memory (pad-crop) or decoded from its file; false when left out.
    void copy_image(int64_t row, std::mt19937_64 &rng, float *out) const;
    bool render_file(int64_t row, std::mt19937_64 &rng, float *out);
    void stop();

    const ImageDataset &data_;
    LoaderOptions options_;
    std::optional<ContrastSampler> contrast_;
    std::thread worker_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Batch> queue_;
    bool done_ = true, stop_ = false;
    std::exception_ptr error_;  // the first failure of an epoch's workers
    std::set<std::string> bad_images_;
    double wait_seconds_ = 0;
};

}  // namespace dtokd
