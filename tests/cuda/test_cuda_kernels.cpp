// The CUDA-target variants of every kernel (built with -DDTOKD_CUDA=ON) against
// float64 references, on Halide buffers (Debian's LibTorch is CPU-only, so this
// binary has no LibTorch: it is self-contained and runs on any CUDA machine).
// Without a CUDA driver and device every test skips with the reason.
#include <HalideBuffer.h>
#include <HalideRuntimeCuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dtokd_adamw_update1_cuda.h"
#include "dtokd_adamw_update2_cuda.h"
#include "dtokd_kd_loss_cuda.h"
#include "dtokd_log_gram1_cuda.h"
#include "dtokd_log_gram3_cuda.h"
#include "dtokd_log_gram8_cuda.h"
#include "dtokd_log_gram_cuda.h"
#include "dtokd_sgd_update1_cuda.h"
#include "dtokd_sgd_update2_cuda.h"
#include "dtokd_sgd_update8_cuda.h"

namespace {

using Halide::Runtime::Buffer;

// Empty when a CUDA device is usable, else why not.
std::string cuda_unavailable() {
    void *lib = dlopen("libcuda.so.1", RTLD_LAZY);
    if (lib == nullptr) return "no CUDA driver (libcuda.so.1 not found)";
    using InitFn = int (*)(unsigned);
    using CountFn = int (*)(int *);
    auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
    auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
    int n = 0;
    if (init == nullptr || count == nullptr || init(0) != 0 || count(&n) != 0 || n == 0)
        return "no CUDA device (cuInit/cuDeviceGetCount)";
    return "";
}

#define SKIP_WITHOUT_CUDA()                                      \
    do {                                                         \
        const std::string why = cuda_unavailable();              \
        if (!why.empty()) GTEST_SKIP() << why;                   \
    } while (0)

Buffer<float> random_buffer(int n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.f, scale);
    Buffer<float> b(n);
    for (int i = 0; i < n; i++) b(i) = d(rng);
    return b;
}

class CudaGram : public ::testing::TestWithParam<int> {};

TEST_P(CudaGram, MatchesFloat64Reference) {
    SKIP_WITHOUT_CUDA();
    const int n = GetParam();
    Buffer<float> a = random_buffer(n, 1), b = random_buffer(n, 2, 3.f);
    const float ld = 0.37f, lt = 2.5f;
    Buffer<double> gram(3);
    ASSERT_EQ(dtokd_log_gram_cuda(a, b, ld, lt, 1e-8f, gram), 0);
    gram.copy_to_host();
    double aa = 0, ab = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        aa += double(a(i)) * a(i);
        ab += double(a(i)) * b(i);
        bb += double(b(i)) * b(i);
    }
    EXPECT_NEAR(gram(0), aa / (double(ld) * ld), 1e-5 * aa / (double(ld) * ld));
    EXPECT_NEAR(gram(2), bb / (double(lt) * lt), 1e-5 * bb / (double(lt) * lt));
    EXPECT_NEAR(gram(1), ab / (double(ld) * lt), 1e-5 * std::sqrt(aa * bb) / (double(ld) * lt));
}
INSTANTIATE_TEST_SUITE_P(Sizes, CudaGram, ::testing::Values(1, 3, 17, 1023, 4099, 1 << 20, 50000000));

// The N-gradient Gram (N = 1, 3, 8 of the 1..8 built): every upper-triangle entry
// <g_k, g_l> / (L_k L_l) against a float64 loop; the same tolerances as CudaGram.
class CudaGramN : public ::testing::TestWithParam<int> {};

TEST_P(CudaGramN, MatchesFloat64Reference) {
    SKIP_WITHOUT_CUDA();
    const int n = GetParam();
    std::vector<Buffer<float>> g;
    float l[8];
    for (int k = 0; k < 8; k++) {
        g.push_back(random_buffer(n, 20 + k, 0.5f + k));
        l[k] = 0.5f + 0.25f * k;
    }
    auto check = [&](int count, Buffer<double> &out) {
        out.copy_to_host();
        std::vector<double> diag(count);
        for (int k = 0; k < count; k++)
            for (int i = 0; i < n; i++) diag[k] += double(g[k](i)) * g[k](i);
        int t = 0;
        for (int k = 0; k < count; k++)
            for (int m = k; m < count; m++, t++) {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += double(g[k](i)) * g[m](i);
                const double scale = double(l[k]) * l[m];
                EXPECT_NEAR(out(t), dot / scale, 1e-5 * std::sqrt(diag[k] * diag[m]) / scale)
                    << "N=" << count << " (" << k << ", " << m << ") length " << n;
            }
    };
    Buffer<double> o1(1), o3(6), o8(36);
    ASSERT_EQ(dtokd_log_gram1_cuda(g[0], l[0], 1e-8f, o1), 0);
    ASSERT_EQ(dtokd_log_gram3_cuda(g[0], g[1], g[2], l[0], l[1], l[2], 1e-8f, o3), 0);
    ASSERT_EQ(dtokd_log_gram8_cuda(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], l[0], l[1], l[2], l[3], l[4], l[5],
                                   l[6], l[7], 1e-8f, o8),
              0);
    check(1, o1);
    check(3, o3);
    check(8, o8);
}
INSTANTIATE_TEST_SUITE_P(Sizes, CudaGramN, ::testing::Values(1, 17, 4099, 1 << 20));

TEST(CudaKdLoss, MatchesFloat64Reference) {
    SKIP_WITHOUT_CUDA();
    const int batch = 33, classes = 100;
    const float t = 4.f;
    Buffer<float> zs = random_buffer(classes * batch, 3, 5.f), zt = random_buffer(classes * batch, 4, 5.f);
    Buffer<float> s2(zs.data(), classes, batch), t2(zt.data(), classes, batch);
    s2.set_host_dirty();  // wrapped host memory: tell Halide to copy it to the device
    t2.set_host_dirty();
    Buffer<int32_t> y(batch);
    for (int i = 0; i < batch; i++) y(i) = (i * 7) % classes;
    Buffer<double> losses(2);
    Buffer<float> gt(classes, batch), gd(classes, batch);
    ASSERT_EQ(dtokd_kd_loss_cuda(s2, t2, y, t, 0.f, losses, gt, gd), 0);
    losses.copy_to_host();
    gt.copy_to_host();
    gd.copy_to_host();
    double task = 0, kl = 0, worst = 0;
    for (int i = 0; i < batch; i++) {
        double ms = -1e300, mt = -1e300;
        for (int c = 0; c < classes; c++) ms = std::max(ms, double(s2(c, i))), mt = std::max(mt, double(t2(c, i)));
        double ss = 0, sst = 0, stt = 0;
        for (int c = 0; c < classes; c++) {
            ss += std::exp(s2(c, i) - ms);
            sst += std::exp((s2(c, i) - ms) / t);
            stt += std::exp((t2(c, i) - mt) / t);
        }
        task += -(s2(y(i), i) - ms - std::log(ss));
        for (int c = 0; c < classes; c++) {
            const double lq = (s2(c, i) - ms) / t - std::log(sst), lp = (t2(c, i) - mt) / t - std::log(stt);
            kl += std::exp(lp) * (lp - lq);
            const double p_soft = std::exp(s2(c, i) - ms) / ss;
            const double ref_t = (p_soft - (c == y(i) ? 1.0 : 0.0)) / batch;
            const double ref_d = t * (std::exp(lq) - std::exp(lp)) / batch;
            worst = std::max({worst, std::abs(gt(c, i) - ref_t), std::abs(gd(c, i) - ref_d)});
        }
    }
    EXPECT_NEAR(losses(0), task / batch, 1e-5 * task / batch);
    EXPECT_NEAR(losses(1), t * t * kl / batch, 1e-5 * t * t * kl / batch);
    EXPECT_LT(worst, 1e-6);
}

TEST(CudaFusedUpdate, SgdAndAdamWMatchFloat64Reference) {
    SKIP_WITHOUT_CUDA();
    const int n = 100003;
    Buffer<float> a = random_buffer(n, 5), b = random_buffer(n, 6), theta = random_buffer(n, 7);
    Buffer<float> buf = random_buffer(n, 8), m = random_buffer(n, 9, 0.1f), v(n);
    for (int i = 0; i < n; i++) v(i) = std::abs(random_buffer(1, 10 + i % 7)(0));
    const float ca = 0.3f, cb = -0.7f, lr = 0.05f, wd = 5e-4f, mu = 0.9f;
    Buffer<float> theta_sgd = theta.copy(), buf_sgd = buf.copy();
    ASSERT_EQ(dtokd_sgd_update2_cuda(a, b, ca, cb, theta_sgd, buf_sgd, lr, wd, mu, 0.f, false, false, theta_sgd,
                                     buf_sgd),
              0);
    theta_sgd.copy_to_host();
    buf_sgd.copy_to_host();
    double worst_sgd = 0;
    for (int i = 0; i < n; i++) {
        const double d = double(ca) * a(i) + double(cb) * b(i) + double(wd) * theta(i);
        const double nb = double(mu) * buf(i) + d;
        worst_sgd = std::max({worst_sgd, std::abs(theta_sgd(i) - (theta(i) - lr * nb)), std::abs(buf_sgd(i) - nb)});
    }
    EXPECT_LT(worst_sgd, 1e-5);

    const float decay = 1 - 1e-3f * 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float step_size = float(1e-3 / (1 - 0.9)), sqrt_bias2 = float(std::sqrt(1 - 0.999));
    Buffer<float> th = theta.copy(), mm = m.copy(), vv = v.copy();
    ASSERT_EQ(dtokd_adamw_update1_cuda(a, ca, th, mm, vv, decay, b1, b2, eps, step_size, sqrt_bias2, th, mm, vv), 0);
    th.copy_to_host();
    double worst_adam = 0;
    for (int i = 0; i < n; i++) {
        const double g = double(ca) * a(i);
        const double nm = b1 * double(m(i)) + (1 - double(b1)) * g;
        const double nv = b2 * double(v(i)) + (1 - double(b2)) * g * g;
        const double p = double(theta(i)) * decay - step_size * nm / (std::sqrt(nv) / sqrt_bias2 + eps);
        worst_adam = std::max(worst_adam, std::abs(th(i) - p) / std::max(1.0, std::abs(p)));
    }
    EXPECT_LT(worst_adam, 1e-5);
    // Eight gradients: g = sum_k c_k g_k formed on the device.
    std::vector<Buffer<float>> gs;
    float c[8];
    for (int k = 0; k < 8; k++) {
        gs.push_back(random_buffer(n, 30 + k));
        c[k] = 0.1f * float(k) - 0.3f;
    }
    Buffer<float> theta8 = theta.copy(), buf8 = buf.copy();
    ASSERT_EQ(dtokd_sgd_update8_cuda(gs[0], gs[1], gs[2], gs[3], gs[4], gs[5], gs[6], gs[7], c[0], c[1], c[2], c[3],
                                     c[4], c[5], c[6], c[7], theta8, buf8, lr, wd, mu, 0.f, false, false, theta8, buf8),
              0);
    theta8.copy_to_host();
    buf8.copy_to_host();
    double worst8 = 0;
    for (int i = 0; i < n; i++) {
        double d = double(wd) * theta(i);
        for (int k = 0; k < 8; k++) d += double(c[k]) * gs[k](i);
        const double nb = double(mu) * buf(i) + d;
        worst8 = std::max({worst8, std::abs(theta8(i) - (theta(i) - lr * nb)), std::abs(buf8(i) - nb)});
    }
    EXPECT_LT(worst8, 1e-5);
    // The remaining variants run and keep sizes (values checked above for their twins).
    Buffer<float> t1 = theta.copy(), s1 = buf.copy(), t3 = theta.copy(), m3 = m.copy(), v3 = v.copy();
    EXPECT_EQ(dtokd_sgd_update1_cuda(a, ca, t1, s1, lr, wd, mu, 0.f, true, true, t1, s1), 0);
    EXPECT_EQ(dtokd_adamw_update2_cuda(a, b, ca, cb, t3, m3, v3, decay, b1, b2, eps, step_size, sqrt_bias2, t3, m3,
                                       v3),
              0);
}

}  // namespace
