// glibc malloc tuning for training processes. LibTorch's CPU allocator is plain
// malloc; glibc serves blocks above its (dynamic) mmap threshold with mmap and gives
// them back with munmap, so every fresh multi-MB activation or gradient is
// page-faulted anew each step (measured: resnet20 dto step 234 -> 172 ms with the
// threshold fixed, bench/peer/README.md). Keeping such blocks in the heap makes the
// steady state fault-free; peak RSS is unchanged (freed blocks are reused).
#pragma once

#include <string>

namespace dtokd {

// Sets M_MMAP_THRESHOLD (256 MiB) and M_TRIM_THRESHOLD (1 GiB) unless the user chose
// already: the MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment variables
// win, and DTOKD_MALLOC=default leaves glibc's defaults (DTOKD_MALLOC=tuned or unset:
// ours; anything else throws std::invalid_argument naming it). Call once, early,
// before the first large allocation. Returns a one-line description for `dtokd info`.
std::string configure_host_allocator();

// The description returned by the last configure_host_allocator() ("" before).
const std::string &host_allocator_setting();

}  // namespace dtokd
