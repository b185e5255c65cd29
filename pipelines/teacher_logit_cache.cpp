// See teacher_logit_cache.h. The file format is teacher_logit_file.h's.
#include "teacher_logit_cache.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <iostream>
#include <vector>

#include "batch_loader.h"
#include "content_hash.h"
#include "image_folder.h"
#include "teacher_logit_file.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

uint64_t cache_key(const std::string &teacher_file, const ImageDataset &data) {
    std::ifstream in(teacher_file, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t h = fnv1a64(bytes.data(), bytes.size());
    if (data.files) {
        const uint64_t files = data.files->fingerprint();
        h = fnv1a64(&files, sizeof files, h);
    } else {
        h = fnv1a64(data.images.data_ptr<uint8_t>(), size_t(data.images.numel()), h);
    }
    h = fnv1a64(data.labels.data_ptr<int64_t>(), size_t(data.labels.numel()) * sizeof(int64_t), h);
    h = fnv1a64(data.mean.data(), data.mean.size() * sizeof(double), h);
    h = fnv1a64(data.std.data(), data.std.size() * sizeof(double), h);
    return h;
}

}  // namespace

TeacherLogits teacher_logits_for(ModelHandle &teacher, const std::string &teacher_file, const ImageDataset &data,
                                 const std::string &cache_dir, bool progress, int workers, bool skip_bad_images) {
    const uint64_t key = cache_key(teacher_file, data);
    char name[64];
    snprintf(name, sizeof name, "teacher-logits-%016llx.bin", static_cast<unsigned long long>(key));
    TeacherLogits out;
    out.path = (fs::path(cache_dir) / name).string();
    out.logits = read_teacher_logit_file(out.path, key, data.size(), data.num_classes);
    if (out.logits.defined()) {
        out.from_cache = true;
        return out;
    }
    LoaderOptions opts;
    opts.batch_size = 512;
    opts.shuffle = false;
    opts.workers = workers;
    opts.skip_bad_images = skip_bad_images;
    opts.pin_memory = teacher.device.is_cuda();
    BatchLoader loader(data, opts);
    loader.start_epoch(0);
    out.logits = at::zeros({data.size(), data.num_classes}, at::kFloat);
    teacher.set_train(false);
    at::NoGradGuard no_grad;
    int64_t done = 0;
    const bool live = progress && isatty(STDERR_FILENO);  // the \r counter only on a terminal
    if (progress && !live) std::cerr << "teacher logits: computing for " << data.size() << " images\n";
    while (auto batch = loader.next()) {
        if (batch->labels.numel() == 0) continue;
        // On the teacher's device; the cache itself is host floats, the same file for any device.
        const at::Tensor z = teacher.forward(batch->images.to(teacher.device, /*non_blocking=*/true));
        out.logits.index_copy_(0, batch->indices, z.to(at::kCPU, at::kFloat));
        done += batch->labels.numel();
        if (live) std::cerr << "\rteacher logits: " << done << "/" << data.size() << std::flush;
    }
    if (live) std::cerr << "\n";
    fs::create_directories(cache_dir);
    write_teacher_logit_file(out.path, key, out.logits);
    return out;
}

}  // namespace dtokd
