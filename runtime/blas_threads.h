// The BLAS library's own thread pool. Debian's libopenblas0-pthread (what LibTorch
// calls for matmuls and linear layers) runs its own pthreads beside LibTorch's OpenMP
// pool; on 2 cores its workers yield-spin against OpenMP's and a cnn_small training
// step took 9.5 ms instead of 4.5 ms. So the runtime gives BLAS one thread (calls run
// on the caller, which is already one of LibTorch's threads) unless told otherwise.
#pragma once

#include <string>

namespace dtokd {

// requested > 0: use it; 0: $DTOKD_BLAS_THREADS if set, else 1. Applied through
// openblas_set_num_threads when the process runs on OpenBLAS; returns the count the
// library reports afterwards, or 0 when no OpenBLAS is loaded (nothing to set).
// Throws std::invalid_argument for a negative count or a bad $DTOKD_BLAS_THREADS.
int configure_blas_threads(int requested = 0);

// "OpenBLAS <core>, <n> thread(s)" or "not OpenBLAS (threads not managed)".
std::string describe_blas();

}  // namespace dtokd
