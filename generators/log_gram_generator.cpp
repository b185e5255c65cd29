// Log-gradient Gram of N raw gradients g_0..g_{N-1} (N = grads.size() = 1..8, set by PARAMS):
//   gram[t] = <g_k, g_l> / (L_k L_l),  L = max(loss, eps),  for the N(N+1)/2 pairs k <= l,
// row by row: t = 0 is (0,0), then (0,1) .. (0,N-1), (1,1), ... For N = 2 that is
// [<a,a>/Ld^2, <a,b>/(Ld Lt), <b,b>/Lt^2] with a = dL_distill/dtheta, b = dL_task/dtheta.
// One pass that reads each gradient once: the 1/L scaling of the log-gradients is folded
// into scalars applied to the totals. Float partial sums per (lane, chunk) keep the inner
// loop vectorized; partials are summed in float64 (rel. error <= 1e-5 at 5e7 elements).
// Any length >= 1: on the CPU full chunks read unguarded and the tail chunk through a guard.
// N = 2 keeps the Func structure and summation order of the former two-gradient generator,
// so dtokd_log_gram's results are bit for bit those of before the generalization.
// Register pressure: N(N+1)/2 accumulators of vector_width lanes live in the inner loop
// (36 at N = 8), so the CMake instances set vector_width per N (generators/CMakeLists.txt).
#include "Halide.h"

#include <functional>
#include <utility>
#include <vector>

namespace {

using namespace Halide;

class LogGram : public Generator<LogGram> {
public:
    // Schedule knobs (variants for autotuning are built from these in CMake).
    GeneratorParam<int> vector_width{"vector_width", 32, 4, 128};   // lanes per partial
    GeneratorParam<int> chunk{"chunk", 16384, 256, 1 << 22};        // elements per parallel task
    GeneratorParam<int> gpu_block{"gpu_block", 256, 32, 1024};      // CUDA threads per block

    Input<Buffer<float, 1>[]> grads{"grads"};  // all of the same length
    Input<float[]> losses{"losses"};           // one per gradient
    Input<float> eps{"eps"};
    Output<Buffer<double, 1>> gram{"gram"};    // N(N+1)/2 upper-triangle entries

    void generate() {
        const int count = int(grads.size());
        _halide_user_assert(count >= 1 && count <= 8) << "log_gram: grads.size is " << count << "; expected 1..8";
        _halide_user_assert(int(losses.size()) == count)
            << "log_gram: losses.size is " << losses.size() << "; expected grads.size = " << count;
        std::vector<std::pair<int, int>> pairs;  // (k, l), k <= l, in output order
        for (int k = 0; k < count; k++)
            for (int l = k; l < count; l++) pairs.emplace_back(k, l);
        const int entries = int(pairs.size());
        auto first = [&](int t) { return size_t(pairs[size_t(t)].first); };
        auto second = [&](int t) { return size_t(pairs[size_t(t)].second); };

        const bool gpu = get_target().has_gpu_feature();
        const int lanes = gpu ? int(gpu_block) : int(vector_width);
        const int steps = std::max(1, int(chunk) / lanes);  // reduction length per lane
        const int chunk_len = steps * lanes;

        Expr n = grads[0].dim(0).extent();
        std::vector<Func> zero_ext;  // each gradient read as 0 outside [0, n)
        for (int k = 0; k < count; k++) zero_ext.push_back(BoundaryConditions::constant_exterior(grads[k], 0.f));
        // CPU: full chunks read unguarded (contiguous vector loads), the tail chunk
        // (< chunk_len elements) through the zero-exterior guard. GPU: every chunk
        // reads through the guard, so at least one chunk exists (no zero-size device
        // allocation for n < chunk_len) and no tail stage is needed.
        Expr full_chunks = gpu ? (n + chunk_len - 1) / chunk_len : n / chunk_len;
        Expr tail_start = full_chunks * chunk_len;
        Expr tail_steps = gpu ? Expr(0) : (n - tail_start + lanes - 1) / lanes;

        // sum(f, term): one Tuple element per pair, element t = f's element t + term(t).
        auto sum = [&](const FuncRef &f, const std::function<Expr(int)> &term) {
            std::vector<Expr> values;
            for (int t = 0; t < entries; t++) values.push_back(element(f, t) + term(t));
            return Tuple(values);
        };
        const Tuple float_zeros(std::vector<Expr>(size_t(entries), Expr(0.f)));
        const Tuple double_zeros(std::vector<Expr>(size_t(entries), Expr(0.0)));

        RDom r(0, steps, "r");
        Expr i = c * chunk_len + r * lanes + v;
        std::vector<Expr> x;  // element i of each gradient
        for (int k = 0; k < count; k++) x.push_back(gpu ? zero_ext[size_t(k)](i) : grads[k](i));
        partial(v, c) = float_zeros;
        partial(v, c) = sum(partial(v, c), [&](int t) { return x[first(t)] * x[second(t)]; });

        RDom rt(0, tail_steps, "rt");
        Expr j = tail_start + rt * lanes + v;
        std::vector<Expr> xt;  // element j of each gradient, 0 past the end
        for (int k = 0; k < count; k++) xt.push_back(zero_ext[size_t(k)](j));
        tail(v) = float_zeros;
        tail(v) = sum(tail(v), [&](int t) { return xt[first(t)] * xt[second(t)]; });

        // Per-chunk totals in float64, then the grand total in float64.
        RDom rl(0, lanes, "rl");
        chunk_sum(c) = double_zeros;
        chunk_sum(c) = sum(chunk_sum(c), [&](int t) { return cast<double>(element(partial(rl, c), t)); });
        RDom rc(0, full_chunks, "rc");
        total() = double_zeros;
        total() = sum(total(), [&](int t) { return element(chunk_sum(rc), t); });
        tail_sum() = double_zeros;
        tail_sum() = sum(tail_sum(), [&](int t) { return cast<double>(element(tail(rl), t)); });

        std::vector<Expr> scale;  // L_k in float64
        for (int k = 0; k < count; k++) scale.push_back(cast<double>(max(losses[k], eps)));
        std::vector<Expr> out;
        for (int t = 0; t < entries; t++)
            out.push_back((element(total(), t) + element(tail_sum(), t)) / (scale[first(t)] * scale[second(t)]));
        gram(e) = entries == 1 ? out[0] : mux(e, out);

        // Estimates: always set, so an autoscheduler variant can be built.
        for (int k = 0; k < count; k++) {
            grads[k].set_estimates({{0, 1 << 22}});
            losses.set_estimate(k, 1.f);
        }
        eps.set_estimate(1e-8f);
        gram.set_estimates({{0, entries}});
        gram.bound(e, 0, entries);

        if (auto_schedule) return;
        if (gpu) {
            // One thread per lane, one block per chunk: coalesced loads. Untimed here (no GPU).
            partial.compute_root().gpu_blocks(c).gpu_threads(v);
            partial.update().gpu_blocks(c).gpu_threads(v);
            Var co, ci;
            tail.compute_root().gpu_tile(v, co, ci, lanes);
            tail.update().gpu_tile(v, co, ci, lanes);
            chunk_sum.compute_root().gpu_tile(c, co, ci, 64, TailStrategy::GuardWithIf);
            chunk_sum.update().gpu_tile(c, co, ci, 64, TailStrategy::GuardWithIf);
            total.compute_root().gpu_single_thread();
            total.update().gpu_single_thread();
            tail_sum.compute_root().gpu_single_thread();
            tail_sum.update().gpu_single_thread();
            gram.gpu_single_thread();
        } else {
            // One parallel loop over the chunks: a task computes its chunk's float partials
            // (lanes vectorized, vector_width floats per entry on the stack) and their float64
            // sum; the tail and the totals follow on the calling thread. Each gradient is
            // streamed once. (Before: partials compute_root, their init, their update and the
            // chunk sums each a parallel loop, 3 fork/joins a call; the summation order is the
            // same.) Measured at vector_width=32, chunk=16384 on 2-core AVX-512 for N = 2
            // (bench/README.md); the widths of the other N: generators/CMakeLists.txt.
            chunk_sum.compute_root();
            chunk_sum.update().parallel(c);
            partial.compute_at(chunk_sum, c).vectorize(v);
            partial.update().vectorize(v);
            tail.compute_root().vectorize(v);
            tail.update().vectorize(v);
            total.compute_root();
            tail_sum.compute_root();
        }
    }

private:
    // Element t of a Tuple-valued call; a Func of one value (N = 1) is not a Tuple in Halide.
    static Expr element(const FuncRef &ref, int t) {
        return ref.function().outputs() == 1 ? Expr(ref) : Expr(ref[t]);
    }

    Var v{"v"}, c{"c"}, e{"k"};
    Func partial{"partial"}, tail{"tail"}, chunk_sum{"chunk_sum"};
    Func total{"total"}, tail_sum{"tail_sum"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(LogGram, log_gram)
