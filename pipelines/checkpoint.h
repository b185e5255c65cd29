// dtokd checkpoints: a format version, model name, class count, input shape,
// weights (parameters and buffers by name), optimizer state, epoch/step and the
// resolved config, under a checksum that is verified on every read (a changed byte is
// one error naming the file). Written atomically (atomic_file.h): a crash or a full
// disk never leaves a half-written checkpoint; an existing one is replaced whole or not at all.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "atomic_file.h"  // write_file_atomic, for the run folder's other files

namespace torch::nn {
class Module;
}

namespace dtokd {

// 2: the archive framed by a magic, its length and a checksum (checkpoint.cpp); 1: a bare archive (still read).
constexpr int64_t kCheckpointFormatVersion = 2;

struct CheckpointMeta {
    std::string model_name;
    int64_t num_classes = 0, in_channels = 0, height = 0, width = 0;
    int64_t epoch = 0, step = 0;
    std::string config;  // resolved config (TOML text)
    std::string optimizer_kind;
    int64_t optimizer_steps = 0;
    // Image-folder runs (absent, so empty, in others and in older checkpoints): the class
    // names in label order and the input normalization the model was trained with.
    std::vector<std::string> class_names;
    std::vector<double> mean, std;
    // The run's --kernels (absent, so empty, in checkpoints older than this entry): another
    // backend rounds differently, so a resumed run must keep it to continue the same numbers.
    std::string kernels;
    // The device of the run that wrote it ("cpu", "cuda:0"; empty in older checkpoints):
    // history only, as the tensors are stored on the host and load on any device.
    std::string device;
};

// Named tensors beside the weights: what a run needs to continue (optimizer state as
// "optimizer/<i>", the objectives' modules as "objective/<objective>.<name>", the
// policy's and the loop's state), stored under their keys.
using CheckpointEntries = std::vector<std::pair<std::string, at::Tensor>>;

// `state` keys must not collide with the weights ("param/", "buffer/") or the metadata
// (std::invalid_argument).
void save_checkpoint(const std::string &path, const torch::nn::Module &model, const CheckpointMeta &meta,
                     const CheckpointEntries &state = {});

// The file bytes for a LibTorch archive `payload`: the magic, its length and its checksum,
// then the payload (what save_checkpoint writes; fuzzers and tests frame their own payloads).
std::string frame_checkpoint_payload(const std::string &payload);

// Reads only the metadata; throws std::runtime_error naming the file when it is
// unreadable, not a dtokd checkpoint, or of another format version.
CheckpointMeta read_checkpoint_meta(const std::string &path);
// True when `path` is a dtokd checkpoint (false for e.g. a TorchScript file).
bool is_dtokd_checkpoint(const std::string &path);

// Copies the weights into `model` in place (parameter storage, e.g. a FlatArena,
// is kept). Every parameter and buffer must be present with the same shape.
// `state`, when given, receives every entry save_checkpoint got as `state`.
CheckpointMeta load_checkpoint(const std::string &path, torch::nn::Module &model,
                               CheckpointEntries *state = nullptr);

// The state entries whose key starts with `prefix`, with the prefix removed (e.g.
// "objective/": the objectives' modules as "<objective>.<name>").
CheckpointEntries read_checkpoint_entries(const std::string &path, const std::string &prefix);
inline CheckpointEntries read_objective_state(const std::string &path) {
    return read_checkpoint_entries(path, "objective/");
}


}  // namespace dtokd
