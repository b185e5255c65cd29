// The one content hash of dtokd: 64-bit FNV-1a, for checksums of files it writes
// (checkpoints, the teacher-logit cache) and keys (cache names, the kernel build).
// Not cryptographic: it catches corruption (flipped bits, truncation), not tampering.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dtokd {

inline constexpr uint64_t kFnv1a64Seed = 0xcbf29ce484222325ull;

// Continues the hash `h` over `bytes` bytes at `data` (start with kFnv1a64Seed).
inline uint64_t fnv1a64(const void *data, size_t bytes, uint64_t h = kFnv1a64Seed) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

inline uint64_t fnv1a64(std::string_view s, uint64_t h = kFnv1a64Seed) { return fnv1a64(s.data(), s.size(), h); }

}  // namespace dtokd
