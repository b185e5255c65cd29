// See checkpoint.h.
#include "checkpoint.h"

#include <fcntl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/nn/module.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace dtokd {

namespace fs = std::filesystem;

namespace {

void fsync_path(const std::string &path, bool directory) {
    const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) throw std::runtime_error(path + ": cannot open to fsync");
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error(path + ": fsync failed");
}

// Writes via `write(tmp)`, fsyncs, renames over `path`, fsyncs the folder.
template <typename WriteFn>
void atomic_replace(const std::string &path, WriteFn write) {
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(dir)) throw std::runtime_error(path + ": folder " + dir.string() + " does not exist");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    try {
        write(tmp);
        fsync_path(tmp, false);
        fs::rename(tmp, target);
    } catch (...) {
        std::error_code ec;
        fs::remove(tmp, ec);
        throw;
    }
    fsync_path(dir.string(), true);
}

at::Tensor scalar(int64_t v) { return at::scalar_tensor(v, at::kLong); }

at::Tensor text(const std::string &s) {
    at::Tensor t = at::empty({int64_t(s.size())}, at::kByte);
    if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
    return t;
}

std::string read_text(torch::serialize::InputArchive &ar, const std::string &key) {
    at::Tensor t;
    ar.read(key, t);
    t = t.contiguous();
    return std::string(reinterpret_cast<const char *>(t.data_ptr<uint8_t>()), size_t(t.numel()));
}

int64_t read_int(torch::serialize::InputArchive &ar, const std::string &key) {
    at::Tensor t;
    ar.read(key, t);
    return t.item<int64_t>();
}

torch::serialize::InputArchive open_archive(const std::string &path) {
    if (!fs::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
    torch::serialize::InputArchive ar;
    try {
        ar.load_from(path);
    } catch (const std::exception &e) {
        throw std::runtime_error(path + ": unreadable checkpoint (corrupt, truncated or not a LibTorch archive)");
    }
    return ar;
}

CheckpointMeta read_meta(torch::serialize::InputArchive &ar, const std::string &path) {
    at::Tensor version;
    if (!ar.try_read("dtokd_format_version", version))
        throw std::runtime_error(path + ": not a dtokd checkpoint (no dtokd_format_version)");
    if (version.item<int64_t>() != kCheckpointFormatVersion)
        throw std::runtime_error(path + ": checkpoint format version " + std::to_string(version.item<int64_t>()) +
                                 "; this dtokd reads version " + std::to_string(kCheckpointFormatVersion));
    CheckpointMeta m;
    m.model_name = read_text(ar, "model_name");
    m.num_classes = read_int(ar, "num_classes");
    m.in_channels = read_int(ar, "in_channels");
    m.height = read_int(ar, "height");
    m.width = read_int(ar, "width");
    m.epoch = read_int(ar, "epoch");
    m.step = read_int(ar, "step");
    m.config = read_text(ar, "config");
    m.optimizer_kind = read_text(ar, "optimizer_kind");
    m.optimizer_steps = read_int(ar, "optimizer_steps");
    return m;
}

}  // namespace

void save_checkpoint(const std::string &path, const torch::nn::Module &model, const CheckpointMeta &meta,
                     const std::vector<at::Tensor> &optimizer_state,
                     const std::vector<std::pair<std::string, at::Tensor>> &objective_state) {
    torch::serialize::OutputArchive ar;
    ar.write("dtokd_format_version", scalar(kCheckpointFormatVersion));
    ar.write("model_name", text(meta.model_name));
    ar.write("num_classes", scalar(meta.num_classes));
    ar.write("in_channels", scalar(meta.in_channels));
    ar.write("height", scalar(meta.height));
    ar.write("width", scalar(meta.width));
    ar.write("epoch", scalar(meta.epoch));
    ar.write("step", scalar(meta.step));
    ar.write("config", text(meta.config));
    ar.write("optimizer_kind", text(meta.optimizer_kind));
    ar.write("optimizer_steps", scalar(meta.optimizer_steps));
    ar.write("optimizer_tensors", scalar(int64_t(optimizer_state.size())));
    for (size_t i = 0; i < optimizer_state.size(); i++)
        ar.write("optimizer/" + std::to_string(i), optimizer_state[i].detach().cpu());
    for (const auto &p : model.named_parameters(true)) ar.write("param/" + p.key(), p.value().detach().cpu());
    for (const auto &b : model.named_buffers(true)) ar.write("buffer/" + b.key(), b.value().detach().cpu());
    for (const auto &[key, t] : objective_state) ar.write("objective/" + key, t.detach().cpu());
    atomic_replace(path, [&](const std::string &tmp) { ar.save_to(tmp); });
}

CheckpointMeta read_checkpoint_meta(const std::string &path) {
    auto ar = open_archive(path);
    return read_meta(ar, path);
}

bool is_dtokd_checkpoint(const std::string &path) {
    try {
        torch::serialize::InputArchive ar;
        ar.load_from(path);
        at::Tensor version;
        return ar.try_read("dtokd_format_version", version);
    } catch (const std::exception &) {
        return false;
    }
}

CheckpointMeta load_checkpoint(const std::string &path, torch::nn::Module &model,
                               std::vector<at::Tensor> *optimizer_state) {
    auto ar = open_archive(path);
    CheckpointMeta meta = read_meta(ar, path);
    at::NoGradGuard no_grad;
    auto copy_in = [&](const std::string &key, at::Tensor &dst) {
        at::Tensor src;
        if (!ar.try_read(key, src))
            throw std::runtime_error(path + ": missing '" + key + "' (checkpoint of model '" + meta.model_name +
                                     "')");
        if (src.sizes() != dst.sizes())
            throw std::runtime_error(path + ": '" + key + "' has shape " + c10::str(src.sizes()) +
                                     "; the model expects " + c10::str(dst.sizes()));
        dst.copy_(src);
    };
    for (auto &p : model.named_parameters(true)) copy_in("param/" + p.key(), p.value());
    for (auto &b : model.named_buffers(true)) copy_in("buffer/" + b.key(), b.value());
    if (optimizer_state) {
        optimizer_state->clear();
        const int64_t n = read_int(ar, "optimizer_tensors");
        for (int64_t i = 0; i < n; i++) {
            at::Tensor t;
            ar.read("optimizer/" + std::to_string(i), t);
            optimizer_state->push_back(t);
        }
    }
    return meta;
}

void write_file_atomic(const std::string &path, const std::string &contents) {
    atomic_replace(path, [&](const std::string &tmp) {
        std::ofstream out(tmp, std::ios::binary);
        out << contents;
        out.close();
        if (!out) throw std::runtime_error(tmp + ": write failed");
    });
}

}  // namespace dtokd
