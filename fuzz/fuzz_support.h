// Shared by the fuzz targets (fuzz_*.cpp) and the corpus-replay test: a per-process
// scratch folder (in /dev/shm when there is one) that the readers, which take paths,
// are fed through, and the project's rule for bad input as an oracle: a reader may
// reject input only with one std::runtime_error / std::invalid_argument that names
// the file. Any other exception (c10::Error, std::out_of_range, std::bad_alloc...),
// or a message without the file's name, is raised as a FuzzFinding: libFuzzer then
// reports it as a crash (uncaught exception -> abort) and the replay test fails.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dtokd::fuzz {

// Not derived from std::runtime_error, so the targets never swallow it.
struct FuzzFinding : std::logic_error {
    using std::logic_error::logic_error;
};

// A folder private to this process, created on first use, removed at a normal exit
// (under $DTOKD_FUZZ_SCRATCH if set, else /dev/shm, else the temp folder).
const std::string &scratch_dir();
// Writes `bytes` to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string &name, std::string_view bytes);

// Runs `read` (a reader call on `path`); returns true when it returned, false when it
// threw an allowed error naming `path` (or `also_named`, e.g. a folder); throws
// FuzzFinding for anything else.
template <class F>
bool accepts(const std::string &path, F &&read, const std::string &also_named = "") {
    try {
        read();
        return true;
    } catch (const FuzzFinding &) {
        throw;
    } catch (const std::runtime_error &e) {
        const std::string what = e.what();
        if (what.find(path) == std::string::npos && (also_named.empty() || what.find(also_named) == std::string::npos))
            throw FuzzFinding("error does not name the file " + path + ": " + what);
        return false;
    } catch (const std::invalid_argument &e) {
        const std::string what = e.what();
        if (what.find(path) == std::string::npos && (also_named.empty() || what.find(also_named) == std::string::npos))
            throw FuzzFinding("error does not name the file " + path + ": " + what);
        return false;
    } catch (const std::exception &e) {
        throw FuzzFinding(std::string("unexpected exception type (not runtime_error/invalid_argument) reading ") +
                          path + ": " + e.what());
    }
}

// The targets: each takes one fuzz input and returns 1 when the reader accepted it,
// 0 when it rejected it with an allowed error; it throws FuzzFinding on a violation.
int fuzz_idx(const uint8_t *data, size_t size);          // [u16 LE n][images file: n bytes][labels file]
int fuzz_cifar(const uint8_t *data, size_t size);        // [mode: bit 0 = CIFAR-100][the .bin file(s)]
int fuzz_config(const uint8_t *data, size_t size);       // a TOML config for `dtokd distill`
int fuzz_checkpoint(const uint8_t *data, size_t size);   // [mode: 0 file as is, 1 payload framed with its checksum]
int fuzz_tuning(const uint8_t *data, size_t size);       // a tuning file's text
int fuzz_logit_cache(const uint8_t *data, size_t size);  // [mode: 0 file as is, 1 with its checksum fixed up]
int fuzz_image(const uint8_t *data, size_t size);        // one JPEG or PNG file

// The key the logit-cache target asks for (its seeds are written under it).
constexpr uint64_t kFuzzLogitKey = 0x0123456789abcdefull;

}  // namespace dtokd::fuzz

// In the fuzz build each fuzz_<x>.cpp is one libFuzzer binary; elsewhere (the replay
// test) the entry functions are plain functions.
#ifdef DTOKD_FUZZ_MAIN
#define DTOKD_FUZZ_ENTRY(fn)                                                                   \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                  \
        fn(data, size);                                                                        \
        return 0;                                                                              \
    }
#else
#define DTOKD_FUZZ_ENTRY(fn)
#endif
