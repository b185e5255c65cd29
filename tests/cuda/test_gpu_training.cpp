// The GPU path through LibTorch (built into dtokd_tests only against a CUDA LibTorch; every
// test skips without a visible GPU): each kernel on CUDA tensors, both back ends, against
// float64 references on the CPU; one step of every policy on the GPU against the same step
// on the CPU (1e-4 relative); Halide launches that do not wait for the stream; and a short
// distill run on the GPU that resumes on the CPU.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "../cli_runner.h"
#include "../scratch_data.h"
#include "checkpoint.h"
#include "cuda_device.h"
#include "flat_arena.h"
#include "kernels.h"
#include "model_handle.h"
#include "objective_registry.h"
#include "step_engine.h"
#include "tradeoff_policy.h"

namespace {

using dtokd::KernelBackend;
using namespace dtokd_test;

#define SKIP_WITHOUT_GPU()                                                                      \
    do {                                                                                        \
        if (dtokd::visible_gpus().empty()) GTEST_SKIP() << "no CUDA GPU is visible";            \
    } while (0)

const at::Device kGpu(at::kCUDA, 0);

const char *name_of(KernelBackend b) { return b == KernelBackend::halide ? "halide" : "torch"; }

// ---- kernels ---------------------------------------------------------------------------

class GpuGram : public ::testing::TestWithParam<std::tuple<KernelBackend, int, int64_t>> {};

TEST_P(GpuGram, MatchesFloat64) {
    SKIP_WITHOUT_GPU();
    const auto [backend, n, size] = GetParam();
    torch::manual_seed(3);
    std::vector<at::Tensor> cpu, gpu;
    std::vector<const at::Tensor *> ptrs;
    std::vector<double> losses;
    for (int k = 0; k < n; k++) {
        cpu.push_back(torch::randn({size}) * double(k + 1));
        losses.push_back(0.3 + 0.7 * k);
    }
    for (const at::Tensor &t : cpu) gpu.push_back(t.to(kGpu));
    for (const at::Tensor &t : gpu) ptrs.push_back(&t);
    const dtokd::GramMatrix g = dtokd::log_gram(ptrs, losses, 1e-8, backend);
    for (int k = 0; k < n; k++)
        for (int l = 0; l < n; l++) {
            const at::Tensor a = cpu[size_t(k)].to(at::kDouble), b = cpu[size_t(l)].to(at::kDouble);
            const double ref = a.dot(b).item<double>() / (losses[size_t(k)] * losses[size_t(l)]);
            const double scale = std::sqrt(a.dot(a).item<double>() * b.dot(b).item<double>()) /
                                 (losses[size_t(k)] * losses[size_t(l)]);
            EXPECT_NEAR(g(k, l), ref, 1e-5 * scale + 1e-12) << name_of(backend) << " (" << k << ", " << l << ")";
        }
}
INSTANTIATE_TEST_SUITE_P(BackendCountSize, GpuGram,
                         ::testing::Combine(::testing::Values(KernelBackend::halide, KernelBackend::torch),
                                            ::testing::Values(1, 2, 3, 8),
                                            ::testing::Values(int64_t(1), int64_t(17), int64_t(4099),
                                                              int64_t(1) << 20)));

class GpuKernels : public ::testing::TestWithParam<KernelBackend> {};

TEST_P(GpuKernels, KdLossMatchesTheCpu) {
    SKIP_WITHOUT_GPU();
    const KernelBackend backend = GetParam();
    torch::manual_seed(4);
    const at::Tensor s = torch::randn({64, 100}) * 3, t = torch::randn({64, 100}) * 3;
    const at::Tensor y = torch::randint(0, 100, {64}, torch::kLong);
    at::Tensor gt = torch::empty_like(s), gd = torch::empty_like(s);
    at::Tensor gt_gpu = gt.to(kGpu), gd_gpu = gd.to(kGpu);
    const dtokd::KdLossOptions o{4.0, 0.1};
    const dtokd::KdLosses cpu = dtokd::kd_loss(s, t, y, o, gt, gd, KernelBackend::torch);
    const dtokd::KdLosses gpu = dtokd::kd_loss(s.to(kGpu), t.to(kGpu), y.to(kGpu), o, gt_gpu, gd_gpu, backend);
    EXPECT_NEAR(gpu.task, cpu.task, 1e-5 * std::abs(cpu.task));
    EXPECT_NEAR(gpu.distill, cpu.distill, 1e-5 * std::abs(cpu.distill));
    EXPECT_LT((gt_gpu.cpu() - gt).abs().max().item<double>(), 1e-6);
    EXPECT_LT((gd_gpu.cpu() - gd).abs().max().item<double>(), 1e-6);
}

TEST_P(GpuKernels, UpdatesMatchTheCpu) {
    SKIP_WITHOUT_GPU();
    const KernelBackend backend = GetParam();
    torch::manual_seed(5);
    for (int n : {1, 2, 3, 8}) {
        const int64_t size = 4099;
        std::vector<at::Tensor> g, g_gpu;
        for (int k = 0; k < n; k++) g.push_back(torch::randn({size}));
        for (const at::Tensor &t : g) g_gpu.push_back(t.to(kGpu));
        std::vector<double> pi(size_t(n), 1.0 / n), losses(size_t(n), 0.8);
        std::vector<const at::Tensor *> p, p_gpu;
        for (int k = 0; k < n; k++) {
            p.push_back(&g[size_t(k)]);
            p_gpu.push_back(&g_gpu[size_t(k)]);
        }
        const dtokd::Direction d = dtokd::dto_direction(p, pi, losses, 1e-8);
        const dtokd::Direction d_gpu = dtokd::dto_direction(p_gpu, pi, losses, 1e-8);
        at::Tensor theta = torch::randn({size}), buf = torch::randn({size});
        at::Tensor theta_gpu = theta.to(kGpu), buf_gpu = buf.to(kGpu);
        dtokd::SgdOptions sgd;
        sgd.weight_decay = 5e-4;
        dtokd::sgd_update(theta, buf, d, sgd, false, KernelBackend::torch);
        dtokd::sgd_update(theta_gpu, buf_gpu, d_gpu, sgd, false, backend);
        EXPECT_LT((theta_gpu.cpu() - theta).abs().max().item<double>(), 1e-5) << "sgd N=" << n;
        EXPECT_LT((buf_gpu.cpu() - buf).abs().max().item<double>(), 1e-5) << "sgd N=" << n;
        at::Tensor m = torch::randn({size}) * 0.1, v = torch::rand({size}) * 0.01;
        at::Tensor m_gpu = m.to(kGpu), v_gpu = v.to(kGpu);
        dtokd::adamw_update(theta, m, v, d, dtokd::AdamWOptions{}, 7, KernelBackend::torch);
        dtokd::adamw_update(theta_gpu, m_gpu, v_gpu, d_gpu, dtokd::AdamWOptions{}, 7, backend);
        EXPECT_LT((theta_gpu.cpu() - theta).abs().max().item<double>(), 1e-5) << "adamw N=" << n;
        EXPECT_LT((v_gpu.cpu() - v).abs().max().item<double>(), 1e-6) << "adamw N=" << n;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, GpuKernels, ::testing::Values(KernelBackend::halide, KernelBackend::torch),
                         [](const auto &info) { return std::string(name_of(info.param)); });

// A Halide launch is queued on LibTorch's current stream and returns without waiting:
// behind a long sleep kernel the stream is still busy when the update returns, and the
// result (after a synchronize) is right, so it ran after the sleep, on that stream.
TEST(GpuHalideBridge, LaunchesOnTheCurrentStreamWithoutWaiting) {
    SKIP_WITHOUT_GPU();
    if (!dtokd::halide_cuda_kernels_linked()) GTEST_SKIP() << "no Halide CUDA kernels in this build";
    torch::manual_seed(6);
    const int64_t size = 1 << 20;
    const at::Tensor g = torch::randn({size}), theta0 = torch::randn({size});
    at::Tensor theta = theta0.clone(), buf = torch::zeros({size});
    dtokd::SgdOptions sgd;
    sgd.momentum = 0;
    dtokd::sgd_update(theta, buf, dtokd::single_direction(g), sgd, true, KernelBackend::torch);
    const at::Tensor g_gpu = g.to(kGpu), theta0_gpu = theta0.to(kGpu);
    at::Tensor theta_gpu = at::empty({size}, at::TensorOptions(kGpu)), buf_gpu = torch::zeros({size}, kGpu);
    torch::cuda::synchronize();  // the default stream's fills are done before another stream reads them
    c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
    {
        const c10::cuda::CUDAStreamGuard on(stream);
        dtokd::sgd_update(theta_gpu, buf_gpu, dtokd::single_direction(g_gpu), sgd, true,
                          KernelBackend::halide);  // warm-up: PTX JIT and the module load
        stream.synchronize();
        at::cuda::sleep(int64_t(2e9));  // about a second of spinning on `stream`
        theta_gpu.copy_(theta0_gpu);  // device to device: queued behind the sleep
        dtokd::sgd_update(theta_gpu, buf_gpu, dtokd::single_direction(g_gpu), sgd, true, KernelBackend::halide);
        EXPECT_FALSE(stream.query()) << "the Halide call waited for the stream";
    }
    stream.synchronize();
    EXPECT_LT((theta_gpu.cpu() - theta).abs().max().item<double>(), 1e-6);
}

// ---- one step of every policy: GPU vs CPU ------------------------------------------------

class GpuStep : public ::testing::TestWithParam<std::tuple<std::string, KernelBackend>> {};

std::unique_ptr<dtokd::StepEngine> make_engine(const std::string &method, KernelBackend backend,
                                               const at::Device &device, const at::Tensor &probe) {
    torch::manual_seed(11);  // the same student and teacher on both devices (built on the CPU)
    dtokd::ModelHandle student = dtokd::build_model("resnet8", 3, 32, 32, 10);
    dtokd::ModelHandle teacher = dtokd::build_model("resnet14", 3, 32, 32, 10);
    dtokd::PolicyConfig pc;
    pc.method = method;
    dtokd::StepEngineOptions o;
    o.optimizer.sgd.lr = 0.05;
    o.backend = backend;
    o.device = device;
    const std::vector<std::string> objectives =
        method == "ce" ? std::vector<std::string>{"ce"} : std::vector<std::string>{"kd", "ce"};
    auto e = std::make_unique<dtokd::StepEngine>(std::move(student), std::move(teacher),
                                                 dtokd::make_objective_list(objectives), dtokd::make_policy(pc), probe,
                                                 dtokd::PrepareContext{}, o);
    e->set_train(true);
    return e;
}

TEST_P(GpuStep, MatchesTheSameStepOnTheCpu) {
    SKIP_WITHOUT_GPU();
    const auto [method, backend] = GetParam();
    torch::manual_seed(12);
    const at::Tensor images = torch::randn({32, 3, 32, 32}), labels = torch::randint(0, 10, {32}, torch::kLong);
    auto cpu = make_engine(method, backend, at::kCPU, images);
    auto gpu = make_engine(method, backend, kGpu, images);
    ASSERT_TRUE(torch::equal(cpu->arena().params(), gpu->arena().params().cpu())) << "the same initial student";
    for (int64_t step = 0; step < 2; step++) {
        const dtokd::StepStats a = cpu->step(images, cpu->teacher_outputs(images, {}), {labels}, step);
        const at::Tensor gi = images.to(kGpu), gl = labels.to(kGpu);
        const dtokd::StepStats b = gpu->step(gi, gpu->teacher_outputs(gi, {}), {gl}, step);
        ASSERT_FALSE(a.skipped || b.skipped) << a.skip_reason << b.skip_reason;
        for (int k = 0; k < a.objectives; k++) {
            EXPECT_NEAR(b.pi[size_t(k)], a.pi[size_t(k)], 1e-4) << method << " step " << step << " pi " << k;
            EXPECT_NEAR(b.loss[size_t(k)], a.loss[size_t(k)], 1e-4 * std::abs(a.loss[size_t(k)]))
                << method << " step " << step << " loss " << k;
        }
        const at::Tensor pa = cpu->arena().params(), pb = gpu->arena().params().cpu();
        EXPECT_LT((pa - pb).abs().max().item<double>(), 1e-4 * pa.abs().max().item<double>())
            << method << " step " << step;
    }
}

// "No extra synchronization per step": with LibTorch's sync debug mode at L_ERROR, any wait
// for the device throws, except the reads of results (host_readback.h) the policy needs.
TEST_P(GpuStep, WaitsForTheDeviceOnlyToReadResults) {
    SKIP_WITHOUT_GPU();
    const auto [method, backend] = GetParam();
    torch::manual_seed(13);
    const at::Tensor images = torch::randn({32, 3, 32, 32}).to(kGpu);
    const at::Tensor labels = torch::randint(0, 10, {32}, torch::kLong).to(kGpu);
    auto gpu = make_engine(method, backend, kGpu, images.cpu());
    const dtokd::NetOutputs teacher = gpu->teacher_outputs(images, {});
    for (int64_t step = 0; step < 2; step++) gpu->step(images, teacher, {labels}, step);  // JIT, allocator
    torch::cuda::synchronize();
    struct ErrorOnSync {
        ErrorOnSync() { c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR); }
        ~ErrorOnSync() { c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED); }
    };
    dtokd::StepStats s;
    {
        const ErrorOnSync strict;
        EXPECT_NO_THROW(s = gpu->step(images, teacher, {labels}, 2)) << method << ": a step waited for the device";
    }
    EXPECT_FALSE(s.skipped) << s.skip_reason;
}

INSTANTIATE_TEST_SUITE_P(
    Policies, GpuStep,
    ::testing::Combine(::testing::Values("ce", "kd", "dto", "dto-amortized", "dto-logit"),
                       ::testing::Values(KernelBackend::halide, KernelBackend::torch)),
    [](const auto &info) {
        std::string name = std::get<0>(info.param) + "_" + name_of(std::get<1>(info.param));
        for (char &c : name)
            if (c == '-') c = '_';
        return name;
    });

// ---- the CLI end to end --------------------------------------------------------------------

// Train a teacher and distill a student on the GPU, resume the student on the CPU for a
// second epoch, and evaluate the GPU-written teacher on the CPU.
TEST(GpuCli, DistillOnTheGpuResumesOnTheCpu) {
    SKIP_WITHOUT_GPU();
    ScratchDir root("gpucli");
    fs::create_directories(root / "data");
    write_idx_dataset(root / "data", random_idx_split(512, 28, 28, 10, 1), random_idx_split(128, 28, 28, 10, 2), 28,
                      28, /*gz=*/true);
    const std::string data = "--dataset mnist --data " + quoted(root / "data") + " --batch-size 64 --no-progress";
    const std::string kernels = dtokd::halide_cuda_kernels_linked() ? "halide" : "torch";
    const CliResult teacher = run_cli("--device cuda --kernels " + kernels + " train " + data +
                                      " --model cnn_small --epochs 1 --out " + quoted(root / "t"));
    ASSERT_EQ(teacher.code, 0) << teacher.output;
    EXPECT_EQ(dtokd::read_checkpoint_meta(root / "t/checkpoint.pt").device, "cuda:0");
    const CliResult student = run_cli("--device cuda --kernels " + kernels + " distill " + data +
                                      " --model cnn_small --method dto --epochs 1 --teacher " +
                                      quoted(root / "t/checkpoint.pt") + " --out " + quoted(root / "s"));
    ASSERT_EQ(student.code, 0) << student.output;
    EXPECT_TRUE(student.output.find("\"device\":\"cuda:0\"") != std::string::npos) << student.output;
    const CliResult resumed =
        run_cli("--device cpu --kernels " + kernels + " distill --resume " + quoted(root / "s") + " --epochs 2");
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_TRUE(resumed.output.find("\"resumed_from_device\":\"cuda:0\"") != std::string::npos) << resumed.output;
    const CliResult eval = run_cli("--device cpu eval " + quoted(root / "t/checkpoint.pt") + " --dataset mnist --data " +
                                   quoted(root / "data"));
    EXPECT_EQ(eval.code, 0) << eval.output;
}

}  // namespace
