// A thread count read from an environment variable (DTOKD_THREADS, DTOKD_BLAS_THREADS).
#pragma once

namespace dtokd {

// The value of $name as a count in 1..4096, or `fallback` when it is unset or empty.
// Throws std::invalid_argument naming the variable and its value for anything else.
int count_from_env(const char *name, int fallback);

}  // namespace dtokd
