// Data-parallel steps (runtime/collective.h over a real c10d Gloo group, ranks as threads
// joined by an in-process store): R ranks, each on its interleaved share of the global
// batch (DistributedSampler's order), must take the step one process takes on the whole
// batch: parameters after 5 steps within 1e-6 relative and pi within 1e-6, for every
// policy over 2 and 3 objectives. Also: a rank that stops is an error, not a hang, and
// the traffic per step is what the math needs (dto-logit: kd's plus a few numbers).
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "c10d_collective.h"
#include "collective.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "process_group.h"
#include "tiny_conv.h"
#include "tradeoff_policy.h"

namespace {

namespace F = torch::nn::functional;
using dtokd::KernelBackend;
constexpr int kSteps = 5, kGlobalBatch = 8, kClasses = 5;

// The student is TinyConv (tiny_conv.h), without batch norm: with it, per-rank batch
// statistics differ from the global batch's (as in DDP).

struct Batch {
    torch::Tensor x, labels, teacher_logits;
    // Rank r of R: samples r, r + R, ... (torch.utils.data.DistributedSampler's split).
    Batch share(int rank, int world) const {
        const torch::Tensor idx = torch::arange(rank, kGlobalBatch, world, torch::kLong);
        return {x.index_select(0, idx), labels.index_select(0, idx), teacher_logits.index_select(0, idx)};
    }
};

std::vector<Batch> make_batches() {
    torch::manual_seed(21);
    std::vector<Batch> out;
    for (int i = 0; i < kSteps; i++) {
        Batch b;
        b.x = torch::randn({kGlobalBatch, 2, 4, 4});
        b.labels = torch::randint(0, kClasses, {kGlobalBatch}, torch::kLong);
        b.teacher_logits = 2 * torch::randn({kGlobalBatch, kClasses}) +
                           3 * F::one_hot(b.labels, kClasses).to(torch::kFloat);
        out.push_back(b);
    }
    return out;
}

// One replica: student, objectives, policy, arena and optimizer, built from `init`.
struct Replica {
    TinyConv net{4, kClasses};
    std::unique_ptr<dtokd::ObjectiveList> list;
    std::unique_ptr<dtokd::TradeoffPolicy> policy;
    std::unique_ptr<dtokd::FlatArena> arena;
    std::unique_ptr<dtokd::FusedOptimizer> optimizer;
    std::vector<std::vector<double>> pi;  // per step

    Replica(const TinyConv &init, const dtokd::PolicyConfig &pc, const std::vector<std::string> &names,
            const Batch &probe) {
        {
            torch::NoGradGuard no_grad;
            auto src = init->parameters(), dst = net->parameters();
            for (size_t i = 0; i < src.size(); i++) dst[i].copy_(src[i]);
        }
        dtokd::OptimizerConfig oc;
        oc.sgd.lr = 0.1;
        oc.sgd.momentum = 0.9;
        oc.sgd.weight_decay = 5e-4;
        list = dtokd::make_objective_list(names);
        dtokd::NetOutputs teacher;
        teacher.logits = probe.teacher_logits;
        list->prepare(net->forward(probe.x), teacher, oc);
        dtokd::PolicyConfig p = pc;
        p.reeval_every = 1;
        policy = dtokd::make_policy(p);
        arena = std::make_unique<dtokd::FlatArena>(*net, policy->gradient_arenas(list->size()));
        optimizer = std::make_unique<dtokd::FusedOptimizer>(arena->params(), oc, KernelBackend::halide);
    }

    dtokd::StepStats step(const Batch &b, int64_t step, dtokd::Collective *collective) {
        dtokd::NetOutputs teacher;
        teacher.logits = b.teacher_logits;
        dtokd::ObjectiveBatch batch(
            *list, [&] { return net->forward(b.x); }, *net, teacher, dtokd::BatchTargets(b.labels),
            dtokd::KdLossOptions{4.0, 0.0}, KernelBackend::halide);
        dtokd::PolicyContext ctx{*arena, *optimizer, KernelBackend::halide, collective};
        dtokd::StepStats s = policy->step(batch, ctx, step);
        pi.emplace_back(s.pi.begin(), s.pi.begin() + s.objectives);
        return s;
    }

    torch::Tensor flat() const {
        std::vector<torch::Tensor> parts;
        for (const auto &p : net->parameters()) parts.push_back(p.detach().reshape({-1}).to(torch::kDouble));
        return torch::cat(parts);
    }
};

struct Case {
    std::string method;
    std::vector<std::string> objectives;
};

void PrintTo(const Case &c, std::ostream *os) {
    *os << c.method << " over";
    for (const auto &o : c.objectives) *os << " " << o;
}

std::string case_name(const ::testing::TestParamInfo<Case> &info) {
    std::string n = info.param.method;
    for (const auto &o : info.param.objectives) n += "_" + o;
    for (char &c : n)
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

class DataParallelStep : public ::testing::TestWithParam<Case> {};

// Runs `body(rank, collective)` on `world` threads joined by one Gloo group.
template <class Body>
void on_ranks(int world, Body body, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    auto store = dtokd::make_in_process_store();
    std::vector<std::thread> threads;
    std::vector<std::string> errors(static_cast<size_t>(world));
    for (int r = 0; r < world; r++)
        threads.emplace_back([&, r] {
            try {
                auto collective = dtokd::make_c10d_collective(dtokd::make_gloo_group(store, r, world, timeout, "127.0.0.1"));
                body(r, *collective);
            } catch (const std::exception &e) {
                errors[size_t(r)] = e.what();
            }
        });
    for (auto &t : threads) t.join();
    for (int r = 0; r < world; r++) EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
}

}  // namespace

TEST_P(DataParallelStep, RanksTakeTheStepOfOneProcessOnTheGlobalBatch) {
    const Case &c = GetParam();
    const std::vector<Batch> batches = make_batches();
    torch::manual_seed(5);
    const TinyConv init(4, kClasses);
    dtokd::PolicyConfig pc;
    pc.method = c.method;

    Replica single(init, pc, c.objectives, batches[0]);
    for (int i = 0; i < kSteps; i++) {
        const dtokd::StepStats s = single.step(batches[size_t(i)], i, nullptr);
        ASSERT_FALSE(s.skipped) << s.skip_reason;
    }

    for (int world : {2, 4}) {
        SCOPED_TRACE("world " + std::to_string(world));
        std::vector<std::unique_ptr<Replica>> ranks;
        for (int r = 0; r < world; r++)
            ranks.push_back(std::make_unique<Replica>(init, pc, c.objectives, batches[0].share(r, world)));
        std::vector<int64_t> bytes(static_cast<size_t>(world));
        on_ranks(world, [&](int r, dtokd::Collective &collective) {
            for (int i = 0; i < kSteps; i++) {
                const dtokd::StepStats s = ranks[size_t(r)]->step(batches[size_t(i)].share(r, world), i, &collective);
                if (s.skipped) throw std::runtime_error("skipped: " + s.skip_reason);
            }
            bytes[size_t(r)] = collective.bytes();
        });
        const torch::Tensor want = single.flat();
        for (int r = 0; r < world; r++) {
            const torch::Tensor got = ranks[size_t(r)]->flat();
            const double rel = (got - want).abs().max().item<double>() / want.abs().max().item<double>();
            EXPECT_LT(rel, 1e-6) << "rank " << r << ": parameters after " << kSteps << " steps";
            // Every rank holds the same replica, bit for bit.
            EXPECT_TRUE(torch::equal(got, ranks[0]->flat())) << "rank " << r << " differs from rank 0";
            ASSERT_EQ(ranks[size_t(r)]->pi.size(), single.pi.size());
            for (size_t i = 0; i < single.pi.size(); i++)
                for (size_t k = 0; k < single.pi[i].size(); k++)
                    EXPECT_NEAR(ranks[size_t(r)]->pi[i][k], single.pi[i][k], 1e-6) << "step " << i << " pi_" << k;
            EXPECT_EQ(bytes[size_t(r)], bytes[0]);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, DataParallelStep,
    ::testing::Values(Case{"ce", {"kd", "ce"}}, Case{"kd", {"kd", "ce"}}, Case{"dto", {"kd", "ce"}},
                      Case{"dto-amortized", {"kd", "ce"}}, Case{"dto-logit", {"kd", "ce"}},
                      Case{"kd", {"kd", "ce", "dkd"}}, Case{"dto", {"kd", "ce", "dkd"}},
                      Case{"dto-amortized", {"kd", "ce", "dkd"}}, Case{"dto-logit", {"kd", "ce", "dkd"}}),
    case_name);

// What each policy all-reduces per step (float32 arenas of P parameters, float64 numbers):
// kd / ce: one arena and N losses; dto: N arenas and N losses; dto-amortized: one arena,
// N losses before and N after the step; dto-logit: kd's traffic plus the Gram's N(N+1)/2 numbers.
TEST(DataParallel, BytesPerStepAreWhatTheMathNeeds) {
    const std::vector<Batch> batches = make_batches();
    torch::manual_seed(5);
    const TinyConv init(4, kClasses);
    const int64_t p = int64_t(Replica(init, {}, {"kd", "ce"}, batches[0]).flat().numel()) * 4;
    auto bytes_of = [&](const std::string &method, const std::vector<std::string> &names) {
        dtokd::PolicyConfig pc;
        pc.method = method;
        std::vector<std::unique_ptr<Replica>> ranks;
        for (int r = 0; r < 2; r++) ranks.push_back(std::make_unique<Replica>(init, pc, names, batches[0].share(r, 2)));
        int64_t out = 0;
        on_ranks(2, [&](int r, dtokd::Collective &collective) {
            ranks[size_t(r)]->step(batches[0].share(r, 2), 0, &collective);
            if (r == 0) out = collective.bytes();
        });
        return out;
    };
    for (int n : {2, 3}) {
        const std::vector<std::string> names =
            n == 2 ? std::vector<std::string>{"kd", "ce"} : std::vector<std::string>{"kd", "ce", "dkd"};
        SCOPED_TRACE(std::to_string(n) + " objectives");
        const int64_t kd = bytes_of("kd", names);
        EXPECT_EQ(kd, p + 8 * n);
        EXPECT_EQ(bytes_of("dto", names), n * p + 8 * n);
        EXPECT_EQ(bytes_of("dto-amortized", names), p + 16 * n);
        EXPECT_EQ(bytes_of("dto-logit", names), kd + 8 * n * (n + 1) / 2);
    }
}

// A rank that stops answering: the other's next collective fails within the group's
// timeout with one error naming its rank, instead of waiting forever.
TEST(DataParallel, ARankThatStopsIsAnErrorWithinTheTimeout) {
    auto store = dtokd::make_in_process_store();
    std::string error;
    std::chrono::duration<double> waited{};
    std::thread silent([&] {
        auto c = dtokd::make_c10d_collective(dtokd::make_gloo_group(store, 1, 2, std::chrono::seconds(2), "127.0.0.1"));
        std::vector<torch::Tensor> t = {torch::ones({4})};
        c->sum(t);  // one step together, then this rank stops taking part (it stays alive)
        std::this_thread::sleep_for(std::chrono::seconds(6));
    });
    {
        auto c = dtokd::make_c10d_collective(dtokd::make_gloo_group(store, 0, 2, std::chrono::seconds(2), "127.0.0.1"));
        std::vector<torch::Tensor> t = {torch::ones({4})};
        c->sum(t);
        EXPECT_TRUE(torch::equal(t[0], torch::full({4}, 2.0)));
        const auto t0 = std::chrono::steady_clock::now();
        try {
            c->sum(t);
        } catch (const std::runtime_error &e) {
            error = e.what();
        }
        waited = std::chrono::steady_clock::now() - t0;
    }
    silent.join();
    EXPECT_NE(error.find("rank 0 of 2: all-reduce failed"), std::string::npos) << error;
    EXPECT_LT(waited.count(), 5.0) << "the timeout is 2 s";
}
