// See cli_options.h.
#include "cli_options.h"

#include <set>

#include "config_toml.h"

#include <CLI/CLI.hpp>

namespace dtokd {

void add_data_options(CLI::App *app, TrainConfig &c) {
    app->add_option("--dataset", c.dataset, "fashion-mnist | mnist | cifar10 | cifar100 | folder")
        ->capture_default_str();
    app->add_option("--data", c.data_dir,
                    "dataset folder (default: the Debian fashion-mnist package); folder: DIR/train/<class>/*, "
                    "DIR/val/<class>/* (JPEG, PNG)");
    app->add_option("--image-size", c.image_size, "folder: the square input size images are cropped/resized to")
        ->capture_default_str()
        ->check(CLI::Range(1, 4096));
    app->add_option("--channels", c.channels, "folder: 1 (grey) or 3 (RGB); 0 = 1 when every training image is grey")
        ->capture_default_str()
        ->check(CLI::IsMember({0, 1, 3}));
    app->add_option("--center-crop-fraction", c.center_crop_fraction,
                    "folder, evaluation: resize to image-size / fraction, then crop the centre")
        ->capture_default_str();
    app->add_option("--min-crop-scale", c.min_crop_scale,
                    "folder with --augment: RandomResizedCrop's smallest area fraction")
        ->capture_default_str();
    app->add_option("--mean", c.mean, "folder: normalization mean per channel (default: computed from train)")
        ->delimiter(',')
        ->expected(0, -1);
    app->add_option("--std", c.std, "folder: normalization std per channel (default: computed from train)")
        ->delimiter(',')
        ->expected(0, -1);
    app->add_flag("--skip-bad-images,!--no-skip-bad-images", c.skip_bad_images,
                  "folder: leave out unreadable image files (listed in summary.json) instead of failing")
        ->capture_default_str();
    app->add_option("--train-fraction", c.train_fraction,
                    "train on this stratified fraction of the training images (per class; the same for every "
                    "run with the same --subset-seed)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    app->add_option("--subset-seed", c.subset_seed, "which images --train-fraction keeps")->capture_default_str();
    app->add_option("--workers", c.workers, "threads making batches (0 = 1, or the cores for folder)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
}

void add_common_options(CLI::App *app, TrainConfig &c, std::string &config_file, std::string *resume) {
    app->add_option("--config", config_file, "TOML config file (keys are the long option names; flags win)");
    if (resume != nullptr)
        app->add_option("--resume", *resume,
                        "continue the interrupted (or finished, with a larger --epochs) run RUN from its last "
                        "checkpoint, with its own config.toml (flags may change only --epochs and reporting)");
    add_data_options(app, c);
    app->add_option("--model", c.model, "zoo model to train (the student)")->capture_default_str();
    app->add_option("--out", c.out, "run directory to create (never overwritten)");
    app->add_flag("--augment,!--no-augment", c.augment,
                  "random crop (padding 4; folder: RandomResizedCrop) + horizontal flip")
        ->capture_default_str();
    app->add_option("--batch-size", c.batch_size)->capture_default_str()->check(CLI::PositiveNumber);
    app->add_option("--epochs", c.epochs)->capture_default_str()->check(CLI::PositiveNumber);
    app->add_option("--max-steps", c.max_steps, "stop after this many steps (0 = all)")->capture_default_str();
    app->add_option("--checkpoint-every", c.checkpoint_every,
                    "also checkpoint every this many steps (0 = at epoch ends only; --resume continues from the last)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app->add_option("--optimizer", c.optimizer, "sgd | adamw")->capture_default_str();
    app->add_option("--lr", c.lr)->capture_default_str();
    app->add_option("--momentum", c.momentum)->capture_default_str();
    app->add_option("--weight-decay", c.weight_decay)->capture_default_str();
    app->add_flag("--nesterov,!--no-nesterov", c.nesterov)->capture_default_str();
    app->add_option("--schedule", c.schedule, "cosine | step | constant")->capture_default_str();
    app->add_option("--milestones", c.milestones, "step schedule epochs")->capture_default_str()->expected(0, -1);
    app->add_option("--gamma", c.gamma, "step schedule factor")->capture_default_str();
    app->add_option("--label-smoothing", c.label_smoothing)->capture_default_str();
    app->add_option("--seed", c.seed)->capture_default_str();
    app->add_option("--log-interval", c.log_interval, "steps per metrics line")->capture_default_str();
    app->add_option("--skip-limit", c.skip_limit, "consecutive non-finite steps before stopping")
        ->capture_default_str();
    app->add_flag("--progress,!--no-progress", c.progress)->capture_default_str();
}

void add_distill_options(CLI::App *app, TrainConfig &c) {
    app->add_option("--method", c.method, "ce | kd | sum | dto | dto-amortized | dto-logit")->capture_default_str();
    app->add_option("--objectives", c.objectives,
                    "objectives, comma-separated: ce, kd, fitnet (default: kd,ce; ce alone for --method ce)")
        ->delimiter(',')
        ->expected(0, -1);
    app->add_option("--weights", c.weights, "kd/sum: one fixed weight per objective, comma-separated")
        ->delimiter(',')
        ->expected(0, -1);
    app->add_option("--hint-layer", c.hint_layer, "fitnet: feats index of the hint (-1: 2, or the last stage)")
        ->capture_default_str();
    app->add_option("--warmup-epochs", c.warmup_epochs, "dkd, reviewkd: ramp the loss over N epochs (0 = off)")
        ->capture_default_str();
    app->add_option("--dkd-alpha", c.dkd_alpha, "dkd: TCKD weight")->capture_default_str();
    app->add_option("--dkd-beta", c.dkd_beta, "dkd: NCKD weight")->capture_default_str();
    app->add_option("--dist-beta", c.dist_beta, "dist: inter-relation weight")->capture_default_str();
    app->add_option("--dist-gamma", c.dist_gamma, "dist: intra-relation weight")->capture_default_str();
    app->add_option("--at-p", c.at_p, "at: attention map exponent")->capture_default_str();
    app->add_option("--rkd-distance-weight", c.rkd_distance_weight, "rkd: distance term weight")
        ->capture_default_str();
    app->add_option("--rkd-angle-weight", c.rkd_angle_weight, "rkd: angle term weight")->capture_default_str();
    app->add_option("--crd-dim", c.crd_dim, "crd: embedding size")->capture_default_str()->check(CLI::PositiveNumber);
    app->add_option("--crd-negatives", c.crd_negatives, "crd: negatives per sample (memory: docs/methods.md)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_option("--crd-temperature", c.crd_temperature, "crd: NCE temperature")->capture_default_str();
    app->add_option("--crd-momentum", c.crd_momentum, "crd: memory bank momentum")->capture_default_str();
    app->add_option("--ofd-teacher-bn", c.ofd_teacher_bn, "ofd: teacher batch norm mode, train (reference) | eval")
        ->capture_default_str();
    app->add_option("--teacher", c.teacher, "teacher: dtokd checkpoint or TorchScript file");
    app->add_option("--temperature", c.temperature)->capture_default_str();
    app->add_option("--alpha-distill", c.alpha_distill, "kd: weight of L_distill")->capture_default_str();
    app->add_option("--alpha-task", c.alpha_task, "kd: weight of L_task")->capture_default_str();
    app->add_option("--eps", c.eps, "log-loss floor")->capture_default_str();
    app->add_option("--clip-norm", c.clip_norm, "clip the update direction's global norm (0 = off)")
        ->capture_default_str();
    app->add_option("--dto-lr", c.amortized_lr, "dto-amortized: lr of the trade-off logits")->capture_default_str();
    app->add_option("--dto-decay", c.amortized_decay, "dto-amortized: their weight decay")->capture_default_str();
    app->add_option("--dto-refresh", c.dto_refresh, "dto-amortized: exact step every K steps (0 = never)")
        ->capture_default_str();
    app->add_option("--dto-reeval-every", c.dto_reeval_every,
                    "dto-amortized: re-evaluate the losses and learn pi every K-th step (pi held between)")
        ->capture_default_str();
    app->add_option("--cache-dir", c.cache_dir, "teacher-logit cache folder (default: <out>/../cache)");
    app->add_flag("--teacher-cache,!--no-teacher-cache", c.teacher_cache)->capture_default_str();
}

std::string resolved_config_toml(const CLI::App &app, const TrainConfig &c) {
    std::set<std::string> keys;
    for (const CLI::Option *opt : app.get_options())
        if (!opt->get_lnames().empty()) keys.insert(opt->get_single_name());
    return config_toml(c, "dtokd " + app.get_name() + ": resolved options (file + flags + defaults)", keys);
}

}  // namespace dtokd
