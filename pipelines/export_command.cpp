// See export_command.h.
#include "export_command.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/nn/module.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "atomic_file.h"
#include "model_handle.h"
#include "python_tool.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

// Exit status of dtokd_zoo.py when python3 cannot import torch.
constexpr int kNoTorchStatus = 3;

// Refuses an `out` that exists (without force) or is a folder, and one that cannot be
// created, before any work: a probe file beside it is created and removed.
void check_out(const ExportOptions &o) {
    if (o.out.empty()) throw std::invalid_argument("export: --out is empty; expected the file to write");
    if (fs::is_directory(o.out)) throw std::invalid_argument(o.out + ": is a folder; expected a file path for --out");
    if (fs::exists(o.out) && !o.force)
        throw std::invalid_argument(o.out + ": exists; pass --force to replace it");
    const fs::path target(o.out);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    if (!fs::is_directory(dir)) throw std::invalid_argument(o.out + ": folder " + dir.string() + " does not exist");
    const std::string probe = o.out + ".probe." + std::to_string(::getpid());
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(o.out + ": cannot write there: " + std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

// torch.save's zip format, as torch::pickle_save writes it, except that the dict is pickled
// as a plain dict: pickle_save tags it with torch.jit._pickle.restore_type_tag, which
// torch.load(weights_only=True), the default from torch 2.6, refuses to call.
std::string state_dict_file(const c10::Dict<std::string, at::Tensor> &dict) {
    std::string pickle;
    torch::jit::Pickler pickler([&](const char *bytes, size_t n) { pickle.append(bytes, n); },
                                /*tensor_table=*/nullptr, /*type_renamer=*/nullptr,
                                /*memoized_class_types=*/nullptr, /*get_tensor_id=*/nullptr,
                                /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(c10::IValue(dict));
    pickler.stop();
    std::string file;
    caffe2::serialize::PyTorchStreamWriter writer([&](const void *bytes, size_t n) {
        file.append(static_cast<const char *>(bytes), n);
        return n;
    });
    torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
    writer.writeEndOfFile();
    return file;
}

// A private temp folder, removed with everything in it when this goes out of scope.
struct TempFolder {
    TempFolder() {
        std::string pattern = (fs::temp_directory_path() / "dtokd-export-XXXXXX").string();
        if (!::mkdtemp(pattern.data()))
            throw std::runtime_error("export: cannot create a temp folder " + pattern + ": " + std::strerror(errno));
        path = pattern;
    }
    ~TempFolder() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    TempFolder(const TempFolder &) = delete;
    TempFolder &operator=(const TempFolder &) = delete;
    fs::path path;
};

std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error(path.string() + ": cannot be read back");
    return bytes;
}

// The state_dict scripted by dtokd_zoo.py (python3 + torch): the TorchScript file's bytes.
std::string torchscript_bytes(const std::string &state_dict, const CheckpointMeta &meta, const std::string &self) {
    const std::string module = module_beside_binary("dtokd_zoo.py", "DTOKD_ZOO_MODULE", self);
    if (!fs::exists(module))
        throw std::runtime_error("export: the PyTorch zoo module " + module + " is missing (it is built beside dtokd)");
    TempFolder tmp;
    const fs::path sd = tmp.path / "state_dict.pth", ts = tmp.path / "student.pt";
    write_file_atomic(sd.string(), state_dict);
    int status = 0;
    try {
        status = run_python({module, "torchscript", meta.model_name, std::to_string(meta.num_classes),
                             std::to_string(meta.in_channels), sd.string(), ts.string()});
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(std::string("export: --format torchscript needs python3 with torch: ") + e.what() +
                                 " (install python3-torch, or set DTOKD_PYTHON)");
    }
    if (status == kNoTorchStatus)
        throw std::runtime_error("export: --format torchscript needs python3 with torch: " + python_interpreter() +
                                 " cannot import torch (install python3-torch, or set DTOKD_PYTHON)");
    if (status != 0)
        throw std::runtime_error("export: " + module + " failed to script '" + meta.model_name +
                                 "' (its message is above; exit status " + std::to_string(status) + ")");
    return read_file(ts);
}

}  // namespace

std::string student_checkpoint(const std::string &run_arg) {
    std::string run = run_arg;
    while (run.size() > 1 && run.back() == '/') run.pop_back();
    if (fs::is_regular_file(run)) return run;
    if (!fs::exists(run)) {
        if (fs::exists(run + ".partial/checkpoint.pt"))
            throw std::invalid_argument(run + ": the run has not finished (" + run +
                                        ".partial); to export its last checkpoint, name it: " + run +
                                        ".partial/checkpoint.pt");
        throw std::invalid_argument(run + ": no such run folder or checkpoint file");
    }
    if (!fs::is_directory(run)) throw std::invalid_argument(run + ": not a run folder or checkpoint file");
    const std::string checkpoint = (fs::path(run) / "checkpoint.pt").string();
    if (!fs::is_regular_file(checkpoint))
        throw std::invalid_argument(run + ": no checkpoint.pt; expected a dtokd run folder (its --out) or a "
                                          "checkpoint file");
    return checkpoint;
}

c10::Dict<std::string, at::Tensor> pytorch_state_dict(const torch::nn::Module &model) {
    c10::Dict<std::string, at::Tensor> dict;
    auto add = [&](const std::string &key, const at::Tensor &t) {
        // Own storage: a parameter that views a larger one (a flat arena) would save all of it.
        if (t.defined()) dict.insert(key, t.detach().cpu().contiguous().clone());
    };
    for (const auto &m : model.named_modules(/*name_prefix=*/"", /*include_self=*/true)) {
        const std::string prefix = m.key().empty() ? "" : m.key() + ".";
        for (const auto &p : m.value()->named_parameters(/*recurse=*/false)) add(prefix + p.key(), p.value());
        for (const auto &b : m.value()->named_buffers(/*recurse=*/false)) add(prefix + b.key(), b.value());
    }
    return dict;
}

ExportResult export_student(const ExportOptions &o, const std::string &self) {
    if (o.format != "pytorch" && o.format != "torchscript")
        throw std::invalid_argument("export: --format " + o.format + "; expected pytorch or torchscript");
    ExportResult r;
    r.checkpoint = student_checkpoint(o.run);
    check_out(o);
    r.meta = read_checkpoint_meta(r.checkpoint);
    ModelHandle model;
    try {
        model = build_model(r.meta.model_name, int(r.meta.in_channels), int(r.meta.height), int(r.meta.width),
                            int(r.meta.num_classes));
    } catch (const std::invalid_argument &e) {
        throw std::invalid_argument(r.checkpoint + ": " + e.what());
    }
    load_checkpoint(r.checkpoint, *model.module);
    const c10::Dict<std::string, at::Tensor> dict = pytorch_state_dict(*model.module);
    r.tensors = int64_t(dict.size());
    std::string bytes = state_dict_file(dict);
    if (o.format == "torchscript") bytes = torchscript_bytes(bytes, r.meta, self);
    write_file_atomic(o.out, bytes);
    return r;
}

}  // namespace dtokd
