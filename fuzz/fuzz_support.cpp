// See fuzz_support.h.
#include "fuzz_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace dtokd::fuzz {

namespace fs = std::filesystem;

const std::string &scratch_dir() {
    // Never destroyed: the atexit handler that removes the folder runs after static destructors.
    static const std::string *dir = [] {
        const char *env = std::getenv("DTOKD_FUZZ_SCRATCH");  // scripts/fuzz.sh: one folder per run
        const fs::path base = env != nullptr && *env != '\0' ? fs::path(env)
                              : fs::is_directory("/dev/shm")  ? fs::path("/dev/shm")
                                                              : fs::temp_directory_path();
        const fs::path d = base / ("dtokd-fuzz-" + std::to_string(::getpid()));
        fs::create_directories(d);
        auto *path = new std::string(d.string());
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(scratch_dir(), ec);
        });
        return path;
    }();
    return *dir;
}

std::string write_scratch(const std::string &name, std::string_view bytes) {
    const std::string path = scratch_dir() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("fuzz scratch file " + path + " cannot be written");
    return path;
}

}  // namespace dtokd::fuzz
