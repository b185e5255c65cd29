// The PyTorch reference harness (torch_reference.h): float64 tensors go to Python and
// back bit for bit, and a loss and its gradient computed there match LibTorch's.
#include <torch/torch.h>
#include <gtest/gtest.h>

#include "torch_reference.h"

using namespace dtokd_test;

TEST(TorchReference, RoundTripAndGradient) {
    if (!torch_reference_unavailable().empty()) GTEST_SKIP() << torch_reference_unavailable();
    torch::manual_seed(0);
    const torch::Tensor x = torch::randn({5, 7}, torch::kDouble).requires_grad_(true);
    const torch::Tensor w = torch::randn({5, 7}, torch::kDouble);
    const torch::Tensor loss = (torch::softmax(x, 1) * w).sum();
    loss.backward();
    const TensorDict ref = run_torch_reference("self_check_reference.py", "softmax_sum", {{"x", x}, {"w", w}});
    EXPECT_LE(relative_error(loss, ref.at("loss")), 1e-14);
    EXPECT_LE(relative_error(x.grad(), ref.at("grad_x")), 1e-14);
    // The measure can fail: a perturbed gradient is far off.
    EXPECT_GT(relative_error(x.grad() * 1.001, ref.at("grad_x")), 1e-4);
    EXPECT_THROW(run_torch_reference("self_check_reference.py", "no_such_function", {{"x", x}}), std::runtime_error);
}
