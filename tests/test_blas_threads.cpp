// The BLAS pool setting (runtime/blas_threads): one thread unless $DTOKD_BLAS_THREADS.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

#include "blas_threads.h"
#include "env_count.h"
#include "threads.h"

namespace {

int openblas_threads() {
    auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    return get == nullptr ? -1 : get();
}

struct EnvVar {
    const char *name;
    explicit EnvVar(const char *n, const char *v) : name(n) { setenv(n, v, 1); }
    ~EnvVar() { unsetenv(name); }
};

TEST(BlasThreads, ConfigureThreadsLeavesOpenBlasOneThread) {
    if (openblas_threads() < 0) GTEST_SKIP() << "LibTorch does not run on OpenBLAS here";
    if (std::getenv("DTOKD_BLAS_THREADS")) GTEST_SKIP() << "DTOKD_BLAS_THREADS set by the environment";
    auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    set(2);  // as the library starts on a 2-core machine
    const int before = dtokd::configured_threads();
    dtokd::configure_threads(before > 0 ? before : 0);
    EXPECT_EQ(openblas_threads(), 1);
    EXPECT_NE(dtokd::describe_blas().find("OpenBLAS"), std::string::npos) << dtokd::describe_blas();
    EXPECT_NE(dtokd::describe_blas().find("1 thread"), std::string::npos) << dtokd::describe_blas();
}

TEST(BlasThreads, EnvironmentAndExplicitCountsWin) {
    if (openblas_threads() < 0) GTEST_SKIP() << "LibTorch does not run on OpenBLAS here";
    {
        EnvVar env("DTOKD_BLAS_THREADS", "2");
        EXPECT_EQ(dtokd::configure_blas_threads(0), 2);
        EXPECT_EQ(openblas_threads(), 2);
    }
    EXPECT_EQ(dtokd::configure_blas_threads(3), 3);
    EXPECT_EQ(dtokd::configure_blas_threads(0), 1);
    EXPECT_EQ(openblas_threads(), 1);
}

TEST(BlasThreads, BadCountsAreNamed) {
    EXPECT_THROW(dtokd::configure_blas_threads(-1), std::invalid_argument);
    EnvVar env("DTOKD_BLAS_THREADS", "two");
    try {
        dtokd::configure_blas_threads(0);
        FAIL() << "no error for DTOKD_BLAS_THREADS=two";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("DTOKD_BLAS_THREADS is 'two'"), std::string::npos) << e.what();
    }
}

TEST(ThreadCounts, FromEnvironment) {
    unsetenv("DTOKD_TEST_COUNT");
    EXPECT_EQ(dtokd::count_from_env("DTOKD_TEST_COUNT", 7), 7);
    {
        EnvVar empty("DTOKD_TEST_COUNT", "");
        EXPECT_EQ(dtokd::count_from_env("DTOKD_TEST_COUNT", 7), 7);
    }
    {
        EnvVar three("DTOKD_TEST_COUNT", "3");
        EXPECT_EQ(dtokd::count_from_env("DTOKD_TEST_COUNT", 7), 3);
    }
    for (const char *bad : {"0", "-2", "x", "3x", "5000"}) {
        EnvVar env("DTOKD_TEST_COUNT", bad);
        try {
            dtokd::count_from_env("DTOKD_TEST_COUNT", 7);
            ADD_FAILURE() << "no error for '" << bad << "'";
        } catch (const std::invalid_argument &e) {
            EXPECT_NE(std::string(e.what()).find(std::string("DTOKD_TEST_COUNT is '") + bad + "'"),
                      std::string::npos)
                << e.what();
        }
    }
}

TEST(ThreadCounts, BadDtokdThreadsIsNamed) {
    const int before = dtokd::configured_threads();
    {
        EnvVar env("DTOKD_THREADS", "many");
        EXPECT_THROW(dtokd::configure_threads(0), std::invalid_argument);
    }
    dtokd::configure_threads(before > 0 ? before : 0);
}

}  // namespace
