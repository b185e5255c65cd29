// Kernel-layer benchmarks: every Halide kernel against its LibTorch baselines and
// a hand-written memory roofline that moves the same bytes, all in one run, for
// N in {1e4, 1e5, 1e6, 1e7, 5e7} floats per tensor. Then the Gram of K = 1..8 gradient
// arenas of 1e7 floats each (BM_GramN_*/K): the one-pass Halide kernel against K(K+1)/2
// LibTorch dot products and a streaming read of the K arenas. After the runs ratio tables
// (speedups, % of roofline) are printed, built from the medians when
// --benchmark_repetitions > 1 (bench/README.md has the targets and numbers).
//
// Constraints: benchmarks are registered N-outer, so all variants of one size run
// back to back on the same cached gradients (a, b are the two rows of one 2xN
// tensor, which the stacked-matmul baseline needs without a copy). Byte counts are
// the algorithmic minimum of the fused kernel (Gram 2N reads, SGD 4N reads + 2N
// writes, AdamW 5N + 3N), the same for every variant of a kernel, so GB/s is an
// effective bandwidth and ratios of GB/s are ratios of time.
#include <ATen/Parallel.h>
#include <HalideRuntime.h>
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "blas_threads.h"
#include "host_allocator.h"
#include "host_readback.h"
#include "kernel_backends.h"
#include "kernel_selection.h"
#include "kernels.h"
#include "median_time_reporter.h"
#include "threads.h"

namespace {

using dtokd::KernelBackend;

constexpr double kLossDistill = 0.7, kLossTask = 1.3, kEps = 1e-8;
constexpr double kPi1 = 0.4, kPi2 = 0.6;
constexpr int64_t kSizes[] = {10'000, 100'000, 1'000'000, 10'000'000, 50'000'000};
constexpr int64_t kArenaLength = 10'000'000;  // floats per gradient arena in BM_GramN_*

// ---------------------------------------------------------------------------------
// Shared inputs: the two raw gradients of the current N, kept while that N runs.

struct Gradients {
    int64_t n = 0;
    at::Tensor ab;  // [2, N]: row 0 = a (distill), row 1 = b (task)
    at::Tensor a, b;
};

std::unique_ptr<Gradients> &gradient_cache() {
    static std::unique_ptr<Gradients> cached;
    return cached;
}

const Gradients &gradients(int64_t n) {
    std::unique_ptr<Gradients> &cached = gradient_cache();
    if (!cached || cached->n != n) {
        cached.reset();  // free the previous size before allocating the next
        auto g = std::make_unique<Gradients>();
        g->n = n;
        torch::manual_seed(0);
        g->ab = torch::randn({2, n});
        g->a = g->ab[0];
        g->b = g->ab[1];
        cached = std::move(g);
    }
    return *cached;
}

void set_bytes(benchmark::State &state, int64_t bytes_per_iteration) {
    state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
    state.counters["GBps"] =
        benchmark::Counter(double(bytes_per_iteration) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------
// Roofline loops: the least work that still touches every byte once, AVX-512 where
// the CPU has it (the bench is built for baseline x86-64, so it is chosen at run
// time), one contiguous range per configured thread via at::parallel_for. Up to
// kRooflineChunk elements run inline on the calling thread, faster than waking the
// pool for in-cache sizes. at::parallel_for is a header template whose `omp parallel`
// is compiled into the caller: this file is built with OpenMP (bench/CMakeLists.txt),
// without it the loop silently runs on one thread. The threads a pass really used are
// counted and printed (roofline_threads), as are Halide's (halide_par_for_threads).

constexpr int64_t kRooflineChunk = 1 << 14;

int64_t thread_slots() { return std::max(1, at::get_num_threads()); }

// body(begin, end, slot) over [0, n); slot < thread_slots() is the running thread.
template <typename Body>
void for_ranges(int64_t n, const Body &body) {
    if (n <= kRooflineChunk) {
        body(int64_t(0), n, int64_t(0));
        return;
    }
    at::parallel_for(0, n, kRooflineChunk,
                     [&](int64_t begin, int64_t end) { body(begin, end, int64_t(at::get_thread_num())); });
}

// Distinct OS threads that ran `tasks` tasks of ~0.2 ms each through `run`.
template <typename Run>
int count_threads(const Run &run) {
    std::mutex mutex;
    std::set<std::thread::id> seen;
    run([&] {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        while (std::chrono::steady_clock::now() < until) {
        }
        std::lock_guard<std::mutex> lock(mutex);
        seen.insert(std::this_thread::get_id());
    });
    return int(seen.size());
}

int roofline_threads() {
    return count_threads([](const auto &work) {
        for_ranges(64 * kRooflineChunk, [&](int64_t, int64_t, int64_t) { work(); });
    });
}

// The kernels' parallel loop: halide_do_par_for, whatever configure_threads routed it to.
int halide_par_for_threads() {
    return count_threads([](const auto &work) {
        using Work = std::decay_t<decltype(work)>;
        halide_task_t task = [](void *, int, uint8_t *closure) -> int {
            (*reinterpret_cast<const Work *>(closure))();
            return 0;
        };
        const int status = halide_do_par_for(nullptr, task, 0, 8 * thread_slots(),
                                             reinterpret_cast<uint8_t *>(const_cast<Work *>(&work)));
        if (status != 0) throw std::runtime_error("halide_do_par_for returned " + std::to_string(status));
    });
}

__attribute__((target("avx512f"))) float read2_avx512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
        s4 = _mm512_add_ps(s4, _mm512_loadu_ps(b + i));
        s5 = _mm512_add_ps(s5, _mm512_loadu_ps(b + i + 16));
        s6 = _mm512_add_ps(s6, _mm512_loadu_ps(b + i + 32));
        s7 = _mm512_add_ps(s7, _mm512_loadu_ps(b + i + 48));
    }
    const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                                   _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
    alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wuninitialized)
    _mm512_store_ps(lanes, s);
    float r = 0;
    for (float v : lanes) r += v;
    for (; i < n; i++) r += a[i] + b[i];
    return r;
}

float read2_generic(const float *a, const float *b, int64_t n) {
    float acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] + b[i + j];
    float r = 0;
    for (float v : acc) r += v;
    for (; i < n; i++) r += a[i] + b[i];
    return r;
}

// SGD-shaped in-place pass: reads theta, buf, a, b; writes theta, buf.
__attribute__((target("avx512f"))) void rw42_avx512(float *theta, float *buf, const float *a, const float *b,
                                                    int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int64_t k = i; k < i + 32; k += 16) {
            const __m512 m = _mm512_add_ps(_mm512_loadu_ps(buf + k), _mm512_loadu_ps(a + k));
            const __m512 t = _mm512_add_ps(_mm512_loadu_ps(theta + k), _mm512_loadu_ps(b + k));
            _mm512_storeu_ps(buf + k, m);
            _mm512_storeu_ps(theta + k, t);
        }
    }
    for (; i < n; i++) {
        buf[i] += a[i];
        theta[i] += b[i];
    }
}

void rw42_generic(float *theta, float *buf, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        buf[i] += a[i];
        theta[i] += b[i];
    }
}

// AdamW-shaped in-place pass: reads theta, m, v, a, b; writes theta, m, v.
__attribute__((target("avx512f"))) void rw53_avx512(float *theta, float *m, float *v, const float *a,
                                                    const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
        _mm512_storeu_ps(m + i, _mm512_add_ps(_mm512_loadu_ps(m + i), va));
        _mm512_storeu_ps(v + i, _mm512_add_ps(_mm512_loadu_ps(v + i), vb));
        _mm512_storeu_ps(theta + i, _mm512_add_ps(_mm512_loadu_ps(theta + i), _mm512_sub_ps(va, vb)));
    }
    for (; i < n; i++) {
        m[i] += a[i];
        v[i] += b[i];
        theta[i] += a[i] - b[i];
    }
}

void rw53_generic(float *theta, float *m, float *v, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        m[i] += a[i];
        v[i] += b[i];
        theta[i] += a[i] - b[i];
    }
}

const bool kHasAvx512 = __builtin_cpu_supports("avx512f");

float read2(const float *a, const float *b, int64_t n) {
    // One padded slot per thread: no false sharing between the partial sums.
    struct alignas(64) Slot {
        float v = 0;
    };
    std::vector<Slot> partial(static_cast<size_t>(thread_slots()));
    for_ranges(n, [&](int64_t begin, int64_t end, int64_t slot) {
        partial[size_t(slot)].v += kHasAvx512 ? read2_avx512(a + begin, b + begin, end - begin)
                                              : read2_generic(a + begin, b + begin, end - begin);
    });
    float r = 0;
    for (const Slot &slot : partial) r += slot.v;
    return r;
}

// The read of K arenas: 64 floats of each arena per step, added into 8 accumulators
// (consecutive arenas alternate between two sets of 4).
__attribute__((target("avx512f"))) float readn_avx512(const float *const *p, int count, int64_t begin, int64_t end) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    int64_t i = begin;
    for (; i + 64 <= end; i += 64) {
        int k = 0;
        for (; k + 2 <= count; k += 2) {
            const float *a = p[k] + i, *b = p[k + 1] + i;
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + 16));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + 32));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + 48));
            s4 = _mm512_add_ps(s4, _mm512_loadu_ps(b));
            s5 = _mm512_add_ps(s5, _mm512_loadu_ps(b + 16));
            s6 = _mm512_add_ps(s6, _mm512_loadu_ps(b + 32));
            s7 = _mm512_add_ps(s7, _mm512_loadu_ps(b + 48));
        }
        if (k < count) {
            const float *a = p[k] + i;
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + 16));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + 32));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + 48));
        }
    }
    const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                                   _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, s);
    float r = 0;
    for (float v : lanes) r += v;
    for (; i < end; i++)
        for (int k = 0; k < count; k++) r += p[k][i];
    return r;
}

float readn_generic(const float *const *p, int count, int64_t begin, int64_t end) {
    float acc[16] = {};
    int64_t i = begin;
    for (; i + 16 <= end; i += 16)
        for (int k = 0; k < count; k++)
            for (int j = 0; j < 16; j++) acc[j] += p[k][i + j];
    float r = 0;
    for (float v : acc) r += v;
    for (; i < end; i++)
        for (int k = 0; k < count; k++) r += p[k][i];
    return r;
}

float readn(const float *const *p, int count, int64_t n) {
    struct alignas(64) Slot {
        float v = 0;
    };
    std::vector<Slot> partial(static_cast<size_t>(thread_slots()));
    for_ranges(n, [&](int64_t begin, int64_t end, int64_t slot) {
        partial[size_t(slot)].v += kHasAvx512 ? readn_avx512(p, count, begin, end) : readn_generic(p, count, begin, end);
    });
    float r = 0;
    for (const Slot &slot : partial) r += slot.v;
    return r;
}

// ---------------------------------------------------------------------------------
// Gram

void bm_roofline_read2n(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    const float *a = g.a.data_ptr<float>(), *b = g.b.data_ptr<float>();
    benchmark::DoNotOptimize(read2(a, b, n));
    for (auto _ : state) benchmark::DoNotOptimize(read2(a, b, n));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

void bm_gram_halide(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    benchmark::DoNotOptimize(dtokd::log_gram(g.a, g.b, kLossDistill, kLossTask, kEps, KernelBackend::halide));
    for (auto _ : state)
        benchmark::DoNotOptimize(dtokd::log_gram(g.a, g.b, kLossDistill, kLossTask, kEps, KernelBackend::halide));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

dtokd::Gram scale_gram(double aa, double ab, double bb) {
    const double ld = std::max(kLossDistill, kEps), lt = std::max(kLossTask, kEps);
    return {aa / (ld * ld), ab / (ld * lt), bb / (lt * lt)};
}

dtokd::Gram gram_three_dots(const at::Tensor &a, const at::Tensor &b) {
    return scale_gram(a.dot(a).item<double>(), a.dot(b).item<double>(), b.dot(b).item<double>());
}

void bm_gram_torch_three_dots(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    benchmark::DoNotOptimize(gram_three_dots(g.a, g.b));
    for (auto _ : state) benchmark::DoNotOptimize(gram_three_dots(g.a, g.b));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

dtokd::Gram gram_stacked_matmul(const at::Tensor &m) {
    const at::Tensor s = m.mm(m.t());
    const auto acc = s.accessor<float, 2>();
    return scale_gram(acc[0][0], acc[0][1], acc[1][1]);
}

void bm_gram_torch_stacked_matmul(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    benchmark::DoNotOptimize(gram_stacked_matmul(g.ab));
    for (auto _ : state) benchmark::DoNotOptimize(gram_stacked_matmul(g.ab));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

// The torch back end's two Gram forms (kernels_torch.cpp): per-chunk BLAS dots added up on
// the host (what runs on the CPU), and the batched matmul per pair summed on the device
// (what runs on a GPU, where reading each chunk's dot would wait for the device).
void bm_gram_torch_backend(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    for (auto _ : state) benchmark::DoNotOptimize(dtokd::log_gram(g.a, g.b, 1.0, 1.0, 1e-8, KernelBackend::torch));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

void bm_gram_torch_backend_batched(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    for (auto _ : state)
        benchmark::DoNotOptimize(
            dtokd::read_to_host(dtokd::detail::torch_backend::raw_gram_batched({g.a.reshape({-1}), g.b.reshape({-1})})));
    set_bytes(state, 2 * n * int64_t(sizeof(float)));
}

// ---------------------------------------------------------------------------------
// Gram of K gradient arenas (K = 1..8 objectives, kArenaLength floats each)

// The rows of one [8, kArenaLength] tensor, made once (torch::randn, seed 1).
const at::Tensor &arenas() {
    static const at::Tensor rows = [] {
        torch::manual_seed(1);
        return torch::randn({dtokd::kMaxObjectives, kArenaLength});
    }();
    return rows;
}

struct ArenaSet {
    std::vector<at::Tensor> rows;
    std::vector<const at::Tensor *> ptrs;
    std::vector<const float *> data;
    std::vector<double> losses;
};

ArenaSet arena_set(int count) {
    ArenaSet a;
    for (int k = 0; k < count; k++) a.rows.push_back(arenas()[k]);
    for (int k = 0; k < count; k++) {
        a.ptrs.push_back(&a.rows[size_t(k)]);
        a.data.push_back(a.rows[size_t(k)].data_ptr<float>());
        a.losses.push_back(0.5 + 0.25 * k);
    }
    return a;
}

void set_arena_bytes(benchmark::State &state, int count) {
    set_bytes(state, int64_t(count) * kArenaLength * int64_t(sizeof(float)));
}

void bm_roofline_readn(benchmark::State &state, int count) {
    const ArenaSet a = arena_set(count);
    benchmark::DoNotOptimize(readn(a.data.data(), count, kArenaLength));
    for (auto _ : state) benchmark::DoNotOptimize(readn(a.data.data(), count, kArenaLength));
    set_arena_bytes(state, count);
}

void bm_gramn_halide(benchmark::State &state, int count) {
    const ArenaSet a = arena_set(count);
    benchmark::DoNotOptimize(dtokd::log_gram(a.ptrs, a.losses, kEps, KernelBackend::halide));
    for (auto _ : state) benchmark::DoNotOptimize(dtokd::log_gram(a.ptrs, a.losses, kEps, KernelBackend::halide));
    set_arena_bytes(state, count);
}

// LibTorch's baseline: one at::dot per pair k <= l (K(K+1)/2 passes), then the scaling.
dtokd::GramMatrix gram_dots(const ArenaSet &a) {
    dtokd::GramMatrix g;
    g.n = int(a.rows.size());
    for (int k = 0; k < g.n; k++)
        for (int l = k; l < g.n; l++)
            g(k, l) = g(l, k) = a.rows[size_t(k)].dot(a.rows[size_t(l)]).item<double>() /
                                (std::max(a.losses[size_t(k)], kEps) * std::max(a.losses[size_t(l)], kEps));
    return g;
}

void bm_gramn_torch_dots(benchmark::State &state, int count) {
    const ArenaSet a = arena_set(count);
    benchmark::DoNotOptimize(gram_dots(a));
    for (auto _ : state) benchmark::DoNotOptimize(gram_dots(a));
    set_arena_bytes(state, count);
}

// ---------------------------------------------------------------------------------
// Fused SGD (momentum 0.9, weight decay 5e-4, two-gradient DTO direction)

constexpr int64_t kSgdBytes = 6 * int64_t(sizeof(float));  // per element: theta, buf, a, b in; theta, buf out

dtokd::SgdOptions sgd_options() {
    dtokd::SgdOptions o;
    o.lr = 0.05;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    return o;
}

dtokd::Direction direction(const Gradients &g) {
    return dtokd::dto_direction(g.a, g.b, kPi1, kPi2, kLossDistill, kLossTask, kEps);
}

void bm_roofline_read_write(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), buf = torch::full({n}, 0.01f);
    float *t = theta.data_ptr<float>(), *m = buf.data_ptr<float>();
    const float *a = g.a.data_ptr<float>(), *b = g.b.data_ptr<float>();
    auto pass = [&] {
        for_ranges(n, [&](int64_t begin, int64_t end, int64_t) {
            (kHasAvx512 ? rw42_avx512 : rw42_generic)(t + begin, m + begin, a + begin, b + begin, end - begin);
        });
    };
    pass();
    for (auto _ : state) {
        pass();
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kSgdBytes);
}

void bm_sgd_update(benchmark::State &state, int64_t n, KernelBackend backend) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), buf = torch::full({n}, 0.01f);
    const dtokd::Direction d = direction(g);
    const dtokd::SgdOptions o = sgd_options();
    dtokd::sgd_update(theta, buf, d, o, /*first_step=*/true, backend);
    for (auto _ : state) {
        dtokd::sgd_update(theta, buf, d, o, /*first_step=*/false, backend);
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kSgdBytes);
}

// torch::optim::SGD on a parameter whose .grad is the combined direction; forming
// it (sum_k c_k g_k into a preallocated grad) is timed, as the fused kernel does it.
void form_direction(at::Tensor &grad, const dtokd::Direction &d) {
    at::mul_out(grad, *d.grads[0], d.coeffs[0]);
    for (int k = 1; k < d.count; k++) grad.add_(*d.grads[size_t(k)], d.coeffs[size_t(k)]);
}

void bm_sgd_update_torch_optim(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), grad = torch::empty({n});
    theta.set_requires_grad(true);
    theta.mutable_grad() = grad;
    const dtokd::Direction d = direction(g);
    const dtokd::SgdOptions o = sgd_options();
    torch::optim::SGD optimizer({theta},
                                torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
    form_direction(grad, d);
    optimizer.step();  // creates the momentum buffer
    for (auto _ : state) {
        form_direction(grad, d);
        optimizer.step();
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kSgdBytes);
}

// ---------------------------------------------------------------------------------
// Fused AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 1e-2)

constexpr int64_t kAdamWBytes = 8 * int64_t(sizeof(float));  // theta, m, v, a, b in; theta, m, v out

void bm_roofline_read_write_adamw(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), m = torch::full({n}, 0.01f), v = torch::full({n}, 0.01f);
    float *t = theta.data_ptr<float>(), *pm = m.data_ptr<float>(), *pv = v.data_ptr<float>();
    const float *a = g.a.data_ptr<float>(), *b = g.b.data_ptr<float>();
    auto pass = [&] {
        for_ranges(n, [&](int64_t begin, int64_t end, int64_t) {
            (kHasAvx512 ? rw53_avx512 : rw53_generic)(t + begin, pm + begin, pv + begin, a + begin, b + begin,
                                                      end - begin);
        });
    };
    pass();
    for (auto _ : state) {
        pass();
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kAdamWBytes);
}

void bm_adamw_update(benchmark::State &state, int64_t n, KernelBackend backend) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), m = torch::zeros({n}), v = torch::zeros({n});
    const dtokd::Direction d = direction(g);
    const dtokd::AdamWOptions o;
    int64_t step = 1;
    dtokd::adamw_update(theta, m, v, d, o, step++, backend);
    for (auto _ : state) {
        dtokd::adamw_update(theta, m, v, d, o, step++, backend);
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kAdamWBytes);
}

void bm_adamw_update_torch_optim(benchmark::State &state, int64_t n) {
    const Gradients &g = gradients(n);
    at::Tensor theta = torch::full({n}, 0.01f), grad = torch::empty({n});
    theta.set_requires_grad(true);
    theta.mutable_grad() = grad;
    const dtokd::Direction d = direction(g);
    const dtokd::AdamWOptions o;
    torch::optim::AdamW optimizer(
        {theta},
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    form_direction(grad, d);
    optimizer.step();  // creates exp_avg, exp_avg_sq
    for (auto _ : state) {
        form_direction(grad, d);
        optimizer.step();
        benchmark::ClobberMemory();
    }
    set_bytes(state, n * kAdamWBytes);
}

// ---------------------------------------------------------------------------------
// Registration, N-outer so that every ratio compares runs made seconds apart.

template <typename Fn>
void add(const char *name, int64_t n, Fn fn) {
    benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(name, [n, fn](benchmark::State &s) { fn(s, n); });
    b->Arg(n)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void register_benchmarks() {
    for (int64_t n : kSizes) {
        add("BM_Roofline_Read2N", n, bm_roofline_read2n);
        add("BM_Gram_Halide", n, bm_gram_halide);
        add("BM_Gram_TorchThreeDots", n, bm_gram_torch_three_dots);
        add("BM_Gram_TorchStackedMatmul", n, bm_gram_torch_stacked_matmul);
        add("BM_Gram_TorchBackend", n, bm_gram_torch_backend);
        add("BM_Gram_TorchBackendBatched", n, bm_gram_torch_backend_batched);
        add("BM_Roofline_ReadWrite", n, bm_roofline_read_write);
        add("BM_SgdUpdate_Halide", n, [](benchmark::State &s, int64_t size) { bm_sgd_update(s, size, KernelBackend::halide); });
        add("BM_SgdUpdate_TorchOpByOp", n,
            [](benchmark::State &s, int64_t size) { bm_sgd_update(s, size, KernelBackend::torch); });
        add("BM_SgdUpdate_TorchOptim", n, bm_sgd_update_torch_optim);
        add("BM_Roofline_ReadWriteAdamW", n, bm_roofline_read_write_adamw);
        add("BM_AdamWUpdate_Halide", n,
            [](benchmark::State &s, int64_t size) { bm_adamw_update(s, size, KernelBackend::halide); });
        add("BM_AdamWUpdate_TorchOpByOp", n,
            [](benchmark::State &s, int64_t size) { bm_adamw_update(s, size, KernelBackend::torch); });
        add("BM_AdamWUpdate_TorchOptim", n, bm_adamw_update_torch_optim);
    }
    // The arenas, K-outer, after the sizes.
    for (int count = 1; count <= dtokd::kMaxObjectives; count++) {
        for (const auto &[name, fn] : {std::pair{"BM_Roofline_ReadN", bm_roofline_readn},
                                       std::pair{"BM_GramN_Halide", bm_gramn_halide},
                                       std::pair{"BM_GramN_TorchDots", bm_gramn_torch_dots}}) {
            benchmark::RegisterBenchmark(name, [count, fn = fn](benchmark::State &s) {
                gradient_cache().reset();  // the last size's a, b (400 MB at 5e7)
                fn(s, count);
            })->Arg(count)->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
    }
}

// ---------------------------------------------------------------------------------
// Ratio table: the console reporter, plus the real time of every (name, N), taken
// from the median aggregate when repetitions produce one.

class RatioReporter : public dtokd::bench::MedianTimeReporter {
public:
    using MedianTimeReporter::MedianTimeReporter;

    void print_ratios(std::ostream &os) const {
        char line[256];
        os << "\nRatios (real time; medians when --benchmark_repetitions > 1). xA = A's time / Halide's time;\n"
              "%roof = roofline time / Halide time for the same bytes. Targets: Gram >= 1.8x three-dots and\n"
              ">= 85% of Read2N at N >= 1e7; fused update >= 2x op-by-op at N >= 1e6 (! = missed).\n";
        std::snprintf(line, sizeof line, "%10s | %10s %10s %8s | %10s %10s %8s | %10s %10s %8s\n", "N",
                      "Gram x3dot", "Gram xmm", "%roof", "SGD xop", "SGD xoptim", "%roof", "AdamW xop",
                      "AdamW xopt", "%roof");
        os << line;
        for (int64_t n : kSizes) {
            const bool big = n >= 10'000'000, mid = n >= 1'000'000;
            std::string cells;
            cells += cell(ratio("BM_Gram_TorchThreeDots", "BM_Gram_Halide", n), 1.8, big, false);
            cells += cell(ratio("BM_Gram_TorchStackedMatmul", "BM_Gram_Halide", n), 0, false, false);
            cells += cell(ratio("BM_Roofline_Read2N", "BM_Gram_Halide", n), 0.85, big, true);
            cells += "|";
            cells += cell(ratio("BM_SgdUpdate_TorchOpByOp", "BM_SgdUpdate_Halide", n), 2.0, mid, false);
            cells += cell(ratio("BM_SgdUpdate_TorchOptim", "BM_SgdUpdate_Halide", n), 0, false, false);
            cells += cell(ratio("BM_Roofline_ReadWrite", "BM_SgdUpdate_Halide", n), 0, false, true);
            cells += "|";
            cells += cell(ratio("BM_AdamWUpdate_TorchOpByOp", "BM_AdamWUpdate_Halide", n), 2.0, mid, false);
            cells += cell(ratio("BM_AdamWUpdate_TorchOptim", "BM_AdamWUpdate_Halide", n), 0, false, false);
            cells += cell(ratio("BM_Roofline_ReadWriteAdamW", "BM_AdamWUpdate_Halide", n), 0, false, true);
            std::snprintf(line, sizeof line, "%10lld |%s\n", static_cast<long long>(n), cells.c_str());
            os << line;
        }
        os << "\nGram of K arenas of " << kArenaLength << " floats (BM_GramN_*/K). xdots = K(K+1)/2 at::dot\n"
              "calls' time / Halide's time; %roof = ReadN time / Halide time. Targets for K = 2, 3, 4:\n"
              ">= 1.8x dots and >= 85% of ReadN (! = missed).\n";
        std::snprintf(line, sizeof line, "%10s | %10s %8s | %12s %12s %12s\n", "K", "xdots", "%roof",
                      "Halide us", "dots us", "ReadN us");
        os << line;
        for (int count = 1; count <= dtokd::kMaxObjectives; count++) {
            const std::string k = "/" + std::to_string(count);
            const bool target = count >= 2 && count <= 4;
            const double halide = seconds("BM_GramN_Halide" + k);
            if (halide < 0) continue;
            std::string cells;
            cells += cell(MedianTimeReporter::ratio("BM_GramN_TorchDots" + k, "BM_GramN_Halide" + k), 1.8, target,
                          false);
            cells += cell(MedianTimeReporter::ratio("BM_Roofline_ReadN" + k, "BM_GramN_Halide" + k), 0.85, target,
                          true);
            std::snprintf(line, sizeof line, "%10d |%s |%s%s%s\n", count, cells.c_str(), us(halide).c_str(),
                          us(seconds("BM_GramN_TorchDots" + k)).c_str(), us(seconds("BM_Roofline_ReadN" + k)).c_str());
            os << line;
        }
        os.flush();
    }

private:
    double ratio(const std::string &num, const std::string &den, int64_t n) const {
        return MedianTimeReporter::ratio(num + "/" + std::to_string(n), den + "/" + std::to_string(n));
    }
    // " %12.0f" microseconds, or "-" when not run.
    static std::string us(double seconds) {
        char buf[32];
        if (seconds < 0) std::snprintf(buf, sizeof buf, " %12s", "-");
        else std::snprintf(buf, sizeof buf, " %12.0f", 1e6 * seconds);
        return buf;
    }
    // A right-aligned 10-wide cell ("-" when not run), marked '!' when a checked target is missed.
    static std::string cell(double r, double target, bool checked, bool percent) {
        char buf[32];
        if (r < 0) {
            std::snprintf(buf, sizeof buf, percent ? " %8s" : " %10s", "-");
        } else {
            const char mark = checked && r < target ? '!' : ' ';
            if (percent)
                std::snprintf(buf, sizeof buf, " %6.1f%%%c", 100 * r, mark);
            else
                std::snprintf(buf, sizeof buf, " %8.2fx%c", r, mark);
        }
        return buf;
    }
};

}  // namespace

int main(int argc, char **argv) {
    // Recorded because it moves the LibTorch baselines by up to 1000x on a shared
    // machine (libgomp reads it once, at load; bench/README.md).
    const char *wait_policy = std::getenv("OMP_WAIT_POLICY");
    // The malloc setting of the dtokd CLI, so LibTorch's temporaries (the baselines')
    // are not page-faulted afresh each call, as they would not be in training.
    const std::string allocator = dtokd::configure_host_allocator();
    const int threads = dtokd::configure_threads(0);
    // Default --benchmark_min_time=0.2 (library default 0.5) keeps the whole run near a
    // minute; an explicit flag on the command line wins.
    std::vector<char *> args(argv, argv + argc);
    char default_min_time[] = "--benchmark_min_time=0.2";
    if (std::none_of(args.begin(), args.end(),
                     [](const char *a) { return std::string(a).rfind("--benchmark_min_time", 0) == 0; }))
        args.insert(args.begin() + 1, default_min_time);
    int args_count = int(args.size());
    benchmark::Initialize(&args_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(args_count, args.data())) return 1;
    benchmark::AddCustomContext("dtokd_threads", std::to_string(threads));
    benchmark::AddCustomContext("host_allocator", allocator);
    benchmark::AddCustomContext("blas", dtokd::describe_blas());
    benchmark::AddCustomContext("roofline_isa", kHasAvx512 ? "avx512f" : "generic");
    // A parallel loop that silently runs on one thread halves a 2-core result and
    // hides in any ratio whose both sides share it: check both, loudly.
    const int roof_threads = roofline_threads(), halide_threads = halide_par_for_threads();
    benchmark::AddCustomContext("roofline_threads", std::to_string(roof_threads));
    benchmark::AddCustomContext("halide_par_for_threads", std::to_string(halide_threads));
    if (roof_threads < threads || halide_threads < threads)
        benchmark::AddCustomContext("WARNING", "a parallel loop used fewer threads than dtokd_threads");
    benchmark::AddCustomContext("omp_wait_policy", wait_policy != nullptr ? wait_policy : "unset (libgomp: spin)");
    // No tuning file is loaded: the default schedule of every kernel is timed.
    for (const char *k : {"log_gram", "sgd_update2", "adamw_update2"})
        benchmark::AddCustomContext(std::string("schedule_") + k, dtokd::selected_kernel_variant(k));
    register_benchmarks();
    RatioReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios(std::cout);
    benchmark::Shutdown();
    return 0;
}
