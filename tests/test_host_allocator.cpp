// The malloc tuning that keeps large activations out of mmap (runtime/host_allocator).
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "host_allocator.h"
#include "sanitizer_build.h"

namespace {

// 64 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so with the default
// settings this block is always an mmap'd chunk; with ours it comes from the heap.
constexpr size_t kBlock = 64u << 20;

TEST(HostAllocator, LargeBlocksComeFromTheHeapNotMmap) {
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
        std::getenv("DTOKD_MALLOC"))
        GTEST_SKIP() << "malloc settings chosen by the environment";
    const std::string setting = dtokd::configure_host_allocator();
    if (dtokd_test::kAddressSanitizer) {
        EXPECT_NE(setting.find("mallopt refused"), std::string::npos) << setting;
        GTEST_SKIP() << "AddressSanitizer's allocator replaces glibc malloc: mallopt is refused "
                        "and mallinfo2 counts nothing, so there is no glibc heap to check";
    }
    EXPECT_NE(setting.find("256 MiB"), std::string::npos) << setting;
    EXPECT_EQ(dtokd::host_allocator_setting(), setting);

    const size_t mmapped_before = mallinfo2().hblks;
    void *p = std::malloc(kBlock);
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, kBlock);  // touch it, as a tensor would be
    const size_t mmapped_during = mallinfo2().hblks;
    std::free(p);
    EXPECT_EQ(mmapped_during, mmapped_before) << "a 64 MiB block was still served by mmap";

    // Freed and asked again: the same heap memory, no new mapping.
    void *q = std::malloc(kBlock);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(mallinfo2().hblks, mmapped_before);
    std::free(q);
}

}  // namespace
