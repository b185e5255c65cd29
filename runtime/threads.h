// One thread count for LibTorch's intra-op pool and Halide's parallel loops, which
// run ON that pool (a custom halide do_par_for over at::parallel_for): one pool, no
// contention. OpenMP on the target machines defaults to ONE thread unless told, so
// the runtime always sets it explicitly.
#pragma once

namespace dtokd {

// requested > 0: use it; 0: $DTOKD_THREADS if set, else all hardware threads.
// Also gives the BLAS library's own pool $DTOKD_BLAS_THREADS or 1 thread (blas_threads.h).
// Returns the count applied to both pools. Throws std::invalid_argument if requested < 0
// or $DTOKD_THREADS is not a positive integer.
int configure_threads(int requested = 0);

// The count last applied by configure_threads (0 before the first call).
int configured_threads();

}  // namespace dtokd
