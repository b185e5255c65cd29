// Fused SGD step with PyTorch semantics (torch.optim.SGD), one in-place pass:
//   g   = sum_k coeffs[k] grads[k]                 (combined DTO direction, see combined_gradient.h)
//   d   = g + weight_decay * theta
//   buf = first_step ? d : momentum * buf + (1 - dampening) * d
//   d   = nesterov ? d + momentum * buf : buf       (d itself when momentum == 0)
//   theta -= lr * d
// Outputs: new theta and new momentum buffer (pass the same memory as the inputs).
#include "Halide.h"
#include "combined_gradient.h"

namespace {

using namespace Halide;

class SgdUpdate : public Generator<SgdUpdate> {
public:
    GeneratorParam<int> vector_width{"vector_width", 16, 4, 64};
    GeneratorParam<int> chunk{"chunk", 16384, 1024, 1 << 24};  // small: the last chunk runs in full, masked
    GeneratorParam<int> gpu_block{"gpu_block", 256, 32, 1024};

    Input<Buffer<float, 1>[]> grads{"grads"};
    Input<float[]> coeffs{"coeffs"};
    Input<Buffer<float, 1>> theta{"theta"};
    Input<Buffer<float, 1>> momentum_buffer{"momentum_buffer"};
    Input<float> lr{"lr"};
    Input<float> weight_decay{"weight_decay"};
    Input<float> momentum{"momentum"};
    Input<float> dampening{"dampening"};
    Input<bool> nesterov{"nesterov"};
    Input<bool> first_step{"first_step"};
    Output<Buffer<>> updated{"updated", {Float(32), Float(32)}, 1};  // (theta, momentum_buffer)

    void generate() {
        Expr g = dtokd_gen::combined_gradient(grads, coeffs, x);
        Expr d = g + weight_decay * theta(x);
        Expr buf = select(first_step, d, momentum * momentum_buffer(x) + (1.f - dampening) * d);
        Expr step = select(momentum == 0.f, d, select(nesterov, d + momentum * buf, buf));
        updated(x) = Tuple(theta(x) - lr * step, buf);

        dtokd_gen::set_gradient_estimates(grads, coeffs);
        theta.set_estimates({{0, 1 << 22}});
        momentum_buffer.set_estimates({{0, 1 << 22}});
        lr.set_estimate(0.05f);
        weight_decay.set_estimate(5e-4f);
        momentum.set_estimate(0.9f);
        dampening.set_estimate(0.f);
        nesterov.set_estimate(false);
        first_step.set_estimate(false);
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

HALIDE_REGISTER_GENERATOR(SgdUpdate, sgd_update)
