// See checkpoint.h.
#include "checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "atomic_file.h"
#include "content_hash.h"
#include "zip_members.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

at::Tensor scalar(int64_t v) { return at::scalar_tensor(v, at::kLong); }

at::Tensor text(const std::string &s) {
    at::Tensor t = at::empty({int64_t(s.size())}, at::kByte);
    if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
    return t;
}

// LibTorch reports a missing or malformed archive entry as c10::Error (no file name, a
// C++ backtrace): these turn it into one error naming the file, the entry and what was expected.
[[noreturn]] void bad_entry(const std::string &path, const std::string &key, const std::string &what) {
    throw std::runtime_error(path + ": checkpoint entry '" + key + "' " + what);
}

at::Tensor read_entry(torch::serialize::InputArchive &ar, const std::string &key, const std::string &path) {
    at::Tensor t;
    try {
        if (!ar.try_read(key, t)) bad_entry(path, key, "is missing (a checkpoint from another dtokd, or not one)");
    } catch (const c10::Error &e) {
        bad_entry(path, key, std::string("cannot be read: ") + e.what_without_backtrace());
    }
    return t;
}

// The archive's entry names; LibTorch's c10::Error becomes one error naming the file.
std::vector<std::string> entry_keys(torch::serialize::InputArchive &ar, const std::string &path) {
    try {
        return ar.keys();
    } catch (const c10::Error &e) {
        throw std::runtime_error(path + ": checkpoint entries cannot be listed: " + e.what_without_backtrace());
    }
}

std::string read_text(torch::serialize::InputArchive &ar, const std::string &key, const std::string &path) {
    at::Tensor t = read_entry(ar, key, path);
    if (t.scalar_type() != at::kByte || t.dim() != 1)
        bad_entry(path, key, "is a " + std::string(c10::toString(t.scalar_type())) + " tensor of shape " +
                                 c10::str(t.sizes()) + "; expected text (1-d uint8)");
    t = t.contiguous();
    return std::string(reinterpret_cast<const char *>(t.data_ptr<uint8_t>()), size_t(t.numel()));
}

int64_t entry_int(const at::Tensor &t, const std::string &key, const std::string &path) {
    if (t.numel() != 1 || !c10::isIntegralType(t.scalar_type(), /*includeBool=*/false))
        bad_entry(path, key, "is a " + std::string(c10::toString(t.scalar_type())) + " tensor of shape " +
                                 c10::str(t.sizes()) + "; expected one integer");
    return t.item<int64_t>();
}

int64_t read_int(torch::serialize::InputArchive &ar, const std::string &key, const std::string &path) {
    return entry_int(read_entry(ar, key, path), key, path);
}

// The file: kMagic, payload length (u64 LE), FNV-1a 64 of the payload (u64 LE), then the
// payload, a LibTorch archive. The checksum makes any flipped or lost byte one error
// (LibTorch's zip reader does not verify its members). Version 1 files are a bare archive.
constexpr char kMagic[8] = {'D', 'T', 'K', 'D', 'C', 'K', 'P', 'T'};
constexpr size_t kHeaderBytes = 24;

uint64_t read_u64(const std::string &bytes, size_t at) {
    uint64_t v = 0;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
}

std::string read_whole(const std::string &path) {
    if (!fs::exists(path)) throw std::runtime_error(path + ": checkpoint not found");
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error(path + ": checkpoint cannot be read");
    return bytes;
}

// The archive of a checkpoint file; `verified` says whether a checksum covered it (version >= 2).
torch::serialize::InputArchive open_archive(const std::string &path, bool *verified = nullptr) {
    const std::string bytes = read_whole(path);
    std::string payload;
    const bool framed = bytes.size() >= 8 && std::memcmp(bytes.data(), kMagic, 8) == 0;
    if (framed) {
        if (bytes.size() < kHeaderBytes || read_u64(bytes, 8) != bytes.size() - kHeaderBytes)
            throw std::runtime_error(path + ": checkpoint is truncated or has extra bytes (" +
                                     std::to_string(bytes.size()) + " bytes; the header says " +
                                     (bytes.size() < kHeaderBytes ? std::string("less than a header")
                                                                  : std::to_string(read_u64(bytes, 8) + kHeaderBytes)) +
                                     ")");
        payload = bytes.substr(kHeaderBytes);
        if (fnv1a64(payload) != read_u64(bytes, 16))
            throw std::runtime_error(path + ": checkpoint is corrupt (checksum mismatch): it was changed after dtokd "
                                            "wrote it; use another checkpoint");
    }
    verify_zip_members(path, framed ? payload : bytes);
    torch::serialize::InputArchive ar;
    try {
        std::istringstream in(framed ? payload : bytes);
        // map_location CPU: a checkpoint written by a CUDA run tags its storages cuda:N, which a
        // CPU LibTorch could not create; load_checkpoint copies them to the module's device.
        ar.load_from(in, at::Device(at::kCPU));
    } catch (const std::exception &e) {
        throw std::runtime_error(path + ": unreadable checkpoint (corrupt, truncated or not a LibTorch archive)");
    }
    if (verified) *verified = framed;
    return ar;
}

// The metadata's keys (read_meta); everything else is weights or state.
const char *const kMetaKeys[] = {"dtokd_format_version", "model_name", "num_classes", "in_channels", "height",
                                 "width", "epoch", "step", "config", "optimizer_kind", "optimizer_steps",
                                 "optimizer_tensors" /* written by format 2 before state entries */,
                                 "class_names", "normalization_mean", "normalization_std", "kernels", "device"};

bool is_meta_key(const std::string &key) {
    for (const char *k : kMetaKeys)
        if (key == k) return true;
    return false;
}

bool is_weight_key(const std::string &key) { return key.rfind("param/", 0) == 0 || key.rfind("buffer/", 0) == 0; }

CheckpointMeta read_meta(torch::serialize::InputArchive &ar, const std::string &path, bool verified) {
    at::Tensor version;
    bool has_version = false;
    try {
        has_version = ar.try_read("dtokd_format_version", version);
    } catch (const c10::Error &e) {
        bad_entry(path, "dtokd_format_version", std::string("cannot be read: ") + e.what_without_backtrace());
    }
    if (!has_version) throw std::runtime_error(path + ": not a dtokd checkpoint (no dtokd_format_version)");
    // Version 1 (a bare archive, no checksum) holds the same entries and is still read.
    const int64_t v = entry_int(version, "dtokd_format_version", path);
    if (v != kCheckpointFormatVersion && !(v == 1 && !verified))
        throw std::runtime_error(path + ": checkpoint format version " + std::to_string(v) +
                                 "; this dtokd reads version " + std::to_string(kCheckpointFormatVersion));
    if (v == kCheckpointFormatVersion && !verified)
        throw std::runtime_error(path + ": a version " + std::to_string(v) +
                                 " checkpoint without its checksum header (extracted from a dtokd file?)");
    CheckpointMeta m;
    m.model_name = read_text(ar, "model_name", path);
    m.num_classes = read_int(ar, "num_classes", path);
    m.in_channels = read_int(ar, "in_channels", path);
    m.height = read_int(ar, "height", path);
    m.width = read_int(ar, "width", path);
    m.epoch = read_int(ar, "epoch", path);
    m.step = read_int(ar, "step", path);
    m.config = read_text(ar, "config", path);
    m.optimizer_kind = read_text(ar, "optimizer_kind", path);
    m.optimizer_steps = read_int(ar, "optimizer_steps", path);
    // Optional entries: only image-folder runs write the classes and normalization; older
    // checkpoints have no kernels.
    const std::vector<std::string> keys = entry_keys(ar, path);
    auto has = [&](const char *key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    if (has("kernels")) m.kernels = read_text(ar, "kernels", path);
    if (has("device")) m.device = read_text(ar, "device", path);
    if (has("class_names")) {
        const std::string names = read_text(ar, "class_names", path);
        for (size_t at = 0; at < names.size();) {
            const size_t end = std::min(names.find('\n', at), names.size());
            m.class_names.push_back(names.substr(at, end - at));
            at = end + 1;
        }
        if (int64_t(m.class_names.size()) != m.num_classes)
            bad_entry(path, "class_names", "names " + std::to_string(m.class_names.size()) + " classes; expected " +
                                               std::to_string(m.num_classes));
    }
    for (const auto &[key, out] : {std::pair{"normalization_mean", &m.mean}, std::pair{"normalization_std", &m.std}}) {
        if (!has(key)) continue;
        const at::Tensor t = read_entry(ar, key, path);
        if (t.scalar_type() != at::kDouble || t.dim() != 1 || t.numel() != m.in_channels)
            bad_entry(path, key, "is a " + std::string(c10::toString(t.scalar_type())) + " tensor of shape " +
                                     c10::str(t.sizes()) + "; expected " + std::to_string(m.in_channels) + " doubles");
        const at::Tensor c = t.contiguous();
        out->assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    }
    return m;
}

}  // namespace

void save_checkpoint(const std::string &path, const torch::nn::Module &model, const CheckpointMeta &meta,
                     const CheckpointEntries &state) {
    for (const auto &[key, t] : state)
        if (key.empty() || is_meta_key(key) || is_weight_key(key))
            throw std::invalid_argument("checkpoint state entry '" + key + "' collides with the weights or metadata");
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
    if (!meta.class_names.empty()) {
        std::string names;
        for (const std::string &n : meta.class_names) {
            if (n.find('\n') != std::string::npos)
                throw std::invalid_argument("class name '" + n + "' holds a line break");
            names += (names.empty() ? "" : "\n") + n;
        }
        ar.write("class_names", text(names));
    }
    if (!meta.mean.empty()) ar.write("normalization_mean", at::tensor(meta.mean, at::kDouble));
    if (!meta.std.empty()) ar.write("normalization_std", at::tensor(meta.std, at::kDouble));
    if (!meta.kernels.empty()) ar.write("kernels", text(meta.kernels));
    if (!meta.device.empty()) ar.write("device", text(meta.device));
    for (const auto &p : model.named_parameters(true)) ar.write("param/" + p.key(), p.value().detach().cpu());
    for (const auto &b : model.named_buffers(true)) ar.write("buffer/" + b.key(), b.value().detach().cpu());
    for (const auto &[key, t] : state) ar.write(key, t.detach().cpu());
    // Serialized in memory first: LibTorch's file writer throws from a destructor when
    // the disk fills (an abort); write_file_atomic checks every write instead.
    std::ostringstream archive;
    ar.save_to(archive);
    write_file_atomic(path, frame_checkpoint_payload(archive.str()));
}

std::string frame_checkpoint_payload(const std::string &payload) {
    std::string file(kMagic, 8);
    const uint64_t length = payload.size(), checksum = fnv1a64(payload);
    file.append(reinterpret_cast<const char *>(&length), 8);
    file.append(reinterpret_cast<const char *>(&checksum), 8);
    return file + payload;
}

CheckpointMeta read_checkpoint_meta(const std::string &path) {
    bool verified = false;
    auto ar = open_archive(path, &verified);
    return read_meta(ar, path, verified);
}

bool is_dtokd_checkpoint(const std::string &path) {
    try {
        torch::serialize::InputArchive ar = open_archive(path);
        at::Tensor version;
        return ar.try_read("dtokd_format_version", version);
    } catch (const std::exception &) {
        // A framed file that does not verify is still a dtokd checkpoint (a corrupt one):
        // the caller's read then names the problem instead of trying another format.
        std::ifstream in(path, std::ios::binary);
        char magic[8] = {};
        in.read(magic, 8);
        return in.gcount() == 8 && std::memcmp(magic, kMagic, 8) == 0;
    }
}

CheckpointMeta load_checkpoint(const std::string &path, torch::nn::Module &model, CheckpointEntries *state) {
    bool verified = false;
    auto ar = open_archive(path, &verified);
    CheckpointMeta meta = read_meta(ar, path, verified);
    at::NoGradGuard no_grad;
    auto copy_in = [&](const std::string &key, at::Tensor &dst) {
        at::Tensor src;
        bool found = false;
        try {
            found = ar.try_read(key, src);
        } catch (const c10::Error &e) {
            bad_entry(path, key, std::string("cannot be read: ") + e.what_without_backtrace());
        }
        if (!found)
            throw std::runtime_error(path + ": missing '" + key + "' (checkpoint of model '" + meta.model_name +
                                     "')");
        if (src.sizes() != dst.sizes())
            throw std::runtime_error(path + ": '" + key + "' has shape " + c10::str(src.sizes()) +
                                     "; the model expects " + c10::str(dst.sizes()));
        dst.copy_(src);
    };
    for (auto &p : model.named_parameters(true)) copy_in("param/" + p.key(), p.value());
    for (auto &b : model.named_buffers(true)) copy_in("buffer/" + b.key(), b.value());
    if (state) {
        state->clear();
        for (const std::string &key : entry_keys(ar, path))
            if (!is_meta_key(key) && !is_weight_key(key)) state->emplace_back(key, read_entry(ar, key, path));
    }
    return meta;
}

CheckpointEntries read_checkpoint_entries(const std::string &path, const std::string &prefix) {
    bool verified = false;
    auto ar = open_archive(path, &verified);
    read_meta(ar, path, verified);
    CheckpointEntries out;
    for (const std::string &key : entry_keys(ar, path))
        if (key.rfind(prefix, 0) == 0 && !is_meta_key(key) && !is_weight_key(key))
            out.emplace_back(key.substr(prefix.size()), read_entry(ar, key, path));
    return out;
}

}  // namespace dtokd
