// See run_plan.h.
#include "run_plan.h"

#include "lr_schedule.h"
#include "objective_registry.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace dtokd {

namespace {

// Fixed weights: --weights, or kd's (alpha-distill, alpha-task) on its (kd, ce) pair.
std::vector<double> fixed_weights_for(const TrainConfig &cfg, const std::vector<std::string> &objectives) {
    const bool fixed = cfg.method == "ce" || cfg.method == "kd" || cfg.method == "sum";
    if (!cfg.weights.empty()) {
        if (!fixed)
            throw std::invalid_argument("--weights is for the fixed-weight methods (ce, kd, sum); method '" +
                                        cfg.method + "' sets the weights itself");
        if (cfg.weights.size() != objectives.size())
            throw std::invalid_argument("--weights has " + std::to_string(cfg.weights.size()) + " values for " +
                                        std::to_string(objectives.size()) + " objectives; expected one per objective");
        return cfg.weights;
    }
    if (cfg.method == "kd") {
        if (objectives != std::vector<std::string>{"kd", "ce"})
            throw std::invalid_argument("--method kd weighs the objectives kd, ce by --alpha-distill/--alpha-task; "
                                        "for other objectives pass --weights (one per objective)");
        return {cfg.alpha_distill, cfg.alpha_task};
    }
    return {};
}

}  // namespace

LoaderOptions train_loader_options_for(const TrainConfig &cfg) {
    LoaderOptions o;
    o.batch_size = cfg.batch_size;
    o.shuffle = true;
    o.seed = cfg.seed;
    o.workers = loader_workers_for(cfg);
    if (cfg.augment) {
        // Image folders take torchvision's ImageNet-style RandomResizedCrop; in-memory
        // sets (CIFAR) the padded crop of the reference CIFAR recipes.
        if (cfg.dataset == "folder") {
            o.random_resized_crop = true;
            o.min_crop_scale = cfg.min_crop_scale;
        } else {
            o.crop_padding = 4;
        }
        o.flip = true;
    }
    o.skip_bad_images = cfg.dataset == "folder" && cfg.skip_bad_images;
    return o;
}

int loader_workers_for(const TrainConfig &cfg) {
    if (cfg.workers > 0) return cfg.workers;
    if (cfg.dataset != "folder") return 1;
    const int cores = cfg.threads > 0 ? cfg.threads : int(std::thread::hardware_concurrency());
    return std::clamp(cores, 1, 8);
}

ImageFolderOptions folder_options_for(const TrainConfig &cfg) {
    ImageFolderOptions o;
    o.image_size = cfg.image_size;
    o.channels = cfg.channels;
    o.center_crop_fraction = cfg.center_crop_fraction;
    o.mean = cfg.mean;
    o.std = cfg.std;
    o.skip_bad_images = cfg.skip_bad_images;
    o.threads = loader_workers_for(cfg);
    return o;
}

OptimizerConfig optimizer_config_for(const TrainConfig &cfg) {
    OptimizerConfig o;
    o.kind = cfg.optimizer;
    o.sgd.lr = cfg.lr;
    o.sgd.momentum = cfg.momentum;
    o.sgd.weight_decay = cfg.weight_decay;
    o.sgd.nesterov = cfg.nesterov;
    o.adamw.lr = cfg.lr;
    o.adamw.weight_decay = cfg.weight_decay;
    o.adamw.beta1 = cfg.adamw_beta1;
    o.adamw.beta2 = cfg.adamw_beta2;
    o.adamw.eps = cfg.adamw_eps;
    return o;
}

std::vector<std::string> objective_names_for(const TrainConfig &cfg) {
    if (!cfg.objectives.empty()) return cfg.objectives;
    if (cfg.method == "ce") return {"ce"};
    return {"kd", "ce"};
}

std::unique_ptr<ObjectiveList> objective_list_for(const TrainConfig &cfg) {
    ObjectiveOptions opts;
    opts.hint_layer = cfg.hint_layer;
    opts.temperature = cfg.temperature;
    opts.warmup_epochs = cfg.warmup_epochs;
    opts.dkd_alpha = cfg.dkd_alpha;
    opts.dkd_beta = cfg.dkd_beta;
    opts.dist_beta = cfg.dist_beta;
    opts.dist_gamma = cfg.dist_gamma;
    opts.at_p = cfg.at_p;
    opts.rkd_distance_weight = cfg.rkd_distance_weight;
    opts.rkd_angle_weight = cfg.rkd_angle_weight;
    opts.crd_dim = cfg.crd_dim;
    opts.crd_negatives = cfg.crd_negatives;
    opts.crd_temperature = cfg.crd_temperature;
    opts.crd_momentum = cfg.crd_momentum;
    if (cfg.ofd_teacher_bn != "train" && cfg.ofd_teacher_bn != "eval")
        throw std::invalid_argument("ofd_teacher_bn is '" + cfg.ofd_teacher_bn + "'; expected train or eval");
    opts.ofd_teacher_train_mode = cfg.ofd_teacher_bn == "train";
    return make_objective_list(objective_names_for(cfg), opts);
}

PolicyConfig policy_config_for(const TrainConfig &cfg) {
    PolicyConfig p;
    p.method = cfg.method;
    p.weights = fixed_weights_for(cfg, objective_names_for(cfg));
    p.alpha_distill = cfg.alpha_distill;
    p.alpha_task = cfg.alpha_task;
    p.eps = cfg.eps;
    p.clip_norm = cfg.clip_norm;
    p.amortized_lr = cfg.amortized_lr;
    p.amortized_decay = cfg.amortized_decay;
    p.refresh = cfg.dto_refresh;
    p.reeval_every = cfg.dto_reeval_every;
    return p;
}

void check_train_config(const TrainConfig &cfg) {
    if (cfg.epochs < 1) throw std::invalid_argument("epochs is " + std::to_string(cfg.epochs) + "; expected >= 1");
    if (cfg.log_interval < 1)
        throw std::invalid_argument("log_interval is " + std::to_string(cfg.log_interval) + "; expected >= 1");
    if (cfg.checkpoint_every < 0)
        throw std::invalid_argument("checkpoint_every is " + std::to_string(cfg.checkpoint_every) +
                                    "; expected >= 0 (0: at epoch ends only)");
    if (cfg.skip_limit < 1)
        throw std::invalid_argument("skip_limit is " + std::to_string(cfg.skip_limit) + "; expected >= 1");
    if (cfg.out.empty()) throw std::invalid_argument("no run directory: pass --out DIR");
    if (cfg.dataset != "folder") {
        const TrainConfig defaults;
        std::vector<std::string> set;
        if (cfg.image_size != defaults.image_size) set.push_back("image-size");
        if (cfg.channels != defaults.channels) set.push_back("channels");
        if (cfg.center_crop_fraction != defaults.center_crop_fraction) set.push_back("center-crop-fraction");
        if (cfg.min_crop_scale != defaults.min_crop_scale) set.push_back("min-crop-scale");
        if (!cfg.mean.empty()) set.push_back("mean");
        if (!cfg.std.empty()) set.push_back("std");
        if (cfg.skip_bad_images) set.push_back("skip-bad-images");
        if (!set.empty())
            throw std::invalid_argument("option " + set.front() + " applies to image folders (dataset 'folder'); "
                                        "dataset '" + cfg.dataset + "' has its own fixed size and normalization");
    }
    if (cfg.method == "ce" && !cfg.objectives.empty() && cfg.objectives != std::vector<std::string>{"ce"})
        throw std::invalid_argument("method 'ce' trains on the task loss alone; for fixed weights over --objectives "
                                    "use --method sum");
}

void check_objectives(const TrainConfig &cfg, const ObjectiveList &objectives, const TradeoffPolicy &policy) {
    if (objectives.needs_teacher() && cfg.teacher.empty())
        throw std::invalid_argument("method '" + cfg.method + "' with objectives " +
                                    [&] {
                                        std::string s;
                                        for (const auto &n : objectives.names()) s += (s.empty() ? "" : ",") + n;
                                        return s;
                                    }() +
                                    " distills from a teacher: pass --teacher FILE");
    if (policy.needs_logit_objectives() && !objectives.first_not_logits_only().empty())
        throw std::invalid_argument("method '" + cfg.method +
                                    "' needs every objective to be a function of the student logits; objective '" +
                                    objectives.first_not_logits_only() + "' is not (use dto or dto-amortized)");
}

KdLossOptions kd_options_for(const TrainConfig &cfg) {
    KdLossOptions kd;
    kd.temperature = cfg.temperature;
    kd.label_smoothing = cfg.label_smoothing;
    return kd;
}

}  // namespace dtokd
