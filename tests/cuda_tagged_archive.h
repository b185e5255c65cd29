// Test helper: a LibTorch archive as a CUDA run would have written it. Every storage's
// location string in the archive's pickles goes from 'cpu' to 'cuda:0', so a test on a
// CPU-only LibTorch can check that dtokd reads GPU-written checkpoints, objective optimizer
// blobs and TorchScript teachers (map_location CPU) without a GPU.
#pragma once

#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

namespace dtokd_test {

// LibTorch's pickler writes every string as BINUNICODE ('X', u32 little-endian length) and
// memoizes it, so a record holds 'cpu' once however many storages name it; Python's
// SHORT_BINUNICODE (0x8c, u8 length) is handled too. Returns the number of rewrites.
inline int retag_cpu_strings(std::string &pickle) {
    const std::string binunicode_cpu("X\x03\x00\x00\x00" "cpu", 8), binunicode_cuda("X\x06\x00\x00\x00" "cuda:0", 11);
    const std::string short_cpu("\x8c\x03" "cpu", 5), short_cuda("\x8c\x06" "cuda:0", 8);
    int rewrites = 0;
    for (const auto &[from, to] : {std::pair{binunicode_cpu, binunicode_cuda}, std::pair{short_cpu, short_cuda}}) {
        for (size_t at = pickle.find(from); at != std::string::npos; at = pickle.find(from, at + to.size())) {
            pickle.replace(at, from.size(), to);
            rewrites++;
        }
    }
    return rewrites;
}

// The zip archive `bytes` (a torch::serialize archive or a torch.jit.save file) with its
// storages tagged cuda:0. Throws when no pickle named a CPU storage, so a test using it
// cannot pass by rewriting nothing.
inline std::string retag_archive_to_cuda(const std::string &bytes) {
    std::istringstream in(bytes);
    caffe2::serialize::PyTorchStreamReader reader(&in);
    std::string out;
    int rewrites = 0;
    {
        caffe2::serialize::PyTorchStreamWriter writer([&out](const void *data, size_t n) {
            out.append(static_cast<const char *>(data), n);
            return n;
        });
        writer.setMinVersion(reader.version());
        for (const std::string &name : reader.getAllRecords()) {
            if (name == "version") continue;  // the writer writes its own
            auto [data, size] = reader.getRecord(name);
            std::string record(static_cast<const char *>(data.get()), size);
            if (name.size() > 4 && name.compare(name.size() - 4, 4, ".pkl") == 0) rewrites += retag_cpu_strings(record);
            writer.writeRecord(name, record.data(), record.size());
        }
        writer.writeEndOfFile();
    }
    if (rewrites == 0) throw std::runtime_error("retag_archive_to_cuda: no pickle names a 'cpu' storage");
    return out;
}

}  // namespace dtokd_test
