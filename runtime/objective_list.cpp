// See objective_list.h.
#include "objective_list.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace dtokd {

ObjectiveList::ObjectiveList(std::vector<std::unique_ptr<Objective>> objectives)
    : objectives_(std::move(objectives)) {
    if (objectives_.empty() || int(objectives_.size()) > kMaxObjectives)
        throw std::invalid_argument("a run has " + std::to_string(objectives_.size()) + " objectives; expected 1.." +
                                    std::to_string(kMaxObjectives));
    std::set<std::string> seen;
    for (const auto &o : objectives_)
        if (!seen.insert(o->name()).second)
            throw std::invalid_argument("objective '" + o->name() + "' is listed twice; expected each at most once");
}

ObjectiveList::~ObjectiveList() = default;

std::vector<std::string> ObjectiveList::names() const {
    std::vector<std::string> n;
    for (const auto &o : objectives_) n.push_back(o->name());
    return n;
}

TapRequest ObjectiveList::student_taps() const {
    TapRequest t;
    for (const auto &o : objectives_) t |= o->student_taps();
    return t;
}

TapRequest ObjectiveList::teacher_taps() const {
    TapRequest t;
    for (const auto &o : objectives_) t |= o->teacher_taps();
    return t;
}

bool ObjectiveList::needs_teacher() const {
    for (const auto &o : objectives_)
        if (o->needs_teacher()) return true;
    return false;
}

std::string ObjectiveList::first_not_logits_only() const {
    for (const auto &o : objectives_)
        if (!o->logits_only()) return o->name();
    return "";
}

std::string ObjectiveList::teacher_train_mode() const {
    for (const auto &o : objectives_)
        if (o->teacher_train_mode()) return o->name();
    return "";
}

int64_t ObjectiveList::contrast_negatives() const {
    int64_t k = 0;
    for (const auto &o : objectives_) k = std::max(k, o->contrast_negatives());
    return k;
}

void ObjectiveList::prepare(const NetOutputs &student, const NetOutputs &teacher, const PrepareContext &context,
                            const OptimizerConfig &cfg) {
    module_params_.clear();
    std::vector<at::Tensor> params;
    for (int k = 0; k < size(); k++) {
        objectives_[size_t(k)]->prepare(student, teacher, context);
        if (torch::nn::Module *m = objectives_[size_t(k)]->module())
            for (const at::Tensor &p : m->parameters()) {
                module_params_.emplace_back(k, p);
                params.push_back(p);
            }
    }
    optimizer_.reset();
    if (params.empty()) return;
    if (cfg.kind == "adamw") {
        const AdamWOptions &a = cfg.adamw;
        optimizer_ = std::make_unique<torch::optim::AdamW>(
            params, torch::optim::AdamWOptions(a.lr).betas({a.beta1, a.beta2}).eps(a.eps).weight_decay(a.weight_decay));
    } else {
        const SgdOptions &s = cfg.sgd;
        optimizer_ = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(s.lr)
                                                                     .momentum(s.momentum)
                                                                     .dampening(s.dampening)
                                                                     .weight_decay(s.weight_decay)
                                                                     .nesterov(s.nesterov));
    }
}

void ObjectiveList::set_train(bool train) {
    for (auto &o : objectives_)
        if (torch::nn::Module *m = o->module()) m->train(train);
}

void ObjectiveList::set_lr(double lr) {
    if (!optimizer_) return;
    for (auto &group : optimizer_->param_groups()) group.options().set_lr(lr);
}

void ObjectiveList::zero_module_grads() {
    for (auto &[k, p] : module_params_)
        if (p.grad().defined()) p.mutable_grad().zero_();
}

std::vector<at::Tensor> ObjectiveList::module_gradients() {
    std::vector<at::Tensor> out;
    for (auto &[k, p] : module_params_)
        if (p.grad().defined()) out.push_back(p.mutable_grad());
    return out;
}

void ObjectiveList::step_modules(const std::vector<double> &scale) {
    if (!optimizer_) return;
    torch::NoGradGuard no_grad;
    for (auto &[k, p] : module_params_)
        if (p.grad().defined() && scale.at(size_t(k)) != 1.0) p.mutable_grad().mul_(scale[size_t(k)]);
    optimizer_->step();
}

std::vector<torch::nn::Module *> ObjectiveList::modules() {
    std::vector<torch::nn::Module *> out;
    for (auto &o : objectives_) out.push_back(o->module());
    return out;
}

std::vector<std::pair<std::string, at::Tensor>> ObjectiveList::named_state() {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (auto &o : objectives_) {
        torch::nn::Module *m = o->module();
        if (m == nullptr) continue;
        for (const auto &p : m->named_parameters()) out.emplace_back(o->name() + "." + p.key(), p.value());
        for (const auto &b : m->named_buffers()) out.emplace_back(o->name() + "." + b.key(), b.value());
    }
    return out;
}

void ObjectiveList::load_named_state(const std::vector<std::pair<std::string, at::Tensor>> &state) {
    std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
    torch::NoGradGuard no_grad;
    for (auto &[name, dst] : named_state()) {
        const auto it = by_name.find(name);
        if (it == by_name.end())
            throw std::runtime_error("objective state '" + name + "' is missing (saved by a run with other objectives?)");
        if (it->second.sizes() != dst.sizes())
            throw std::runtime_error("objective state '" + name + "' has shape " + c10::str(it->second.sizes()) +
                                     "; the module expects " + c10::str(dst.sizes()));
        dst.copy_(it->second);
    }
}

at::Tensor ObjectiveList::optimizer_state() const {
    if (!optimizer_) return at::empty({0}, at::kByte);
    torch::serialize::OutputArchive archive;
    optimizer_->save(archive);
    std::ostringstream bytes;
    archive.save_to(bytes);
    const std::string s = bytes.str();
    at::Tensor out = at::empty({int64_t(s.size())}, at::kByte);
    std::memcpy(out.data_ptr<uint8_t>(), s.data(), s.size());
    return out;
}

void ObjectiveList::load_optimizer_state(const at::Tensor &bytes) {
    if (!optimizer_) {
        if (bytes.numel() != 0)
            throw std::runtime_error("objective optimizer state given, but no objective of this run owns a module");
        return;
    }
    const at::Tensor b = bytes.contiguous();
    std::istringstream in(std::string(reinterpret_cast<const char *>(b.data_ptr<uint8_t>()), size_t(b.numel())));
    torch::serialize::InputArchive archive;
    try {
        // map_location: the blob may come from a run on another device, and torch::optim's load()
        // replaces the state tensors, so they are created where the modules' parameters are.
        archive.load_from(in, module_params_.front().second.device());
        optimizer_->load(archive);
    } catch (const c10::Error &e) {
        throw std::runtime_error("objective optimizer state does not fit this run's modules: " + e.msg());
    }
}

}  // namespace dtokd
