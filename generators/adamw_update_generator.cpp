// Fused AdamW step with PyTorch semantics (torch.optim.AdamW, no amsgrad), one in-place pass:
//   g     = sum_k coeffs[k] grads[k]               (combined DTO direction, see combined_gradient.h)
//   theta = theta * decay                           (decay = 1 - lr * weight_decay)
//   m     = beta1 m + (1 - beta1) g
//   v     = beta2 v + (1 - beta2) g^2
//   theta = theta - step_size * m / (sqrt(v) / sqrt_bias2 + eps)
// The runtime passes step_size = lr / (1 - beta1^t) and sqrt_bias2 = sqrt(1 - beta2^t),
// computed in double as LibTorch does. Outputs: new (theta, m, v), same memory as inputs.
#include "Halide.h"
#include "combined_gradient.h"

namespace {

using namespace Halide;

class AdamwUpdate : public Generator<AdamwUpdate> {
public:
    GeneratorParam<int> vector_width{"vector_width", 16, 4, 64};
    GeneratorParam<int> chunk{"chunk", 16384, 1024, 1 << 24};  // small: the last chunk runs in full, masked
    GeneratorParam<int> gpu_block{"gpu_block", 256, 32, 1024};

    Input<Buffer<float, 1>[]> grads{"grads"};
    Input<float[]> coeffs{"coeffs"};
    Input<Buffer<float, 1>> theta{"theta"};
    Input<Buffer<float, 1>> exp_avg{"exp_avg"};
    Input<Buffer<float, 1>> exp_avg_sq{"exp_avg_sq"};
    Input<float> decay{"decay"};
    Input<float> beta1{"beta1"};
    Input<float> beta2{"beta2"};
    Input<float> eps{"eps"};
    Input<float> step_size{"step_size"};
    Input<float> sqrt_bias2{"sqrt_bias2"};
    Output<Buffer<>> updated{"updated", {Float(32), Float(32), Float(32)}, 1};  // (theta, m, v)

    void generate() {
        Expr g = dtokd_gen::combined_gradient(grads, coeffs, x);
        Expr p = theta(x) * decay;
        Expr m = beta1 * exp_avg(x) + (1.f - beta1) * g;
        Expr v = beta2 * exp_avg_sq(x) + (1.f - beta2) * g * g;
        Expr denom = sqrt(v) / sqrt_bias2 + eps;
        updated(x) = Tuple(p - step_size * (m / denom), m, v);

        dtokd_gen::set_gradient_estimates(grads, coeffs);
        theta.set_estimates({{0, 1 << 22}});
        exp_avg.set_estimates({{0, 1 << 22}});
        exp_avg_sq.set_estimates({{0, 1 << 22}});
        decay.set_estimate(1.f);
        beta1.set_estimate(0.9f);
        beta2.set_estimate(0.999f);
        eps.set_estimate(1e-8f);
        step_size.set_estimate(1e-3f);
        sqrt_bias2.set_estimate(1.f);
        updated.set_estimates({{0, 1 << 22}});

        if (auto_schedule) return;
        // CPU: 16K-element chunks in parallel, 16-wide vectors; measured on 2-core AVX-512 (bench/README.md).
        dtokd_gen::schedule_elementwise(updated, x, get_target().has_gpu_feature(), vector_width, chunk,
                                        gpu_block);
    }

private:
    Var x{"x"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(AdamwUpdate, adamw_update)
