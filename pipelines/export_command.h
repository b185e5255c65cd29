// `dtokd export RUN --out FILE [--format pytorch|torchscript] [--force]`: a run's student
// for PyTorch users. RUN is a run folder (its final checkpoint.pt, the student as the run
// ended) or a dtokd checkpoint file (e.g. RUN.partial/checkpoint.pt of an unfinished run).
//   pytorch:     a state_dict file (torch.save's format, written with torch::pickle_save)
//                that torch.load reads and that loads with load_state_dict(strict=True)
//                into the zoo's PyTorch definitions (models/pytorch/dtokd_zoo.py) and
//                RepDistiller's / mdistiller's CIFAR models: dtokd's module names are
//                theirs, so keys are the LibTorch names, parameters and BN buffers
//                (num_batches_tracked an int64 scalar) in PyTorch's state_dict order.
//   torchscript: that state_dict loaded into dtokd_zoo.py's model and scripted by
//                python3 + torch (the module beside the binary); forward(x) -> logits.
// The file is written atomically; an existing FILE is refused unless `force` (then it is
// replaced whole). Every bad input is one exception naming it; nothing is left at FILE.
#pragma once
#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "checkpoint.h"

namespace torch::nn {
class Module;
}

namespace dtokd {

struct ExportOptions {
    std::string run;  // run folder or checkpoint file
    std::string out;
    std::string format = "pytorch";  // pytorch | torchscript
    bool force = false;              // replace an existing `out`
};

struct ExportResult {
    std::string checkpoint;  // the checkpoint exported
    CheckpointMeta meta;
    int64_t tensors = 0;  // state_dict entries
};

// `self` is this program's path (the PyTorch zoo module is built beside it).
ExportResult export_student(const ExportOptions &options, const std::string &self);

// The checkpoint RUN names: RUN itself when it is a file, else RUN/checkpoint.pt. Throws
// std::invalid_argument naming RUN when there is none (and, for a run that has not
// finished, naming the RUN.partial checkpoint to export instead).
std::string student_checkpoint(const std::string &run);

// `model`'s weights as PyTorch's Module.state_dict() names and orders them: module by module
// in pre-order, each one's parameters, then its buffers; detached CPU copies of their own.
c10::Dict<std::string, at::Tensor> pytorch_state_dict(const torch::nn::Module &model);

}  // namespace dtokd
