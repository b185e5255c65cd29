// See step_engine.h.
#include "step_engine.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <stdexcept>

#include "collective.h"
#include "device.h"
#include "flat_arena.h"
#include "tensor_doubles.h"
#include "net_taps.h"

namespace dtokd {

StepEngine::StepEngine(ModelHandle student, ModelHandle teacher, std::unique_ptr<ObjectiveList> objectives,
                       std::unique_ptr<TradeoffPolicy> policy, const at::Tensor &probe_images,
                       const PrepareContext &context, StepEngineOptions options)
    : student_(std::move(student)),
      teacher_(std::move(teacher)),
      objectives_(std::move(objectives)),
      policy_(std::move(policy)),
      options_(std::move(options)),
      student_taps_(objectives_->student_taps()),
      teacher_taps_(objectives_->teacher_taps()),
      // BatchNorm on batch statistics in the teacher, where an objective's reference does so (OFD).
      teacher_train_mode_(!objectives_->teacher_train_mode().empty()) {
    for (int k = 0; k < objectives_->size(); k++)
        if (objectives_->at(k).needs_teacher() && !has_teacher())
            throw std::invalid_argument("objective '" + objectives_->at(k).name() + "' reads a teacher; none was given");
    if (has_teacher() && teacher_taps_.any()) {
        int reader = 0;  // the first objective that reads teacher features, for the message
        while (!objectives_->at(reader).teacher_taps().any() && reader + 1 < objectives_->size()) reader++;
        try {
            check_gives_features(teacher_, to_feature_request(teacher_taps_));
        } catch (const std::runtime_error &e) {
            throw std::invalid_argument(context.teacher_name + ": objective '" + objectives_->at(reader).name() +
                                        "' reads teacher features: " + e.what());
        }
    }
    const at::Device &device = options_.device;
    check_backend_on_device(options_.backend, device);
    check_device_for_ranks(device, options_.collective ? options_.collective->world_size() : 1);
    // Before the arena and the optimizer, which allocate beside the parameters.
    move_to(student_, device);
    if (has_teacher()) move_to(teacher_, device);
    {
        // The probe: modules sized from real feature shapes (and built on the device of the
        // features); a tap a network lacks fails here.
        at::NoGradGuard no_grad;
        const at::Tensor probe = probe_images.to(device);
        student_.set_train(false);
        NetOutputs s_out = forward_taps(student_, probe, student_taps_), t_out;
        PrepareContext ctx = context;
        if (has_teacher()) {
            teacher_.set_train(false);
            t_out = forward_taps(teacher_, probe, teacher_taps_);
            if (teacher_.preact_bn_affine && ctx.teacher_preact_bn.empty())
                ctx.teacher_preact_bn = teacher_.preact_bn_affine();
        }
        objectives_->prepare(s_out, t_out, ctx, options_.optimizer);
        student_.set_train(true);
    }
    arena_ = std::make_unique<FlatArena>(
        *student_.module, std::max(options_.min_gradient_arenas, policy_->gradient_arenas(objectives_->size())));
    optimizer_ = std::make_unique<FusedOptimizer>(arena_->params(), options_.optimizer, options_.backend);
    broadcast_from_rank0(/*parameters=*/true);
}

void StepEngine::broadcast_from_rank0(bool parameters) {
    if (!distributed(options_.collective)) return;
    std::vector<at::Tensor> tensors;
    if (parameters) tensors.push_back(arena_->params());
    for (const auto &b : student_.module->named_buffers(true)) tensors.push_back(b.value());
    for (torch::nn::Module *m : objectives_->modules()) {
        if (m == nullptr) continue;
        if (parameters)
            for (const auto &p : m->parameters(true)) tensors.push_back(p);
        for (const auto &b : m->buffers(true)) tensors.push_back(b);
    }
    if (tensors.empty()) return;
    at::NoGradGuard no_grad;
    options_.collective->broadcast(tensors);
}

StepEngine::~StepEngine() = default;

void StepEngine::use_cached_teacher_logits(at::Tensor logits) {
    cached_teacher_logits_ = logits.to(options_.device);  // once; the batches' rows are gathered there
}

NetOutputs StepEngine::teacher_outputs(const at::Tensor &images, const at::Tensor &indices) {
    NetOutputs out;
    if (!objectives_->needs_teacher()) {
        out.logits = at::zeros({images.size(0), int64_t(student_.num_classes)}, images.options().dtype(at::kFloat));
        return out;
    }
    if (cached_teacher_logits_.defined() && !teacher_taps_.any()) {
        out.logits = cached_teacher_logits_.index_select(0, indices);
        return out;
    }
    at::NoGradGuard no_grad;
    teacher_.set_train(teacher_train_mode_);
    out = forward_taps(teacher_, images, teacher_taps_);
    out.logits = out.logits.to(at::kFloat).contiguous();
    return out;
}

ObjectiveBatch StepEngine::make_batch(const at::Tensor &images, NetOutputs teacher, const BatchTargets &targets) {
    ModelHandle &student = student_;
    const TapRequest taps = student_taps_;
    return ObjectiveBatch(
        *objectives_, [&student, images, taps] { return forward_taps(student, images, taps); }, *student_.module,
        std::move(teacher), targets, options_.kd, options_.backend);
}

StepStats StepEngine::step(const at::Tensor &images, NetOutputs teacher, const BatchTargets &targets, int64_t step) {
    broadcast_from_rank0(/*parameters=*/false);
    ObjectiveBatch batch = make_batch(images, std::move(teacher), targets);
    PolicyContext ctx{*arena_, *optimizer_, options_.backend, options_.collective};
    return policy_->step(batch, ctx, step);
}

void StepEngine::set_lr(double lr) {
    optimizer_->set_lr(lr);
    objectives_->set_lr(lr);
}

void StepEngine::set_train(bool train) {
    student_.set_train(train);
    objectives_->set_train(train);
}

NamedTensors StepEngine::state() const {
    NamedTensors out;
    const std::vector<at::Tensor> opt = optimizer_->state();
    for (size_t i = 0; i < opt.size(); i++) out.emplace_back("optimizer/" + std::to_string(i), opt[i]);
    out.emplace_back("optimizer_steps_taken", at::scalar_tensor(optimizer_->steps_taken(), at::kLong));
    for (auto &[key, t] : objectives_->named_state()) out.emplace_back("objective/" + key, t);
    out.emplace_back("objective_optimizer", objectives_->optimizer_state());
    out.emplace_back("policy", doubles_to_tensor(policy_->state()));
    return out;
}

void StepEngine::load_state(const NamedTensors &state) {
    std::vector<at::Tensor> opt;
    NamedTensors objective;
    const at::Tensor *steps = nullptr, *objective_optimizer = nullptr, *policy = nullptr;
    for (const auto &[key, t] : state) {
        if (key.rfind("optimizer/", 0) == 0) {
            const size_t i = std::stoul(key.substr(10));
            if (opt.size() <= i) opt.resize(i + 1);
            opt[i] = t;
        } else if (key.rfind("objective/", 0) == 0) {
            objective.emplace_back(key.substr(10), t);
        } else if (key == "optimizer_steps_taken") {
            steps = &t;
        } else if (key == "objective_optimizer") {
            objective_optimizer = &t;
        } else if (key == "policy") {
            policy = &t;
        }
    }
    if (steps == nullptr || objective_optimizer == nullptr || policy == nullptr)
        throw std::runtime_error("the step state is incomplete (optimizer steps, objective optimizer or policy missing)");
    for (size_t i = 0; i < opt.size(); i++)
        if (!opt[i].defined()) throw std::runtime_error("optimizer state tensor " + std::to_string(i) + " is missing");
    try {
        optimizer_->load_state(opt, steps->item<int64_t>());
    } catch (const std::invalid_argument &e) {
        throw std::runtime_error(e.what());
    }
    objectives_->load_named_state(objective);
    objectives_->load_optimizer_state(*objective_optimizer);
    policy_->load_state(tensor_to_doubles(*policy));
}

}  // namespace dtokd
