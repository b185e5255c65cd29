// See objective_batch.h.
#include "objective_batch.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>

#include <limits>
#include <list>
#include <stdexcept>

#include "frozen_buffers.h"
#include "host_readback.h"

namespace dtokd {

void ObjectiveValue::set_loss(const at::Tensor &scalar) {
    if (scalar.is_cpu()) {
        loss = scalar.item<double>();
        return;
    }
    loss = std::numeric_limits<double>::quiet_NaN();
    pending_loss = scalar.detach().reshape({}).to(at::kDouble);
}

ObjectiveValue ObjectiveValue::of_loss_tensor(at::Tensor loss) {
    ObjectiveValue v;
    v.set_loss(loss);
    v.loss_tensor = std::move(loss);
    return v;
}

void read_pending_losses(std::vector<ObjectiveValue> &values) {
    std::vector<at::Tensor> pending;
    for (const ObjectiveValue &v : values)
        if (v.pending_loss.defined()) pending.push_back(v.pending_loss);
    if (pending.empty()) return;
    const std::vector<double> host = read_to_host(at::stack(pending));
    size_t i = 0;
    for (ObjectiveValue &v : values)
        if (v.pending_loss.defined()) {
            v.loss = host[i++];
            v.pending_loss = at::Tensor();
        }
}

ObjectiveBatch::ObjectiveBatch(ObjectiveList &objectives, std::function<NetOutputs()> forward,
                               torch::nn::Module &module, NetOutputs teacher, BatchTargets targets, KdLossOptions options,
                               KernelBackend backend)
    : objectives_(objectives),
      forward_(std::move(forward)),
      module_(module),
      teacher_(std::move(teacher)),
      targets_(std::move(targets)),
      options_(options),
      backend_(backend) {
    student_ = forward_();
    if (student_.logits.dim() != 2 || student_.logits.sizes() != teacher_.logits.sizes())
        throw std::invalid_argument("student logits are " + std::string(c10::str(student_.logits.sizes())) +
                                    " but teacher logits are " + std::string(c10::str(teacher_.logits.sizes())) +
                                    "; expected the same [batch, classes]");
    values_ = evaluate(student_, /*update_state=*/true);
}

std::vector<ObjectiveValue> ObjectiveBatch::evaluate(const NetOutputs &student, bool update_state) {
    std::optional<LogitKdResults> kd;
    ObjectiveInputs in{student, teacher_, targets_.labels, targets_.indices, [&]() -> const LogitKdResults & {
                           if (!kd) {
                               const at::Tensor z = student.logits.detach().contiguous();
                               LogitKdResults r;
                               r.grad_task = at::empty_like(z);
                               r.grad_distill = at::empty_like(z);
                               r.losses = kd_loss(z, teacher_.logits, targets_.labels, options_, r.grad_task,
                                                  r.grad_distill, backend_);
                               kd = std::move(r);
                           }
                           return *kd;
                       },
                       targets_.contrast_indices, targets_.epoch, update_state};
    std::vector<ObjectiveValue> values;
    for (int k = 0; k < objectives_.size(); k++) values.push_back(objectives_.at(k).evaluate(in));
    read_pending_losses(values);
    return values;
}

std::string ObjectiveBatch::name(int k) const { return objectives_.names().at(size_t(k)); }

void ObjectiveBatch::backward(const std::vector<double> &weights, bool retain_graph) {
    if (int(weights.size()) != size())
        throw std::invalid_argument("backward: " + std::to_string(weights.size()) + " weights for " +
                                    std::to_string(size()) + " objectives");
    // Logit-level objectives meet in one seed at the logits (w_0 g_0 + w_1 g_1 ...,
    // the same float operations as the two-objective pair had); autograd objectives
    // join the same backward call with their loss tensors.
    at::Tensor seed;
    std::vector<at::Tensor> outputs, seeds;
    for (int k = 0; k < size(); k++) {
        const double w = weights[size_t(k)];
        if (w == 0) continue;
        const ObjectiveValue &v = values_[size_t(k)];
        if (v.logit_grad.defined()) {
            if (!seed.defined())
                seed = v.logit_grad * w;
            else
                seed.add_(v.logit_grad, w);
        } else {
            outputs.push_back(v.loss_tensor);
            seeds.push_back(at::full_like(v.loss_tensor, w));
        }
    }
    if (seed.defined()) {
        outputs.insert(outputs.begin(), student_.logits);
        seeds.insert(seeds.begin(), seed);
    }
    if (!outputs.empty()) torch::autograd::backward(outputs, seeds, retain_graph);
}

at::Tensor ObjectiveBatch::output_grad(int k) const {
    return objectives_.at(k).logits_only() ? values_.at(size_t(k)).logit_grad : at::Tensor();
}

std::vector<double> ObjectiveBatch::reevaluate() {
    std::list<FrozenBuffers> keep_stats;  // FrozenBuffers is neither copyable nor movable
    keep_stats.emplace_back(module_);
    for (torch::nn::Module *m : objectives_.modules())
        if (m != nullptr) keep_stats.emplace_back(*m);
    at::NoGradGuard no_grad;
    const NetOutputs student = forward_();
    std::vector<double> losses;
    for (const ObjectiveValue &v : evaluate(student, /*update_state=*/false)) losses.push_back(v.loss);
    return losses;
}

}  // namespace dtokd
