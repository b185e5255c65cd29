// See batch_loader.h. The workers use plain loops (no ATen parallel ops) so they
// never compete with the training step for LibTorch's intra-op thread pool.
#include "batch_loader.h"

#include "cuda_device.h"
#include "image_folder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <random>
#include <stdexcept>

namespace dtokd {

BatchLoader::BatchLoader(const ImageDataset &data, LoaderOptions options) : data_(data), options_(options) {
    if (options_.batch_size < 1)
        throw std::invalid_argument("batch_size is " + std::to_string(options_.batch_size) + "; expected >= 1");
    if (data_.size() == 0) throw std::invalid_argument(data_.name + ": the dataset is empty");
    if (int(data_.mean.size()) != data_.channels() || int(data_.std.size()) != data_.channels())
        throw std::invalid_argument(data_.name + ": normalization needs one mean/std per channel");
    if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
        throw std::invalid_argument("rank " + std::to_string(options_.rank) + " of " +
                                    std::to_string(options_.world_size) + "; expected 0 <= rank < world size");
    if (options_.pin_memory && !torch_built_with_cuda())
        throw std::invalid_argument("pinned batches need a CUDA LibTorch; this one was built without CUDA");
    if (options_.batch_size % options_.world_size != 0)
        throw std::invalid_argument("batch size " + std::to_string(options_.batch_size) +
                                    " cannot be split evenly over " + std::to_string(options_.world_size) +
                                    " ranks; pass a global --batch-size that is a multiple of the world size");
    if (options_.workers < 1 || options_.prefetch < 1)
        throw std::invalid_argument("workers " + std::to_string(options_.workers) + " and prefetch " +
                                    std::to_string(options_.prefetch) + "; expected >= 1");
    if (data_.files && options_.crop_padding > 0)
        throw std::invalid_argument(data_.name + ": padded random crops are for in-memory images; image files take "
                                                 "a RandomResizedCrop");
    if (!data_.files && (options_.random_resized_crop || options_.skip_bad_images))
        throw std::invalid_argument(data_.name + ": RandomResizedCrop and skipping bad images are for image files");
    if (!(options_.min_crop_scale > 0 && options_.min_crop_scale <= 1))
        throw std::invalid_argument("minimum crop scale " + std::to_string(options_.min_crop_scale) +
                                    "; expected 0 < scale <= 1");
    if (options_.contrast_negatives < 0)
        throw std::invalid_argument("contrast_negatives is " + std::to_string(options_.contrast_negatives) +
                                    "; expected >= 0");
    if (options_.contrast_negatives > 0) {
        try {
            contrast_.emplace(data_.labels, data_.num_classes, options_.contrast_negatives);
        } catch (const std::invalid_argument &e) {
            throw std::invalid_argument(data_.name + ": " + e.what());
        }
    }
}

BatchLoader::~BatchLoader() { stop(); }

int64_t BatchLoader::batches_per_epoch() const {
    const int64_t n = data_.size(), b = options_.batch_size;
    return n / b + (!options_.drop_last && n % b >= options_.world_size ? 1 : 0);
}

int64_t BatchLoader::samples_left_out() const {
    const int64_t rest = data_.size() % options_.batch_size;
    return options_.drop_last || rest < options_.world_size ? rest : rest % options_.world_size;
}

void BatchLoader::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    queue_.clear();
    error_ = nullptr;
    stop_ = false;
}

void BatchLoader::start_epoch(int epoch, int64_t first_batch) {
    if (first_batch < 0 || first_batch > batches_per_epoch())
        throw std::invalid_argument("first batch " + std::to_string(first_batch) + " is outside the epoch's " +
                                    std::to_string(batches_per_epoch()) + " batches");
    stop();
    done_ = false;
    worker_ = std::thread([this, epoch, first_batch] { produce(epoch, first_batch); });
}

void BatchLoader::produce(int epoch, int64_t first_batch) {
    const int64_t n = data_.size();
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    // splitmix-style mixing keeps (seed, epoch) streams independent.
    const uint64_t epoch_seed = options_.seed * 0x9E3779B97F4A7C15ull + uint64_t(epoch) * 0xBF58476D1CE4E5B9ull + 1;
    if (options_.shuffle) {
        std::mt19937_64 rng(epoch_seed);
        std::shuffle(order.begin(), order.end(), rng);
    }
    const int64_t batches = batches_per_epoch();
    // Each worker takes the next batch number, makes it, and queues it once every
    // earlier batch is queued: the order (and every batch) is the same for any count.
    std::atomic<int64_t> next_batch{first_batch};
    int64_t next_queued = first_batch;
    auto work = [&] {
        for (int64_t b; (b = next_batch++) < batches;) {
            const int64_t begin = b * options_.batch_size, end = std::min(n, begin + options_.batch_size);
            std::vector<int64_t> rows(order.begin() + begin, order.begin() + end);
            uint64_t batch_seed = epoch_seed + uint64_t(b) * 0x94D049BB133111EBull;
            if (options_.world_size > 1) {
                const size_t world = size_t(options_.world_size), usable = rows.size() - rows.size() % world;
                std::vector<int64_t> share;
                for (size_t i = size_t(options_.rank); i < usable; i += world) share.push_back(rows[i]);
                rows = std::move(share);
                batch_seed ^= (uint64_t(options_.rank) + 1) * 0xD6E8FEB86659FD93ull;
            }
            std::optional<Batch> batch;
            std::exception_ptr failure;
            try {
                batch = make_batch(rows, batch_seed);
            } catch (...) {
                failure = std::current_exception();
            }
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] {
                return stop_ || error_ || (next_queued == b && int(queue_.size()) < options_.prefetch);
            });
            if (stop_ || error_) return;
            if (failure) {
                // next() hands out the batches before this one, then rethrows.
                error_ = failure;
                cv_.notify_all();
                return;
            }
            queue_.push_back(std::move(*batch));
            next_queued++;
            cv_.notify_all();
        }
    };
    std::vector<std::thread> helpers;
    for (int w = 1; w < options_.workers; w++) helpers.emplace_back(work);
    work();
    for (std::thread &t : helpers) t.join();
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    cv_.notify_all();
}

Batch BatchLoader::make_batch(const std::vector<int64_t> &rows, uint64_t rng_seed) {
    const int64_t bsz = int64_t(rows.size());
    const int64_t image_numel = int64_t(data_.channels()) * data_.height() * data_.width();
    Batch out;
    const at::TensorOptions pinned = at::TensorOptions().pinned_memory(options_.pin_memory);
    out.images = at::empty({bsz, data_.channels(), data_.height(), data_.width()}, pinned.dtype(at::kFloat));
    out.labels = at::empty({bsz}, pinned.dtype(at::kLong));
    out.indices = at::empty({bsz}, pinned.dtype(at::kLong));
    const int64_t *labels = data_.labels.data_ptr<int64_t>();
    float *dst = out.images.data_ptr<float>();
    int64_t *out_labels = out.labels.data_ptr<int64_t>(), *out_rows = out.indices.data_ptr<int64_t>();
    std::mt19937_64 rng(rng_seed);
    std::vector<int64_t> kept_rows;
    int64_t kept = 0;
    for (int64_t i = 0; i < bsz; i++) {
        const int64_t row = rows[size_t(i)];
        if (data_.files) {
            if (!render_file(row, rng, dst + kept * image_numel)) continue;
        } else {
            copy_image(row, rng, dst + kept * image_numel);
        }
        out_labels[kept] = labels[row];
        out_rows[kept] = row;
        kept_rows.push_back(row);
        kept++;
    }
    if (kept < bsz) {
        out.images = out.images.narrow(0, 0, kept);
        out.labels = out.labels.narrow(0, 0, kept);
        out.indices = out.indices.narrow(0, 0, kept);
    }
    // Its own stream (not `rng`'s), so the images do not change when negatives are drawn.
    if (contrast_) out.contrast_indices = contrast_->sample(kept_rows, rng_seed ^ 0xD1B54A32D192ED03ull);
    return out;
}

void BatchLoader::copy_image(int64_t row, std::mt19937_64 &rng, float *out) const {
    const int c = data_.channels(), h = data_.height(), w = data_.width(), pad = options_.crop_padding;
    std::uniform_int_distribution<int> shift(-pad, pad);
    std::bernoulli_distribution coin(0.5);
    const int dy = pad > 0 ? shift(rng) : 0, dx = pad > 0 ? shift(rng) : 0;
    const bool flip = options_.flip && coin(rng);
    const uint8_t *src = data_.images.data_ptr<uint8_t>();
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *plane = src + (row * c + ch) * h * w;
        float *out_plane = out + int64_t(ch) * h * w;
        const float scale = float(1.0 / (255.0 * data_.std[ch])), shift_v = float(-data_.mean[ch] / data_.std[ch]);
        for (int y = 0; y < h; y++) {
            const int sy = y + dy;
            for (int x = 0; x < w; x++) {
                const int sx = (flip ? w - 1 - x : x) + dx;
                const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                // Padding is zero in pixel space, as torchvision's RandomCrop(padding=...).
                const float v = inside ? float(plane[sy * w + sx]) : 0.f;
                out_plane[y * w + x] = v * scale + shift_v;
            }
        }
    }
}

bool BatchLoader::render_file(int64_t row, std::mt19937_64 &rng, float *out) {
    // Drawn whether or not the file decodes, so one bad file does not shift the others' draws.
    std::mt19937_64 image_rng(rng());
    std::bernoulli_distribution coin(0.5);
    const bool mirror = options_.flip && coin(rng);
    try {
        data_.files->render(row, options_.random_resized_crop, options_.min_crop_scale, mirror, image_rng, data_.mean,
                            data_.std, out);
        return true;
    } catch (const std::runtime_error &e) {
        if (!options_.skip_bad_images) throw;
        std::lock_guard<std::mutex> lock(mutex_);
        bad_images_.insert(e.what());
        return false;
    }
}

std::vector<std::string> BatchLoader::bad_images() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {bad_images_.begin(), bad_images_.end()};
}

std::optional<Batch> BatchLoader::next() {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || done_ || error_; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (queue_.empty() && error_) std::rethrow_exception(error_);
    if (queue_.empty()) return std::nullopt;
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
}

}  // namespace dtokd
