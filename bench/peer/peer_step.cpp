// dtokd's side of the PyTorch peer comparison (bench/peer/run_peer.py drives it).
//   dump:  build the student with a seed, write its initial parameters, the batch and
//          the teacher logits (raw little-endian tensors + manifest.json), take ONE
//          step of --method and write pi, the losses and the updated parameters, so
//          dto_step.py can redo the same step in eager PyTorch and compare.
//   time:  --warmup + --steps timed steps (student forward + KD kernel + policy step,
//          the same unit as bench/bm_step), one JSON line with per-step milliseconds
//          and the forward and backward parts of each (--profile FILE: an op trace too).
//   arith: the DTO arithmetic alone (log-gram + closed form + fused SGD update) on
//          the model's two gradient arenas filled with N(0,1), one JSON line.
// The teacher logits are fixed numbers (N(0, 2^2) + 4 on the label): dtokd reads
// them from its teacher-logit cache, so no teacher forward belongs in the step.
#include <torch/csrc/autograd/profiler.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "device.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "host_allocator.h"
#include "kernels.h"
#include "min_norm.h"
#include "model_handle.h"
#include "objective_batch.h"
#include "objective_registry.h"
#include "objective_set.h"
#include "threads.h"
#include "tradeoff_policy.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
    std::string mode, model = "cnn_small", method = "dto", out, profile, device = "cpu", kernels = "halide";
    int channels = 1, height = 28, width = 28, classes = 10, batch = 128, threads = 0, warmup = 5, steps = 20;
    int64_t seed = 0;
    double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
};

Args parse(int argc, char **argv) {
    if (argc < 2)
        throw std::invalid_argument(
            "usage: peer_step dump|time|arith [--model M] [--input CxHxW] [--device cpu|cuda] [--kernels halide|torch] ...");
    Args a;
    a.mode = argv[1];
    if (a.mode != "dump" && a.mode != "time" && a.mode != "arith")
        throw std::invalid_argument("mode '" + a.mode + "' is unknown; expected dump, time or arith");
    for (int i = 2; i < argc; i += 2) {
        const std::string k = argv[i];
        if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
        const std::string v = argv[i + 1];
        if (k == "--model") a.model = v;
        else if (k == "--method") a.method = v;
        else if (k == "--out") a.out = v;
        else if (k == "--input") {
            if (std::sscanf(v.c_str(), "%dx%dx%d", &a.channels, &a.height, &a.width) != 3)
                throw std::invalid_argument("--input is '" + v + "'; expected CxHxW, e.g. 3x32x32");
        } else if (k == "--classes") a.classes = std::stoi(v);
        else if (k == "--batch") a.batch = std::stoi(v);
        else if (k == "--threads") a.threads = std::stoi(v);
        else if (k == "--warmup") a.warmup = std::stoi(v);
        else if (k == "--steps") a.steps = std::stoi(v);
        else if (k == "--seed") a.seed = std::stoll(v);
        else if (k == "--lr") a.lr = std::stod(v);
        else if (k == "--profile") a.profile = v;
        else if (k == "--device") a.device = v;
        else if (k == "--kernels") a.kernels = v;
        else throw std::invalid_argument("option '" + k + "' is unknown");
    }
    if (a.mode == "dump" && a.out.empty()) throw std::invalid_argument("dump needs --out DIR");
    return a;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Phases {
    double forward = 0, backward = 0;
};

// Passes everything through to the real objectives and adds up the time spent in
// backward(), so the policy's step splits into backward passes and the rest
// (Gram, closed form, fused update) without touching the policy.
class TimedObjectives : public dtokd::ObjectiveSet {
public:
    TimedObjectives(dtokd::ObjectiveSet &inner, double &backward_seconds) : inner_(inner), seconds_(backward_seconds) {}
    int size() const override { return inner_.size(); }
    std::string name(int k) const override { return inner_.name(k); }
    double loss(int k) const override { return inner_.loss(k); }
    void backward(const std::vector<double> &weights, bool retain_graph) override {
        const auto t0 = Clock::now();
        inner_.backward(weights, retain_graph);
        seconds_ += seconds_since(t0);
    }
    at::Tensor output_grad(int k) const override { return inner_.output_grad(k); }
    std::vector<double> reevaluate() override { return inner_.reevaluate(); }

private:
    dtokd::ObjectiveSet &inner_;
    double &seconds_;
};

// Student (training mode), arena, optimizer, policy and one fixed batch, all from --seed.
struct Setup {
    dtokd::ModelHandle student;
    std::unique_ptr<dtokd::TradeoffPolicy> policy;
    std::unique_ptr<dtokd::FlatArena> arena;
    std::unique_ptr<dtokd::FusedOptimizer> optimizer;
    std::unique_ptr<dtokd::ObjectiveList> list = dtokd::make_objective_list({"kd", "ce"});
    torch::Tensor images, labels, teacher_logits;

    at::Device device = at::kCPU;
    dtokd::KernelBackend backend = dtokd::KernelBackend::halide;

    explicit Setup(const Args &a) : device(dtokd::parse_device(a.device)), backend(dtokd::parse_kernel_backend(a.kernels)) {
        dtokd::check_device_usable(device);
        dtokd::check_backend_on_device(backend, device);
        torch::manual_seed(a.seed);  // everything drawn on the CPU: the same numbers on every device
        student = dtokd::build_model(a.model, a.channels, a.height, a.width, a.classes);
        images = torch::randn({a.batch, a.channels, a.height, a.width});
        labels = torch::randint(0, a.classes, {a.batch}, torch::kLong);
        // A teacher that mostly agrees with the labels, so L_distill and L_task pull
        // partly together and pi lands inside (0, 1) rather than on a clamp.
        teacher_logits = torch::randn({a.batch, a.classes}) * 2.0 +
                         torch::one_hot(labels, a.classes).to(torch::kFloat) * 4.0;
        dtokd::move_to(student, device);
        images = images.to(device);
        labels = labels.to(device);
        teacher_logits = teacher_logits.to(device);
        dtokd::PolicyConfig pc;
        pc.method = a.method;
        policy = dtokd::make_policy(pc);
        arena = std::make_unique<dtokd::FlatArena>(*student.module, std::max(2, policy->gradient_arenas(list->size())));
        dtokd::OptimizerConfig oc;
        oc.sgd.lr = a.lr;
        oc.sgd.momentum = a.momentum;
        oc.sgd.weight_decay = a.weight_decay;
        optimizer = std::make_unique<dtokd::FusedOptimizer>(arena->params(), oc, backend);
        student.set_train(true);
    }

    // `phases` (optional): seconds in forward (+ KD kernel) and in the backward pass(es).
    dtokd::StepStats step(int64_t n, Phases *phases = nullptr) {
        const auto t0 = Clock::now();
        const torch::Tensor x = images;
        dtokd::ModelHandle &s = student;
        dtokd::NetOutputs teacher;
        teacher.logits = teacher_logits;
        dtokd::ObjectiveBatch pair(
            *list, [&s, x] { return dtokd::NetOutputs{s.forward(x), {}, {}, {}}; }, *student.module, teacher, {labels},
            {}, backend);
        Phases local;
        local.forward = seconds_since(t0);
        TimedObjectives timed(pair, local.backward);
        dtokd::PolicyContext ctx{*arena, *optimizer, backend};
        const dtokd::StepStats st = policy->step(timed, ctx, n);
        if (phases) *phases = local;
        return st;
    }
};

// Appends tensors to one raw file and their (name, dtype, shape) to a JSON list, in order.
struct RawWriter {
    std::ofstream data;
    nlohmann::ordered_json entries = nlohmann::ordered_json::array();
    explicit RawWriter(const std::string &path) : data(path, std::ios::binary) {
        if (!data) throw std::runtime_error(path + ": cannot open for writing");
    }
    void add(const std::string &name, const torch::Tensor &t) {
        const torch::Tensor c = t.detach().contiguous().cpu();
        const bool is_long = c.scalar_type() == torch::kLong;
        if (!is_long && c.scalar_type() != torch::kFloat)
            throw std::invalid_argument(name + ": dtype " + std::string(c.dtype().name()) + "; expected float or long");
        data.write(static_cast<const char *>(c.data_ptr()), std::streamsize(c.nbytes()));
        if (!data) throw std::runtime_error(name + ": write failed");
        entries.push_back({{"name", name}, {"dtype", is_long ? "int64" : "float32"}, {"shape", c.sizes().vec()}});
    }
};

void write_text(const std::string &path, const std::string &text) {
    std::ofstream f(path);
    f << text;
    if (!f) throw std::runtime_error(path + ": write failed");
}

void dump(const Args &a, int threads) {
    Setup s(a);
    std::filesystem::create_directories(a.out);
    RawWriter init(a.out + "/initial.bin");
    for (const auto &p : s.student.module->named_parameters()) init.add("param/" + p.key(), p.value());
    init.add("images", s.images);
    init.add("labels", s.labels);
    init.add("teacher_logits", s.teacher_logits);
    const dtokd::StepStats st = s.step(0);
    if (st.skipped) throw std::runtime_error("the step was skipped: " + st.skip_reason);
    RawWriter after(a.out + "/after.bin");
    for (const auto &p : s.student.module->named_parameters()) after.add("param/" + p.key(), p.value());
    const nlohmann::ordered_json m = {
        {"model", a.model},
        {"input", {a.channels, a.height, a.width}},
        {"classes", a.classes},
        {"batch", a.batch},
        {"method", a.method},
        {"seed", a.seed},
        {"device", a.device},
        {"kernels", a.kernels},
        {"threads", threads},
        {"lr", a.lr},
        {"momentum", a.momentum},
        {"weight_decay", a.weight_decay},
        {"temperature", 4},
        {"eps", 1e-8},
        {"alpha_distill", 0.9},
        {"alpha_task", 0.1},
        {"result",
         {{"pi1", st.pi1}, {"pi2", st.pi2}, {"loss_distill", st.loss_distill}, {"loss_task", st.loss_task}}},
        {"initial", init.entries},
        {"after", after.entries}};
    write_text(a.out + "/manifest.json", m.dump(2) + "\n");
    std::cout << "wrote " << a.out << ": pi1 " << st.pi1 << ", L_distill " << st.loss_distill << ", L_task "
              << st.loss_task << "\n";
}

void time_steps(const Args &a, int threads) {
    Setup s(a);
    int64_t n = 0;
    for (int i = 0; i < a.warmup; i++) s.step(n++);  // first calls allocate and JIT (oneDNN, PTX)
    // A GPU step's time is its finished work: wait for the device before and after each.
    auto synchronize = [&] {
        if (s.device.is_cuda()) torch::cuda::synchronize(s.device.index());
    };
    synchronize();
    std::vector<double> total, forward, backward;
    // --profile FILE: LibTorch's profiler over the timed steps, a Chrome trace (profile_ops.py reads it).
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profiler;
    if (!a.profile.empty()) profiler = std::make_unique<torch::autograd::profiler::RecordProfile>(a.profile);
    for (int i = 0; i < a.steps; i++) {
        Phases ph;
        const auto t0 = Clock::now();
        const dtokd::StepStats st = s.step(n++, &ph);
        synchronize();
        total.push_back(1e3 * seconds_since(t0));
        forward.push_back(1e3 * ph.forward);
        backward.push_back(1e3 * ph.backward);
        if (st.skipped) throw std::runtime_error("step " + std::to_string(n) + " skipped: " + st.skip_reason);
    }
    const nlohmann::ordered_json line = {{"impl", "dtokd"},    {"mode", "time"},       {"model", a.model},
                                         {"device", a.device},  {"kernels", a.kernels},
                                         {"method", a.method},  {"threads", threads},   {"params", s.arena->numel()},
                                         {"step_ms", total},    {"forward_ms", forward}, {"backward_ms", backward}};
    std::cout << line.dump() << "\n";
}

void time_arithmetic(const Args &a, int threads) {
    Args dto = a;
    dto.method = "dto";
    Setup s(dto);
    dtokd::FlatArena &arena = *s.arena;
    arena.gradients(0).normal_();
    arena.gradients(1).normal_();
    auto once = [&] {
        const dtokd::Gram g =
            dtokd::log_gram(arena.gradients(0), arena.gradients(1), 1.3, 0.7, 1e-8, s.backend);
        const dtokd::Tradeoff t = dtokd::min_norm_tradeoff(g);
        s.optimizer->step(arena.params(), dtokd::dto_direction(arena.gradients(0), arena.gradients(1), t.pi1,
                                                               t.pi2, 1.3, 0.7, 1e-8));
    };
    for (int i = 0; i < a.warmup; i++) once();
    std::vector<double> ms;
    for (int i = 0; i < a.steps; i++) {
        const auto t0 = Clock::now();
        once();
        ms.push_back(1e3 * seconds_since(t0));
    }
    const nlohmann::ordered_json line = {{"impl", "dtokd"},   {"mode", "arith"},
                                         {"model", a.model},   {"threads", threads},
                                         {"params", arena.numel()}, {"tensors", arena.slots().size()},
                                         {"step_ms", ms}};
    std::cout << line.dump() << "\n";
}

}  // namespace

int main(int argc, char **argv) {
    try {
        const Args a = parse(argc, argv);
        dtokd::configure_host_allocator();  // as the dtokd CLI does
        const int threads = dtokd::configure_threads(a.threads);
        if (a.mode == "dump") dump(a, threads);
        else if (a.mode == "time") time_steps(a, threads);
        else time_arithmetic(a, threads);
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "peer_step: " << e.what() << "\n";
        return 1;
    }
}
