// A Collective over a PyTorch c10d process group (Gloo on CPU, NCCL with CUDA): the
// engine torch.distributed uses, never a home-made one. The pipeline creates the group
// (rendezvous through c10d's TCPStore, process_group.h); tests join threads through a HashStore.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <memory>

#include "collective.h"

namespace dtokd {

// Errors of the group (a rank that died, a timeout) become std::runtime_error naming
// this rank, the operation and c10d's message.
std::unique_ptr<Collective> make_c10d_collective(c10::intrusive_ptr<c10d::ProcessGroup> group);

}  // namespace dtokd
