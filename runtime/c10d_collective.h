// A Collective over a PyTorch c10d process group (Gloo on CPU, NCCL with CUDA): the
// engine torch.distributed uses, never a home-made one. The pipeline creates the group
// (rendezvous through c10d's TCPStore, process_group.h); tests join threads through a HashStore.
#pragma once
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

#include <memory>

#include "collective.h"

namespace dtokd {

// The c10d object that runs the collectives. LibTorch 1.x: the Gloo/NCCL groups are
// c10d::ProcessGroup. LibTorch 2.x split them: ProcessGroupGloo/NCCL derive from
// c10d::Backend (same allreduce/broadcast/getRank/getSize), and c10d::ProcessGroup became
// a dispatcher front holding one Backend per device type. dtokd calls the backend directly,
// as PyTorch's own test/cpp/c10d/ProcessGroupGlooTest.cpp does.
#if TORCH_VERSION_MAJOR >= 2
using C10dGroup = c10d::Backend;
#else
using C10dGroup = c10d::ProcessGroup;
#endif

// Errors of the group (a rank that died, a timeout) become std::runtime_error naming
// this rank, the operation and c10d's message.
std::unique_ptr<Collective> make_c10d_collective(c10::intrusive_ptr<C10dGroup> group);

}  // namespace dtokd
