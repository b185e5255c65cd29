// Whether this test binary (and so the dtokd binary beside it) was built with
// AddressSanitizer (scripts/sanitize.sh), for the few tests whose subject ASan replaces:
// its allocator stands in for glibc malloc, so mallopt is refused and mallinfo2 is empty.
#pragma once

namespace dtokd_test {

#if defined(__SANITIZE_ADDRESS__)  // GCC
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)  // Clang
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace dtokd_test
