// Runs a PyTorch implementation written in tests/python/ on tensors from a test, with
// Debian's /usr/bin/python3 + python3-torch (not the `python3` on PATH, a pyenv
// without torch). Tensors travel both ways as dicts in torch.save's format
// (torch::pickle_save / torch::pickle_load), so float64 values arrive bit for bit.
// A test calls torch_reference_unavailable() first and GTEST_SKIPs with its reason.
#pragma once
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "scratch_data.h"

namespace dtokd_test {

using TensorDict = std::map<std::string, torch::Tensor>;

inline constexpr const char *kTorchPython = "/usr/bin/python3";

// "" when /usr/bin/python3 imports torch; else why not (the skip reason).
inline const std::string &torch_reference_unavailable() {
    static const std::string reason = [] {
        const std::string cmd = std::string(kTorchPython) + " -c 'import torch' >/dev/null 2>&1";
        return std::system(cmd.c_str()) == 0
                   ? std::string()
                   : std::string(kTorchPython) + " cannot import torch (install python3-torch: scripts/setup.sh)";
    }();
    return reason;
}

// Runs `command IN OUT` (a Python script line), where IN holds `inputs` pickled as a dict
// and the script writes a pickled dict of tensors to OUT; returns that dict. Throws
// std::runtime_error with the command and Python's exit status.
inline TensorDict run_python_tensor_dicts(const std::string &command, const TensorDict &inputs) {
    ScratchDir dir("torchref");
    c10::Dict<std::string, torch::Tensor> in;
    for (const auto &[k, v] : inputs) in.insert(k, v.detach().contiguous());
    const std::vector<char> bytes = torch::pickle_save(in);
    const std::string in_path = (dir.path() / "in.pt").string(), out_path = (dir.path() / "out.pt").string();
    std::ofstream(in_path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    const std::string cmd = command + " " + in_path + " " + out_path;
    const int status = std::system(cmd.c_str());
    if (status != 0) throw std::runtime_error(cmd + ": exit status " + std::to_string(status));
    std::ifstream f(out_path, std::ios::binary);
    const std::vector<char> out_bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    TensorDict out;
    for (const auto &e : torch::pickle_load(out_bytes).toGenericDict())
        out[e.key().toStringRef()] = e.value().toTensor();
    return out;
}

// Calls `function` of tests/python/<script> on `inputs` (see tests/python/reference_io.py)
// and returns what it returned. Throws std::runtime_error with Python's exit status.
inline TensorDict run_torch_reference(const std::string &script, const std::string &function,
                                      const TensorDict &inputs) {
    return run_python_tensor_dicts(
        std::string(kTorchPython) + " " + DTOKD_SOURCE_DIR + "/tests/python/" + script + " " + function, inputs);
}

// max|got - want| / max|want|: the relative error of a whole tensor (0 when both are 0).
inline double relative_error(const torch::Tensor &got, const torch::Tensor &want) {
    const torch::Tensor g = got.detach().to(torch::kDouble), w = want.detach().to(torch::kDouble);
    if (g.sizes() != w.sizes()) return INFINITY;
    const double scale = w.numel() ? w.abs().max().item<double>() : 0.0;
    const double diff = g.numel() ? (g - w).abs().max().item<double>() : 0.0;
    if (scale == 0) return diff == 0 ? 0.0 : INFINITY;
    return diff / scale;
}

}  // namespace dtokd_test
