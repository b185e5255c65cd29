// One training step of every trade-off policy on the same small CNN student
// (cnn_small, 1x28x28, 10 classes, batch 128) with a frozen teacher's logits
// precomputed (as the teacher-logit cache does), measured side by side in one
// run, plus the pieces the targets are stated in: one extra student backward,
// one no-grad student forward (the amortized re-evaluation) and the DTO
// arithmetic (Gram + closed form + fused update); dto-amortized re-evaluating
// every K-th step; and three objectives (kd, ce, fitnet on the stage features, with
// the teacher's features precomputed): sum vs exact dto. Ratios print at the end.
//   build/bench/bm_step [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "flat_arena.h"
#include "blas_threads.h"
#include "host_allocator.h"
#include "median_time_reporter.h"
#include "frozen_buffers.h"
#include "fused_optimizer.h"
#include "kernels.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "min_norm.h"
#include "model_handle.h"
#include "net_taps.h"
#include "step_engine.h"
#include "threads.h"
#include "tradeoff_policy.h"

namespace {

constexpr int64_t kBatch = 128;
constexpr int kReevalEvery[] = {2, 4, 8};

// The step engine (student, arena, optimizer, policy, objectives) and one fixed batch.
struct StepSetup {
    std::unique_ptr<dtokd::StepEngine> engine;
    torch::Tensor images, labels;
    dtokd::NetOutputs teacher_out;

    explicit StepSetup(const std::string &method, const std::vector<std::string> &objectives = {"kd", "ce"},
                       int reeval_every = 1) {
        torch::manual_seed(0);
        dtokd::ModelHandle student = dtokd::build_model("cnn_small", 1, 28, 28, 10);
        dtokd::ModelHandle teacher = dtokd::build_model("cnn_large", 1, 28, 28, 10);
        images = torch::randn({kBatch, 1, 28, 28});
        labels = torch::randint(0, 10, {kBatch}, torch::kLong);
        dtokd::PolicyConfig pc;
        pc.method = method;
        pc.reeval_every = reeval_every;
        dtokd::StepEngineOptions options;
        options.optimizer.sgd.lr = 1e-3;  // small: the benchmark runs thousands of steps on one batch
        options.min_gradient_arenas = int(objectives.size());  // the backward benchmarks route into arena 1
        engine = std::make_unique<dtokd::StepEngine>(std::move(student), std::move(teacher),
                                                     dtokd::make_objective_list(objectives), dtokd::make_policy(pc),
                                                     images, dtokd::PrepareContext{}, options);
        teacher_out = engine->teacher_outputs(images, {});  // precomputed, as the teacher-logit cache does
        engine->set_train(true);
    }

    dtokd::ObjectiveBatch objectives() { return engine->make_batch(images, teacher_out, {labels}); }
    dtokd::StepStats step(int64_t step) { return engine->step(images, teacher_out, {labels}, step); }
    std::vector<double> unit_weights() const {
        return std::vector<double>(size_t(engine->objectives().size()), 1.0);
    }
};

void BM_Step(benchmark::State &state, const std::string &method, const std::vector<std::string> &objectives,
             int reeval_every) {
    StepSetup setup(method, objectives, reeval_every);
    int64_t step = 1;  // not 0: dto-amortized's refresh (off here) and SGD's first step are not timed
    for (int warmup = 0; warmup < 5; warmup++) setup.step(step++);  // first calls allocate and JIT (oneDNN)
    for (auto _ : state) benchmark::DoNotOptimize(setup.step(step++));
    state.SetItemsProcessed(state.iterations() * kBatch);
}

// One student forward with graph + both losses (what every step starts with), and the
// same plus one backward: their difference is the cost of one student backward.
// (Timing repeated backward passes over one retained graph measured ~10x a whole
// step here, so the backward is taken as a difference of two fresh-graph runs.)
void BM_StudentForward(benchmark::State &state, const std::vector<std::string> &objectives) {
    StepSetup setup("sum", objectives);
    for (int warmup = 0; warmup < 5; warmup++) setup.objectives();
    for (auto _ : state) benchmark::DoNotOptimize(setup.objectives().loss(0));
}

void BM_StudentForwardBackward(benchmark::State &state, const std::vector<std::string> &objectives) {
    StepSetup setup("sum", objectives);
    for (int warmup = 0; warmup < 5; warmup++) {
        setup.engine->arena().route_gradients_to(1);
        setup.objectives().backward(setup.unit_weights(), /*retain_graph=*/false);
    }
    for (auto _ : state) {
        setup.engine->arena().route_gradients_to(1);
        setup.objectives().backward(setup.unit_weights(), /*retain_graph=*/false);
    }
}

// The amortized policy's extra work: a no-grad forward with frozen BatchNorm stats and the KD kernel.
void BM_StudentReevaluate(benchmark::State &state) {
    StepSetup setup("kd");
    dtokd::ObjectiveBatch pair = setup.objectives();
    for (int warmup = 0; warmup < 5; warmup++) pair.reevaluate();
    for (auto _ : state) benchmark::DoNotOptimize(pair.reevaluate());
}

// Gram of the two arenas + closed form + fused two-gradient SGD update.
void BM_DtoArithmetic(benchmark::State &state) {
    StepSetup setup("dto");
    dtokd::FlatArena &arena = setup.engine->arena();
    arena.gradients(0).normal_();
    arena.gradients(1).normal_();
    for (auto _ : state) {
        const dtokd::Gram g = dtokd::log_gram(arena.gradients(0), arena.gradients(1), 1.3, 0.7, 1e-8,
                                              dtokd::KernelBackend::halide);
        const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(g);
        setup.engine->optimizer().step(arena.params(), dtokd::dto_direction(arena.gradients(0), arena.gradients(1), t.pi1,
                                                                   t.pi2, 1.3, 0.7, 1e-8));
    }
    state.counters["params"] = double(arena.numel());
}

class StepRatioReporter : public dtokd::bench::MedianTimeReporter {
public:
    // Rows whose benchmarks did not run (--benchmark_filter) print "-".
    void print_ratios() const {
        const double kd = seconds("BM_Step/kd"), dto = seconds("BM_Step/dto"),
                     fwd = seconds("BM_StudentForward"), fwd_bwd = seconds("BM_StudentForwardBackward");
        const double bwd = fwd > 0 && fwd_bwd > 0 ? fwd_bwd - fwd : -1;
        if (kd <= 0) return;
        std::printf("\nStep ratios (real time; medians with repetitions). Targets: dto-logit <= 1.02x kd;\n"
                    "dto-amortized <= 1.25x kd; dto <= 1.05x (kd + one backward); DTO arithmetic <= 3%% of dto.\n");
        auto row = [](const char *label, double num, double den, double target, const std::string &extra) {
            if (num <= 0 || den <= 0) {
                std::printf("  %-29s %6s\n", label, "-");
                return;
            }
            const double r = num / den;
            std::printf("  %-29s %6.3f %s%s\n", label, r, target > 0 && r > target ? "(missed)" : "", extra.c_str());
        };
        auto of_kd = [&](const char *what, double t) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "  (%s = %.3f of kd)", what, t / kd);
            return t > 0 ? std::string(buf) : std::string();
        };
        row("ce / kd", seconds("BM_Step/ce"), kd, 0, "");
        row("dto-logit / kd", seconds("BM_Step/dto-logit"), kd, 1.02, "");
        row("dto-amortized / kd", seconds("BM_Step/dto-amortized"), kd, 1.25,
            of_kd("re-evaluation forward", seconds("BM_StudentReevaluate")));
        row("dto / (kd + backward)", dto, bwd > 0 ? kd + bwd : -1, 1.05, of_kd("one backward", bwd));
        for (int k : kReevalEvery)
            row(("dto-amortized K=" + std::to_string(k) + " / kd").c_str(),
                seconds("BM_Step/dto-amortized/reeval_every:" + std::to_string(k)), kd, k == 4 ? 1.15 : 0, "");
        // Three objectives (kd, ce, fitnet): exact dto's N backward passes vs sum's one.
        const double sum3 = seconds("BM_Step3/sum"), dto3 = seconds("BM_Step3/dto"),
                     fwd3 = seconds("BM_StudentForward3"), fwd_bwd3 = seconds("BM_StudentForwardBackward3");
        const double bwd3 = fwd3 > 0 && fwd_bwd3 > 0 ? fwd_bwd3 - fwd3 : -1;
        row("N=3 dto / (sum + 2 backward)", dto3, sum3 > 0 && bwd3 > 0 ? sum3 + 2 * bwd3 : -1, 1.05, "");
        const double arith = seconds("BM_DtoArithmetic");
        if (arith > 0 && dto > 0)
            std::printf("  DTO arithmetic / dto          %6.2f%% %s\n", 100 * arith / dto,
                        arith / dto <= 0.03 ? "" : "(missed)");
        auto ms = [](double t) { return t > 0 ? std::to_string(1e3 * t) : std::string("-"); };
        std::printf("  absolute (ms): kd %s, dto %s, backward %s, arithmetic %s\n", ms(kd).c_str(), ms(dto).c_str(),
                    ms(bwd).c_str(), ms(arith).c_str());
    }
};

}  // namespace

int main(int argc, char **argv) {
    const std::string allocator = dtokd::configure_host_allocator();  // as the dtokd CLI does
    const int threads = dtokd::configure_threads(0);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dtokd_threads", std::to_string(threads));
    benchmark::AddCustomContext("host_allocator", allocator);
    benchmark::AddCustomContext("blas", dtokd::describe_blas());
    const std::vector<std::string> two = {"kd", "ce"}, three = {"kd", "ce", "fitnet"};
    auto step = [](const std::string &name, const std::string &m, const std::vector<std::string> &objs, int k) {
        benchmark::RegisterBenchmark(name.c_str(), BM_Step, m, objs, k)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(2.0);
    };
    for (const std::string &m : dtokd::policy_names())
        if (m != "sum") step("BM_Step/" + m, m, m == "ce" ? std::vector<std::string>{"ce"} : two, 1);
    for (int k : kReevalEvery)
        step("BM_Step/dto-amortized/reeval_every:" + std::to_string(k), "dto-amortized", two, k);
    step("BM_Step3/sum", "sum", three, 1);
    step("BM_Step3/dto", "dto", three, 1);
    for (const auto &[suffix, objs] : {std::make_pair(std::string(), two), std::make_pair(std::string("3"), three)}) {
        benchmark::RegisterBenchmark(("BM_StudentForward" + suffix).c_str(), BM_StudentForward, objs)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("BM_StudentForwardBackward" + suffix).c_str(), BM_StudentForwardBackward, objs)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark("BM_StudentReevaluate", BM_StudentReevaluate)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark("BM_DtoArithmetic", BM_DtoArithmetic)->Unit(benchmark::kMicrosecond)->UseRealTime();
    StepRatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios();
    benchmark::Shutdown();
    return 0;
}
