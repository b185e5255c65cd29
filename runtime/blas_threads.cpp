// See blas_threads.h. OpenBLAS is found at run time (dlsym): LibTorch links the
// generic libblas.so.3, which Debian's alternatives may point at another BLAS.
#include "blas_threads.h"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

#include "env_count.h"

namespace dtokd {

namespace {
template <typename Fn>
Fn openblas_symbol(const char *name) {
    return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

int configure_blas_threads(int requested) {
    if (requested < 0)
        throw std::invalid_argument("BLAS threads is " + std::to_string(requested) + "; expected >= 0");
    int n = requested;
    if (n == 0) n = count_from_env("DTOKD_BLAS_THREADS", 1);
    auto set = openblas_symbol<void (*)(int)>("openblas_set_num_threads");
    auto get = openblas_symbol<int (*)()>("openblas_get_num_threads");
    if (set == nullptr || get == nullptr) return 0;
    set(n);
    return get();
}

std::string describe_blas() {
    auto get = openblas_symbol<int (*)()>("openblas_get_num_threads");
    auto core = openblas_symbol<char *(*)()>("openblas_get_corename");
    if (get == nullptr) return "not OpenBLAS (threads not managed)";
    const int n = get();
    return "OpenBLAS" + (core != nullptr ? " " + std::string(core()) : std::string()) + ", " + std::to_string(n) +
           (n == 1 ? " thread" : " threads");
}

}  // namespace dtokd
