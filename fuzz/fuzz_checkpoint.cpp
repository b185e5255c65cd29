// Fuzz target: the checkpoint readers (is_dtokd_checkpoint, read_checkpoint_meta,
// load_checkpoint into a Linear(4, 3) with its state entries, read_objective_state).
// Input: [mode][bytes]. Mode 0: the bytes are the file. Mode 1: the bytes are the payload
// (a LibTorch archive), framed here by frame_checkpoint_payload (magic, length, checksum),
// so mutations get past the checksum into LibTorch's archive reader and read_meta.
#include <torch/nn/modules/linear.h>

#include <string>

#include "checkpoint.h"
#include "fuzz_support.h"

namespace dtokd::fuzz {

int fuzz_checkpoint(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    std::string file(reinterpret_cast<const char *>(data) + 1, size - 1);
    if (data[0] & 1) file = frame_checkpoint_payload(file);
    const std::string path = write_scratch("checkpoint.pt", file);
    bool is_ckpt = false;
    accepts(path, [&] { is_ckpt = is_dtokd_checkpoint(path); });  // documented not to throw; any error is checked
    (void)is_ckpt;
    CheckpointMeta meta;
    if (!accepts(path, [&] { meta = read_checkpoint_meta(path); })) return 0;
    torch::nn::Linear model(4, 3);
    CheckpointEntries state;
    const bool loaded = accepts(path, [&] { load_checkpoint(path, *model, &state); });
    accepts(path, [&] { read_objective_state(path); });
    return loaded ? 1 : 0;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_checkpoint)
