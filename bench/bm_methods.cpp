// One training step of each of the seed's distillation methods on the CIFAR-100 pair
// resnet32x4 -> resnet8x4 (batch 64, 3x32x32, 100 classes): the published fixed
// weights (`sum`) vs exact `dto` over the same objectives, and for DKD, DIST and RKD
// also dto over their terms. The teacher's outputs (logits and the taps the method
// reads) are computed once and reused, so the rows time the student's side of the
// step: forward, losses (modules included), backward(s), trade-off and update. Both
// networks are freshly initialized (the time does not depend on the weights).
//   build/bench/bm_methods [--benchmark_filter=dkd]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "blas_threads.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "host_allocator.h"
#include "median_time_reporter.h"
#include "model_handle.h"
#include "net_taps.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "step_engine.h"
#include "threads.h"
#include "tradeoff_policy.h"

namespace {

constexpr int64_t kBatch = 64, kClasses = 100, kTrainSamples = 50000;

struct Method {
    std::string name;
    std::vector<std::string> objectives;
    std::vector<double> weights;  // the reference's fixed weights (pipelines/configs/cifar100)
};

const std::vector<Method> &methods() {
    static const std::vector<Method> m = {
        {"kd", {"kd", "ce"}, {0.9, 0.1}},          {"dkd", {"dkd", "ce"}, {1, 1}},
        {"dist", {"dist", "ce"}, {2, 1}},          {"fitnet", {"fitnet", "ce"}, {100, 1}},
        {"at", {"at", "ce"}, {1000, 1}},           {"rkd", {"rkd", "ce"}, {1, 1}},
        {"pkt", {"pkt", "ce"}, {30000, 1}},        {"ofd", {"ofd", "ce"}, {0.001, 1}},
        {"crd", {"crd", "ce"}, {0.8, 1}},          {"reviewkd", {"reviewkd", "ce"}, {5, 1}},
        {"dkd_split", {"dkd_tckd", "dkd_nckd", "ce"}, {1, 1, 1}},
        {"dist_split", {"dist_inter", "dist_intra", "ce"}, {2, 2, 1}},
        {"rkd_split", {"rkd_distance", "rkd_angle", "ce"}, {1, 1, 1}},
    };
    return m;
}

// The step engine (objectives' modules built from a probe of this batch) and one batch.
struct MethodSetup {
    std::unique_ptr<dtokd::StepEngine> engine;
    dtokd::NetOutputs teacher_out;
    dtokd::BatchTargets targets;
    torch::Tensor images;

    MethodSetup(const Method &m, const std::string &policy_name) {
        torch::manual_seed(0);
        dtokd::ModelHandle student = dtokd::build_model("resnet8x4", 3, 32, 32, kClasses);
        dtokd::ModelHandle teacher = dtokd::build_model("resnet32x4", 3, 32, 32, kClasses);
        images = torch::randn({kBatch, 3, 32, 32});
        targets.labels = torch::randint(0, kClasses, {kBatch}, torch::kLong);
        targets.indices = torch::randint(0, kTrainSamples, {kBatch}, torch::kLong);
        std::unique_ptr<dtokd::ObjectiveList> list = dtokd::make_objective_list(m.objectives, dtokd::ObjectiveOptions{});
        if (const int64_t k = list->contrast_negatives(); k > 0)  // own index, then K random others
            targets.contrast_indices =
                torch::cat({targets.indices.unsqueeze(1), torch::randint(0, kTrainSamples, {kBatch, k}, torch::kLong)}, 1);
        dtokd::StepEngineOptions options;
        options.optimizer.sgd.lr = 1e-3;  // small: thousands of steps on one batch
        options.optimizer.sgd.momentum = 0.9;
        options.optimizer.sgd.weight_decay = 5e-4;
        options.kd = dtokd::KdLossOptions{4.0, 0.0};
        dtokd::PolicyConfig pc;
        pc.method = policy_name;
        if (policy_name == "sum") pc.weights = m.weights;
        dtokd::PrepareContext ctx;
        ctx.num_samples = kTrainSamples;
        ctx.num_classes = kClasses;
        ctx.teacher_name = "resnet32x4";
        engine = std::make_unique<dtokd::StepEngine>(std::move(student), std::move(teacher), std::move(list),
                                                     dtokd::make_policy(pc), images, ctx, options);
        teacher_out = engine->teacher_outputs(images, targets.indices);
        engine->set_train(true);
    }

    dtokd::StepStats step(int64_t step) { return engine->step(images, teacher_out, targets, step); }
};

void BM_Method(benchmark::State &state, const Method &m, const std::string &policy) {
    MethodSetup setup(m, policy);
    int64_t step = 1;
    for (int warmup = 0; warmup < 3; warmup++) setup.step(step++);
    for (auto _ : state) {
        const dtokd::StepStats s = setup.step(step++);
        if (s.skipped) state.SkipWithError(("step skipped: " + s.skip_reason).c_str());
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}

class MethodRatioReporter : public dtokd::bench::MedianTimeReporter {
public:
    void print_ratios() const {
        std::printf("\nresnet32x4 -> resnet8x4, batch 64, one step (ms, real time; teacher outputs precomputed)\n");
        std::printf("  %-12s %10s %10s %10s\n", "method", "fixed", "dto", "dto/fixed");
        for (const Method &m : methods()) {
            const double fixed = seconds("BM_Method/" + m.name + "/sum"), dto = seconds("BM_Method/" + m.name + "/dto");
            if (fixed <= 0 && dto <= 0) continue;
            auto ms = [](double t) { return t > 0 ? std::to_string(1e3 * t).substr(0, 7) : std::string("-"); };
            std::printf("  %-12s %10s %10s %10s\n", m.name.c_str(), ms(fixed).c_str(), ms(dto).c_str(),
                        fixed > 0 && dto > 0 ? std::to_string(dto / fixed).substr(0, 5).c_str() : "-");
        }
    }
};

}  // namespace

int main(int argc, char **argv) {
    const std::string allocator = dtokd::configure_host_allocator();
    const int threads = dtokd::configure_threads(0);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("dtokd_threads", std::to_string(threads));
    benchmark::AddCustomContext("host_allocator", allocator);
    benchmark::AddCustomContext("blas", dtokd::describe_blas());
    for (const Method &m : methods())
        for (const std::string policy : {"sum", "dto"}) {
            if (m.name.find("_split") != std::string::npos && policy == "sum") continue;  // same sum as the whole
            benchmark::RegisterBenchmark(("BM_Method/" + m.name + "/" + policy).c_str(), BM_Method, m, policy)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(1.0);
        }
    MethodRatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios();
    benchmark::Shutdown();
    return 0;
}
