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

// float64 references of the fused updates (generators/sgd_update_generator.cpp,
// adamw_update_generator.cpp), applied to g = sum_k c_k grads[k] element by element.
struct SgdHyper {
    float lr = 0.05f, wd = 5e-4f, mu = 0.9f, dampening = 0.f;
    bool nesterov = false, first_step = false;
};
struct AdamHyper {
    float decay = 1 - 1e-3f * 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float step_size = float(1e-3 / (1 - 0.9)), sqrt_bias2 = float(std::sqrt(1 - 0.999));
};

double combined(const std::vector<Buffer<float>> &grads, const std::vector<float> &c, int i) {
    double g = 0;
    for (size_t k = 0; k < grads.size(); k++) g += double(c[k]) * grads[k](i);
    return g;
}

// Worst |device - reference| over theta and the momentum buffer, relative where large.
double sgd_error(const std::vector<Buffer<float>> &grads, const std::vector<float> &c, const Buffer<float> &theta0,
                 const Buffer<float> &buf0, Buffer<float> &theta, Buffer<float> &buf, const SgdHyper &h) {
    theta.copy_to_host();
    buf.copy_to_host();
    double worst = 0;
    for (int i = 0; i < theta0.width(); i++) {
        const double d = combined(grads, c, i) + double(h.wd) * theta0(i);
        const double nb = h.first_step ? d : double(h.mu) * buf0(i) + (1 - double(h.dampening)) * d;
        const double step = h.mu == 0.f ? d : (h.nesterov ? d + double(h.mu) * nb : nb);
        const double p = theta0(i) - double(h.lr) * step;
        worst = std::max({worst, std::abs(theta(i) - p) / std::max(1.0, std::abs(p)),
                          std::abs(buf(i) - nb) / std::max(1.0, std::abs(nb))});
    }
    return worst;
}

// Worst relative error over theta and both moments.
double adamw_error(const std::vector<Buffer<float>> &grads, const std::vector<float> &c, const Buffer<float> &theta0,
                   const Buffer<float> &m0, const Buffer<float> &v0, Buffer<float> &theta, Buffer<float> &m,
                   Buffer<float> &v, const AdamHyper &h) {
    theta.copy_to_host();
    m.copy_to_host();
    v.copy_to_host();
    double worst = 0;
    for (int i = 0; i < theta0.width(); i++) {
        const double g = combined(grads, c, i);
        const double nm = h.b1 * double(m0(i)) + (1 - double(h.b1)) * g;
        const double nv = h.b2 * double(v0(i)) + (1 - double(h.b2)) * g * g;
        const double p = double(theta0(i)) * h.decay - h.step_size * nm / (std::sqrt(nv) / h.sqrt_bias2 + h.eps);
        auto rel = [](double got, double want) { return std::abs(got - want) / std::max(1.0, std::abs(want)); };
        worst = std::max({worst, rel(theta(i), p), rel(m(i), nm), rel(v(i), nv)});
    }
    return worst;
}

// Every variant (1, 2 and 8 gradients; SGD plain, Nesterov, dampened, first step;
// AdamW), every output (theta, momentum buffer, both moments), in place as the runtime calls them.
TEST(CudaFusedUpdate, EveryVariantAndOutputMatchesFloat64Reference) {
    SKIP_WITHOUT_CUDA();
    const int n = 100003;
    std::vector<Buffer<float>> g8;
    std::vector<float> c8;
    for (int k = 0; k < 8; k++) {
        g8.push_back(random_buffer(n, 30 + uint32_t(k)));
        c8.push_back(0.1f * float(k) - 0.3f);
    }
    const Buffer<float> theta = random_buffer(n, 7), buf = random_buffer(n, 8), m = random_buffer(n, 9, 0.1f);
    Buffer<float> v(n);
    {
        const Buffer<float> r = random_buffer(n, 10, 0.1f);
        for (int i = 0; i < n; i++) v(i) = std::abs(r(i));  // second moments are >= 0
    }
    std::vector<Buffer<float>> g1 = {g8[0]}, g2 = {g8[0], g8[1]};
    const std::vector<float> c1 = {c8[0]}, c2 = {c8[0], c8[1]};

    SgdHyper plain, nesterov_first, dampened;
    nesterov_first.nesterov = true;
    nesterov_first.first_step = true;
    dampened.dampening = 0.1f;
    for (const SgdHyper &h : {plain, nesterov_first, dampened}) {
        SCOPED_TRACE(std::string("sgd nesterov ") + (h.nesterov ? "1" : "0") + " first " + (h.first_step ? "1" : "0") +
                     " dampening " + std::to_string(h.dampening));
        Buffer<float> t1 = theta.copy(), s1 = buf.copy();
        ASSERT_EQ(dtokd_sgd_update1_cuda(g1[0], c1[0], t1, s1, h.lr, h.wd, h.mu, h.dampening, h.nesterov, h.first_step,
                                         t1, s1),
                  0);
        EXPECT_LT(sgd_error(g1, c1, theta, buf, t1, s1, h), 1e-5) << "sgd_update1";
        Buffer<float> t2 = theta.copy(), s2 = buf.copy();
        ASSERT_EQ(dtokd_sgd_update2_cuda(g2[0], g2[1], c2[0], c2[1], t2, s2, h.lr, h.wd, h.mu, h.dampening, h.nesterov,
                                         h.first_step, t2, s2),
                  0);
        EXPECT_LT(sgd_error(g2, c2, theta, buf, t2, s2, h), 1e-5) << "sgd_update2";
        Buffer<float> t8 = theta.copy(), s8 = buf.copy();
        ASSERT_EQ(dtokd_sgd_update8_cuda(g8[0], g8[1], g8[2], g8[3], g8[4], g8[5], g8[6], g8[7], c8[0], c8[1], c8[2],
                                         c8[3], c8[4], c8[5], c8[6], c8[7], t8, s8, h.lr, h.wd, h.mu, h.dampening,
                                         h.nesterov, h.first_step, t8, s8),
                  0);
        EXPECT_LT(sgd_error(g8, c8, theta, buf, t8, s8, h), 1e-5) << "sgd_update8";
    }
    const AdamHyper a;
    Buffer<float> t1 = theta.copy(), m1 = m.copy(), v1 = v.copy();
    ASSERT_EQ(dtokd_adamw_update1_cuda(g1[0], c1[0], t1, m1, v1, a.decay, a.b1, a.b2, a.eps, a.step_size, a.sqrt_bias2,
                                       t1, m1, v1),
              0);
    EXPECT_LT(adamw_error(g1, c1, theta, m, v, t1, m1, v1, a), 1e-5) << "adamw_update1";
    Buffer<float> t2 = theta.copy(), m2 = m.copy(), v2 = v.copy();
    ASSERT_EQ(dtokd_adamw_update2_cuda(g2[0], g2[1], c2[0], c2[1], t2, m2, v2, a.decay, a.b1, a.b2, a.eps, a.step_size,
                                       a.sqrt_bias2, t2, m2, v2),
              0);
    EXPECT_LT(adamw_error(g2, c2, theta, m, v, t2, m2, v2, a), 1e-5) << "adamw_update2";
}

}  // namespace
