// Logit-level KD losses and their gradients w.r.t. the student logits, one pass:
//   L_task    = mean_i [(1-s) CE(z_s[i], y[i]) + s * mean_c(-log softmax(z_s[i]))]
//   L_distill = T^2 mean_i KL(softmax(z_t[i]/T) || softmax(z_s[i]/T))
//   dL_task/dz_s    = (softmax(z_s) - ((1-s) onehot(y) + s/C)) / B
//   dL_distill/dz_s = T (softmax(z_s/T) - softmax(z_t/T)) / B
// Logits are laid out [B, C] row-major (dim 0 = class). Everything is written as
// differences from the row maximum (log-sum-exp), so |z| up to 1e4 stays finite.
// Labels must be in [0, C): the runtime checks them before calling.
#include "Halide.h"

namespace {

using namespace Halide;

class KdLoss : public Generator<KdLoss> {
public:
    GeneratorParam<int> vector_width{"vector_width", 16, 1, 64};  // classes per vector
    GeneratorParam<int> rows_per_task{"rows_per_task", 16, 1, 4096};
    GeneratorParam<int> gpu_block{"gpu_block", 128, 32, 1024};

    Input<Buffer<float, 2>> student{"student"};
    Input<Buffer<float, 2>> teacher{"teacher"};
    Input<Buffer<int32_t, 1>> labels{"labels"};
    Input<float> temperature{"temperature"};
    Input<float> label_smoothing{"label_smoothing"};
    Output<Buffer<double, 1>> losses{"losses"};  // [L_task, L_distill]
    Output<Buffer<float, 2>> grad_task{"grad_task"};
    Output<Buffer<float, 2>> grad_distill{"grad_distill"};

    void generate() {
        Expr num_classes = student.dim(0).extent();
        Expr batch = student.dim(1).extent();
        Expr inv_t = 1.f / temperature;
        Expr s = label_smoothing;
        RDom rc(0, num_classes, "rc");

        // Row statistics (student at T=1 and T, teacher at T).
        max_s(i) = maximum(student(rc, i));
        max_t(i) = maximum(teacher(rc, i));
        sum_s(i) = sum(exp(student(rc, i) - max_s(i)));
        sum_st(i) = sum(exp((student(rc, i) - max_s(i)) * inv_t));
        sum_tt(i) = sum(exp((teacher(rc, i) - max_t(i)) * inv_t));

        // Finite log-probabilities: a probability may underflow to 0, its log never to -inf.
        Expr log_q = (student(c, i) - max_s(i)) * inv_t - log(sum_st(i));   // student at T
        Expr log_p = (teacher(c, i) - max_t(i)) * inv_t - log(sum_tt(i));   // teacher at T
        // Softmax at T=1 as exp(z - max) / sum, not exp(z - max - log(sum)): Halide reassociates
        // that to z - (max + log(sum)) (see the STMT; strict_float on z - max did not stop it),
        // rounded at the logits' magnitude: 2e-4 relative error in p at |z| = 1e4
        // (tests/test_kd_loss.cpp, LargeLogits).
        Expr soft = exp(student(c, i) - max_s(i)) / sum_s(i);  // student at 1
        kl_term(c, i) = exp(log_p) * (log_p - log_q);

        Expr y = clamp(labels(i), 0, num_classes - 1);
        Expr nll_y = -(student(y, i) - max_s(i) - log(sum_s(i)));
        Expr mean_nll = -sum(student(rc, i) - max_s(i) - log(sum_s(i))) / cast<float>(num_classes);
        row_task(i) = (1.f - s) * nll_y + s * mean_nll;
        row_kl(i) = sum(kl_term(rc, i));

        RDom rb(0, batch, "rb");
        losses(k) = mux(k, {sum(cast<double>(row_task(rb))),
                            cast<double>(temperature * temperature) * sum(cast<double>(row_kl(rb)))}) /
                    cast<double>(batch);

        Expr inv_b = 1.f / cast<float>(batch);
        Expr target = select(c == labels(i), 1.f - s, 0.f) + s / cast<float>(num_classes);
        grad_task(c, i) = (soft - target) * inv_b;
        grad_distill(c, i) = temperature * (exp(log_q) - exp(log_p)) * inv_b;

        student.set_estimates({{0, 100}, {0, 128}});
        teacher.set_estimates({{0, 100}, {0, 128}});
        labels.set_estimates({{0, 128}});
        temperature.set_estimate(4.f);
        label_smoothing.set_estimate(0.f);
        losses.set_estimates({{0, 2}});
        grad_task.set_estimates({{0, 100}, {0, 128}});
        grad_distill.set_estimates({{0, 100}, {0, 128}});
        losses.bound(k, 0, 2);

        if (auto_schedule) return;
        std::vector<Func> row_stats = {max_s, max_t, sum_s, sum_st, sum_tt};
        if (get_target().has_gpu_feature()) {
            // One block per row-tile, one thread per row for the row statistics. Untimed here.
            Var io, ii;
            for (Func f : row_stats) f.compute_root().gpu_tile(i, io, ii, gpu_block, TailStrategy::GuardWithIf);
            row_task.compute_root().gpu_tile(i, io, ii, gpu_block, TailStrategy::GuardWithIf);
            row_kl.compute_root().gpu_tile(i, io, ii, gpu_block, TailStrategy::GuardWithIf);
            Var co, ci;
            grad_task.gpu_tile(c, i, co, io, ci, ii, 32, 8, TailStrategy::GuardWithIf);
            grad_distill.gpu_tile(c, i, co, io, ci, ii, 32, 8, TailStrategy::GuardWithIf);
            losses.gpu_single_thread();
        } else {
            // Row tiles in parallel; row statistics per tile, gradients vectorized over classes.
            // Measured at B=128, C=10/100 on 2-core AVX-512: a few microseconds (bench/README.md).
            Var io, ii;
            // GuardWithIf: the default (ShiftInwards) shifts the last tile to start at
            // batch - rows_per_task, i.e. reads rows < 0 when batch < rows_per_task.
            for (Func f : row_stats) f.compute_root().parallel(i, rows_per_task, TailStrategy::GuardWithIf);
            row_task.compute_root().parallel(i, rows_per_task, TailStrategy::GuardWithIf);
            row_kl.compute_root().parallel(i, rows_per_task, TailStrategy::GuardWithIf);
            kl_term.compute_at(row_kl, i).vectorize(c, vector_width, TailStrategy::GuardWithIf);
            grad_task.split(i, io, ii, rows_per_task, TailStrategy::GuardWithIf).parallel(io)
                .vectorize(c, vector_width, TailStrategy::GuardWithIf);
            grad_distill.split(i, io, ii, rows_per_task, TailStrategy::GuardWithIf).parallel(io)
                .vectorize(c, vector_width, TailStrategy::GuardWithIf);
        }
    }

private:
    Var c{"c"}, i{"i"}, k{"k"};
    Func max_s{"max_s"}, max_t{"max_t"}, sum_s{"sum_s"}, sum_st{"sum_st"}, sum_tt{"sum_tt"};
    Func kl_term{"kl_term"}, row_task{"row_task"}, row_kl{"row_kl"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(KdLoss, kd_loss)
