// See image_folder.h.
#include "image_folder.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "content_hash.h"
#include "image_decode.h"
#include "image_resample.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &what) { throw std::runtime_error(path + ": " + what); }

std::string lower(std::string s) {
    for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// torchvision's ImageFolder lists these; files of other kinds (notes, .DS_Store) are
// ignored as it ignores them, but an image format dtokd cannot decode is reported.
bool decodable_extension(const std::string &ext) { return ext == ".jpg" || ext == ".jpeg" || ext == ".png"; }
bool other_image_extension(const std::string &ext) {
    static const std::set<std::string> kOther = {".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"};
    return kOther.count(ext) > 0;
}

// Runs body(i) for i in [0, n) on `threads` threads; the first exception is rethrown.
template <typename Body>
void parallel_for(int64_t n, int threads, Body body) {
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&] {
        for (int64_t i; (i = next++) < n;) {
            try {
                body(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                next = n;
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < std::max(1, threads); t++) pool.emplace_back(work);
    work();
    for (std::thread &t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

std::vector<std::string> class_folders(const std::string &split_dir) {
    std::vector<std::string> names;
    for (const auto &entry : fs::directory_iterator(split_dir))
        if (entry.is_directory() && entry.path().filename().string()[0] != '.')
            names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());  // byte order: Python's sorted() of the names
    return names;
}

struct Listing {
    std::vector<std::string> paths;
    std::vector<int64_t> labels;
    std::vector<int> channels;
    std::vector<std::string> left_out;
};

// Every decodable file of every class folder (recursively, sorted), with its header read.
Listing list_split(const std::string &split_dir, const std::vector<std::string> &classes,
                   const ImageFolderOptions &o) {
    Listing all;
    for (size_t c = 0; c < classes.size(); c++) {
        const fs::path class_dir = fs::path(split_dir) / classes[c];
        if (!fs::is_directory(class_dir)) fail(class_dir.string(), "class folder not found (DIR/train has it)");
        std::vector<std::string> files;
        for (const auto &entry : fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink)) {
            if (!entry.is_regular_file()) continue;
            const std::string ext = lower(entry.path().extension().string());
            if (decodable_extension(ext) || other_image_extension(ext)) files.push_back(entry.path().string());
        }
        std::sort(files.begin(), files.end());
        for (const std::string &f : files) {
            all.paths.push_back(f);
            all.labels.push_back(int64_t(c));
        }
    }
    // Headers on all threads; a bad file fails (naming it) or is left out.
    std::vector<std::string> problem(all.paths.size());
    all.channels.assign(all.paths.size(), 0);
    parallel_for(int64_t(all.paths.size()), o.threads, [&](int64_t i) {
        const std::string &path = all.paths[size_t(i)];
        try {
            if (other_image_extension(lower(fs::path(path).extension().string())))
                fail(path, "unsupported image format (dtokd reads JPEG and PNG)");
            const std::vector<uint8_t> bytes = read_file_bytes(path);
            all.channels[size_t(i)] = read_image_header(bytes.data(), bytes.size(), path).channels;
        } catch (const std::runtime_error &e) {
            if (!o.skip_bad_images) throw;
            problem[size_t(i)] = e.what();
        }
    });
    Listing kept;
    for (size_t i = 0; i < all.paths.size(); i++) {
        if (!problem[i].empty()) {
            kept.left_out.push_back(problem[i]);
            continue;
        }
        kept.paths.push_back(all.paths[i]);
        kept.labels.push_back(all.labels[i]);
        kept.channels.push_back(all.channels[i]);
    }
    std::vector<int64_t> per_class(classes.size(), 0);
    for (int64_t l : kept.labels) per_class[size_t(l)]++;
    for (size_t c = 0; c < classes.size(); c++)
        if (per_class[c] == 0)
            fail((fs::path(split_dir) / classes[c]).string(),
                 std::string("no ") + (o.skip_bad_images ? "readable " : "") +
                     "JPEG or PNG images; every class folder needs at least one (remove the folder or add images)");
    return kept;
}

std::string joined(const std::vector<std::string> &items) {
    std::string s;
    for (const std::string &i : items) s += (s.empty() ? "" : ", ") + i;
    return s;
}

// With skip_bad_images, an image that fails to decode is not counted and is listed in `left_out`
// (training leaves it out too); else the failure is thrown, before any training.
void compute_statistics(const ImageFiles &files, const ImageFolderOptions &o, std::vector<double> &mean,
                        std::vector<double> &std, std::vector<std::string> &left_out) {
    const int64_t n = int64_t(files.paths.size()), count = std::min(n, kStatisticsImages);
    const int c = files.channels;
    const int64_t plane = int64_t(files.image_size) * files.image_size;
    std::vector<double> sum(size_t(count) * size_t(c), 0), sum_sq(size_t(count) * size_t(c), 0);
    std::vector<std::string> failed(static_cast<size_t>(count));
    const std::vector<double> identity_mean(size_t(c), 0.0), identity_std(size_t(c), 1.0);
    parallel_for(count, o.threads, [&](int64_t k) {
        const int64_t row = k * n / count;  // evenly spaced, so every class is in
        std::vector<float> pixels(size_t(c * plane));
        std::mt19937_64 unused(0);
        try {
            files.render(row, false, 1.0, false, unused, identity_mean, identity_std, pixels.data());
        } catch (const std::runtime_error &e) {
            if (!o.skip_bad_images) throw;
            failed[size_t(k)] = e.what();
            return;
        }
        for (int ch = 0; ch < c; ch++)
            for (int64_t p = 0; p < plane; p++) {
                const double v = pixels[size_t(ch * plane + p)];
                sum[size_t(k * c + ch)] += v;
                sum_sq[size_t(k * c + ch)] += v * v;
            }
    });
    int64_t counted = 0;
    for (const std::string &f : failed) {
        if (f.empty())
            counted++;
        else
            left_out.push_back(f);
    }
    if (counted == 0) throw std::runtime_error("no training image could be decoded to compute the normalization");
    mean.assign(size_t(c), 0);
    std.assign(size_t(c), 0);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0;
        for (int64_t k = 0; k < count; k++) {  // summed in a fixed order: the same on every run
            s += sum[size_t(k * c + ch)];
            s2 += sum_sq[size_t(k * c + ch)];
        }
        const double pixels = double(counted * plane);
        mean[size_t(ch)] = s / pixels;
        // A constant channel would divide by zero: keep 1 (no scaling) then.
        const double var = s2 / pixels - mean[size_t(ch)] * mean[size_t(ch)];
        std[size_t(ch)] = var > 1e-12 ? std::sqrt(var) : 1.0;
    }
}

ImageDataset make_split(const std::string &name, Listing listing, int channels, const ImageFolderOptions &o,
                        const std::vector<std::string> &classes) {
    ImageDataset d;
    d.name = name;
    auto files = std::make_shared<ImageFiles>();
    files->paths = std::move(listing.paths);
    files->channels = channels;
    files->image_size = o.image_size;
    files->center_crop_fraction = o.center_crop_fraction;
    d.labels = at::tensor(listing.labels, at::kLong);
    d.files = files;
    d.num_classes = int(classes.size());
    d.class_names = classes;
    d.left_out = std::move(listing.left_out);
    return d;
}

}  // namespace

void ImageFiles::render(int64_t row, bool random_crop, double min_scale, bool mirror, std::mt19937_64 &rng,
                        const std::vector<double> &mean, const std::vector<double> &std, float *out) const {
    const std::string &path = paths.at(size_t(row));
    const std::vector<uint8_t> bytes = read_file_bytes(path);
    const DecodedImage img = decode_image(bytes.data(), bytes.size(), channels, path);
    ResizeWindow win;
    if (random_crop) {
        win.box = random_resized_crop_box(img.width, img.height, rng, min_scale);
        win.resized_h = win.resized_w = win.out_h = win.out_w = image_size;
    } else {
        win = center_crop_window(img.width, img.height, image_size, center_crop_fraction);
    }
    win.mirror = mirror;
    resize_window(img, win, out);
    const size_t plane = size_t(image_size) * size_t(image_size);
    for (int ch = 0; ch < channels; ch++) {
        const float scale = float(1.0 / (255.0 * std[size_t(ch)])), shift = float(-mean[size_t(ch)] / std[size_t(ch)]);
        for (size_t p = 0; p < plane; p++) out[size_t(ch) * plane + p] = out[size_t(ch) * plane + p] * scale + shift;
    }
}

uint64_t ImageFiles::fingerprint() const {
    uint64_t h = kFnv1a64Seed;
    for (const std::string &p : paths) {
        std::error_code ec;
        const uint64_t size = fs::file_size(p, ec);
        const auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
        h = fnv1a64(p, h);
        h = fnv1a64(&size, sizeof size, h);
        h = fnv1a64(&mtime, sizeof mtime, h);
    }
    const int64_t geometry[2] = {channels, image_size};
    h = fnv1a64(geometry, sizeof geometry, h);
    return fnv1a64(&center_crop_fraction, sizeof center_crop_fraction, h);
}

DatasetPair load_image_folder(const std::string &dir, const ImageFolderOptions &o) {
    if (dir.empty()) throw std::runtime_error("the folder dataset needs --data DIR (with DIR/train and DIR/val)");
    if (!fs::is_directory(dir)) fail(dir, "data folder not found");
    if (o.image_size < 1 || o.image_size > 4096)
        throw std::invalid_argument("image size " + std::to_string(o.image_size) + "; expected 1..4096");
    if (o.channels != 0 && o.channels != 1 && o.channels != 3)
        throw std::invalid_argument("channels " + std::to_string(o.channels) + "; expected 1, 3 or 0 (from the images)");
    if (!(o.center_crop_fraction > 0 && o.center_crop_fraction <= 1))
        throw std::invalid_argument("center crop fraction " + std::to_string(o.center_crop_fraction) +
                                    "; expected 0 < fraction <= 1");
    const std::string train_dir = (fs::path(dir) / "train").string(), val_dir = (fs::path(dir) / "val").string();
    for (const std::string &d : {train_dir, val_dir})
        if (!fs::is_directory(d))
            fail(d, "folder not found; expected DIR/train/<class>/*.{jpg,png} and DIR/val/<class>/*.{jpg,png}");
    const std::vector<std::string> classes = class_folders(train_dir), val_classes = class_folders(val_dir);
    if (classes.size() < 2)
        fail(train_dir, std::to_string(classes.size()) + " class folders; expected at least 2");
    if (val_classes != classes) {
        std::vector<std::string> only_train, only_val;
        std::set_difference(classes.begin(), classes.end(), val_classes.begin(), val_classes.end(),
                            std::back_inserter(only_train));
        std::set_difference(val_classes.begin(), val_classes.end(), classes.begin(), classes.end(),
                            std::back_inserter(only_val));
        fail(dir, "train and val have different class folders (only in train: [" + joined(only_train) +
                      "], only in val: [" + joined(only_val) + "])");
    }
    Listing train = list_split(train_dir, classes, o), val = list_split(val_dir, classes, o);
    int channels = o.channels;
    if (channels == 0) {
        const bool all_grey = std::all_of(train.channels.begin(), train.channels.end(), [](int c) { return c == 1; });
        channels = all_grey ? 1 : 3;
    }
    DatasetPair p;
    p.train = make_split("folder:" + train_dir, std::move(train), channels, o, classes);
    p.test = make_split("folder:" + val_dir, std::move(val), channels, o, classes);
    std::vector<double> mean = o.mean, std = o.std;
    if (mean.empty() != std.empty())
        throw std::invalid_argument("give both the normalization mean and std, or neither (then they are computed)");
    if (mean.empty()) compute_statistics(*p.train.files, o, mean, std, p.train.left_out);
    if (int(mean.size()) != channels || int(std.size()) != channels)
        throw std::invalid_argument("normalization has " + std::to_string(mean.size()) + " means and " +
                                    std::to_string(std.size()) + " stds; the images have " + std::to_string(channels) +
                                    " channels");
    for (double s : std)
        if (!(s > 0)) throw std::invalid_argument("normalization std " + std::to_string(s) + "; expected > 0");
    for (ImageDataset *s : {&p.train, &p.test}) {
        s->mean = mean;
        s->std = std;
    }
    return p;
}

}  // namespace dtokd
