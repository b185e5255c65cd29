// See trainer.h.
#include "trainer.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include "batch_loader.h"
#include "checkpoint.h"
#include "model_handle.h"
#include "flat_arena.h"
#include "fused_optimizer.h"
#include "image_dataset.h"
#include "lr_schedule.h"
#include "net_taps.h"
#include "objective_batch.h"
#include "objective_list.h"
#include "objective_registry.h"
#include "run_folder.h"
#include "step_stats.h"
#include "teacher_logit_cache.h"
#include "tradeoff_policy.h"

namespace dtokd {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double accuracy(ModelHandle &model, const ImageDataset &test) {
    LoaderOptions opts;
    opts.batch_size = 500;
    opts.shuffle = false;
    BatchLoader loader(test, opts);
    loader.start_epoch(0);
    model.set_train(false);
    at::NoGradGuard no_grad;
    int64_t correct = 0;
    while (auto b = loader.next()) correct += model.forward(b->images).argmax(1).eq(b->labels).sum().item<int64_t>();
    return double(correct) / double(test.size());
}

LoaderOptions train_loader_options(const TrainConfig &cfg) {
    LoaderOptions o;
    o.batch_size = cfg.batch_size;
    o.shuffle = true;
    o.seed = cfg.seed;
    if (cfg.augment) {
        o.crop_padding = 4;
        o.flip = true;
    }
    return o;
}

// The training batches, with the contrast negatives the objectives ask for; a bad
// count fails here, naming the objective, before the run folder exists.
std::unique_ptr<BatchLoader> train_loader_for(const TrainConfig &cfg, const ImageDataset &train,
                                              ObjectiveList &objectives) {
    LoaderOptions o = train_loader_options(cfg);
    o.contrast_negatives = objectives.contrast_negatives();
    try {
        return std::make_unique<BatchLoader>(train, o);
    } catch (const std::invalid_argument &e) {
        if (o.contrast_negatives == 0) throw;
        int asker = 0;
        while (objectives.at(asker).contrast_negatives() == 0) asker++;
        throw std::invalid_argument("objective '" + objectives.at(asker).name() + "': " + e.what());
    }
}

OptimizerConfig optimizer_config(const TrainConfig &cfg) {
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

// The run's objectives by name: --objectives, else [ce] for ce and [kd, ce] (distillation, task) otherwise.
std::vector<std::string> objective_names_for(const TrainConfig &cfg) {
    if (!cfg.objectives.empty()) return cfg.objectives;
    if (cfg.method == "ce") return {"ce"};
    return {"kd", "ce"};
}

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

PolicyConfig policy_config(const TrainConfig &cfg) {
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

std::string format_eta(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    std::ostringstream os;
    const int s = int(seconds);
    if (s >= 3600) os << s / 3600 << "h";
    if (s >= 60) os << (s / 60) % 60 << "m";
    os << s % 60 << "s";
    return os.str();
}

void check_config(const TrainConfig &cfg) {
    if (cfg.epochs < 1) throw std::invalid_argument("epochs is " + std::to_string(cfg.epochs) + "; expected >= 1");
    if (cfg.log_interval < 1)
        throw std::invalid_argument("log_interval is " + std::to_string(cfg.log_interval) + "; expected >= 1");
    if (cfg.skip_limit < 1)
        throw std::invalid_argument("skip_limit is " + std::to_string(cfg.skip_limit) + "; expected >= 1");
    if (cfg.out.empty()) throw std::invalid_argument("no run directory: pass --out DIR");
    if (cfg.method == "ce" && !cfg.objectives.empty() && cfg.objectives != std::vector<std::string>{"ce"})
        throw std::invalid_argument("method 'ce' trains on the task loss alone; for fixed weights over --objectives "
                                    "use --method sum");
}

// Objectives vs teacher and policy, before anything is written.
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

}  // namespace

RunResult run_training(const TrainConfig &config, const std::string &resolved_config) {
    // "--out runs/x/" (shell completion) names the run runs/x: with the slash kept,
    // <out>.partial would be runs/x/.partial and the final rename onto runs/x/ fails.
    TrainConfig cfg = config;
    while (cfg.out.size() > 1 && cfg.out.back() == '/') cfg.out.pop_back();
    check_config(cfg);
    const KernelBackend backend = parse_kernel_backend(cfg.kernels);
    std::unique_ptr<TradeoffPolicy> policy = make_policy(policy_config(cfg));
    std::unique_ptr<ObjectiveList> objectives = objective_list_for(cfg);
    check_objectives(cfg, *objectives, *policy);
    scheduled_lr(cfg.schedule, cfg.lr, 0, cfg.epochs, cfg.milestones, cfg.gamma);  // validates the name
    RunFolder::check_available(cfg.out);

    // Everything that can fail on bad input happens before the run folder exists.
    const DatasetPair data = load_dataset(cfg.dataset, cfg.data_dir);
    const ImageDataset &train = data.train;
    at::manual_seed(cfg.seed);  // same seed, same initial student (and data order, via the loader)
    ModelHandle student = build_model(cfg.model, train.channels(), train.height(), train.width(), train.num_classes);
    ModelHandle teacher;
    const bool distill = objectives->needs_teacher();
    const TapRequest student_taps = objectives->student_taps(), teacher_taps = objectives->teacher_taps();
    // BatchNorm on batch statistics in the teacher, where an objective's reference does so (OFD).
    const bool teacher_train_mode = !objectives->teacher_train_mode().empty();
    if (distill) {
        teacher = load_teacher(cfg.teacher, train.channels(), train.height(), train.width(), train.num_classes);
        if (teacher_taps.any()) {
            int reader = 0;  // the first objective that reads teacher features, for the message
            while (!objectives->at(reader).teacher_taps().any() && reader + 1 < objectives->size()) reader++;
            try {
                check_gives_features(teacher, to_feature_request(teacher_taps));
            } catch (const std::runtime_error &e) {
                throw std::invalid_argument(cfg.teacher + ": objective '" + objectives->at(reader).name() +
                                            "' reads teacher features: " + e.what());
            }
        }
    }
    {
        // One probe forward of each network builds the objectives' modules from the
        // feature shapes and checks every tap they read, before the run folder exists.
        LoaderOptions probe_opts;
        probe_opts.batch_size = 2;
        probe_opts.shuffle = false;
        BatchLoader probe_loader(train, probe_opts);
        probe_loader.start_epoch(0);
        const std::optional<Batch> probe = probe_loader.next();
        at::NoGradGuard no_grad;
        student.set_train(false);
        NetOutputs s_out = forward_taps(student, probe->images, student_taps), t_out;
        if (distill) {
            teacher.set_train(false);
            t_out = forward_taps(teacher, probe->images, teacher_taps);
        }
        PrepareContext context;
        context.num_samples = train.size();
        context.num_classes = train.num_classes;
        context.teacher_name = cfg.teacher;
        if (distill && teacher.preact_bn_affine) context.teacher_preact_bn = teacher.preact_bn_affine();
        objectives->prepare(s_out, t_out, context, optimizer_config(cfg));
        student.set_train(true);
    }

    const std::unique_ptr<BatchLoader> train_loader = train_loader_for(cfg, train, *objectives);
    BatchLoader &loader = *train_loader;

    RunFolder folder(cfg.out);
    write_file_atomic(folder.path("config.toml"), resolved_config);
    std::ofstream metrics(folder.path("metrics.jsonl"));

    FlatArena arena(*student.module, policy->gradient_arenas(objectives->size()));
    FusedOptimizer optimizer(arena.params(), optimizer_config(cfg), backend);
    PolicyContext ctx{arena, optimizer, backend};
    KdLossOptions kd;
    kd.temperature = cfg.temperature;
    kd.label_smoothing = cfg.label_smoothing;

    RunResult result;
    at::Tensor cached_logits;
    if (distill && cfg.teacher_cache && !cfg.augment && !teacher_taps.any()) {
        const std::string cache_dir =
            cfg.cache_dir.empty() ? (fs::path(cfg.out).parent_path() / "cache").string() : cfg.cache_dir;
        TeacherLogits tl = teacher_logits_for(teacher, cfg.teacher, train, cache_dir, cfg.progress);
        cached_logits = tl.logits;
        result.teacher_logits_cached = tl.from_cache;
    }

    NonFiniteGuard guard(cfg.skip_limit);
    const std::vector<std::string> loss_names = objectives->names();
    StepStatsWindow window(loss_names);
    const auto run_start = Clock::now();
    const int64_t steps_per_epoch = loader.batches_per_epoch();
    const int64_t total_steps =
        cfg.max_steps > 0 ? std::min(cfg.max_steps, steps_per_epoch * cfg.epochs) : steps_per_epoch * cfg.epochs;
    int64_t step = 0;
    double step_seconds_sum = 0;
    auto last_progress = Clock::now();
    const bool live_progress = cfg.progress && isatty(STDERR_FILENO);  // the \r line only on a terminal
    for (int epoch = 0; epoch < cfg.epochs && step < total_steps; epoch++) {
        const double lr = scheduled_lr(cfg.schedule, cfg.lr, epoch, cfg.epochs, cfg.milestones, cfg.gamma);
        optimizer.set_lr(lr);
        objectives->set_lr(lr);
        const auto epoch_start = Clock::now();
        const double wait_before = loader.wait_seconds();
        int64_t images = 0;
        loader.start_epoch(epoch);
        student.set_train(true);
        objectives->set_train(true);
        while (step < total_steps) {
            std::optional<Batch> batch = loader.next();
            if (!batch) break;
            NetOutputs teacher_out;
            if (distill) {
                if (cached_logits.defined()) {
                    teacher_out.logits = cached_logits.index_select(0, batch->indices);
                } else {
                    at::NoGradGuard no_grad;
                    teacher.set_train(teacher_train_mode);
                    teacher_out = forward_taps(teacher, batch->images, teacher_taps);
                    teacher_out.logits = teacher_out.logits.to(at::kFloat).contiguous();
                }
            } else {
                // No objective reads the teacher: the KD kernel's L_distill is computed
                // against uniform logits and ignored.
                teacher_out.logits = at::zeros({batch->labels.numel(), train.num_classes}, at::kFloat);
            }
            const at::Tensor images_t = batch->images;
            // The step time covers the student forward (run when the batch is made) too.
            const auto step_start = Clock::now();
            ObjectiveBatch objective_batch(
                *objectives, [&student, images_t, student_taps] { return forward_taps(student, images_t, student_taps); },
                *student.module, std::move(teacher_out), 
                BatchTargets{batch->labels, batch->indices, batch->contrast_indices, epoch}, kd, backend);
            StepStats s = policy->step(objective_batch, ctx, step);
            s.seconds = since(step_start);
            guard.record(s);
            window.add(s);
            step_seconds_sum += s.seconds;
            images += batch->labels.numel();
            step++;
            if (window.count() >= cfg.log_interval) {
                metrics << "{\"type\":\"train\",\"epoch\":" << epoch << ",\"lr\":" << lr << ","
                        << window.to_json(step).substr(1) << "\n";
                metrics.flush();
                window.clear();
            }
            if (live_progress && since(last_progress) > 0.5) {
                last_progress = Clock::now();
                const double elapsed = since(run_start);
                std::ostringstream line;
                line << std::fixed << std::setprecision(3) << "\r" << cfg.method << " epoch " << epoch + 1 << "/"
                     << cfg.epochs << " step " << step << "/" << total_steps << " ETA "
                     << format_eta(elapsed / double(step) * double(total_steps - step)) << std::setprecision(3);
                for (int k = 0; k < s.objectives; k++) line << " L_" << loss_names[size_t(k)] << " " << s.loss[size_t(k)];
                line << " pi " << std::setprecision(2);
                for (int k = 0; k < s.objectives; k++) line << (k ? "/" : "") << s.pi[size_t(k)];
                line << " "
                     << std::setprecision(0) << double(images) / since(epoch_start) << " img/s   ";
                std::cerr << line.str() << std::flush;
            }
        }
        if (window.count() > 0) {
            metrics << "{\"type\":\"train\",\"epoch\":" << epoch << ",\"lr\":" << lr << ","
                    << window.to_json(step).substr(1) << "\n";
            window.clear();
        }
        EpochResult er;
        er.epoch = epoch;
        er.lr = lr;
        er.seconds = since(epoch_start);
        er.images_per_second = double(images) / er.seconds;
        er.data_wait_fraction = (loader.wait_seconds() - wait_before) / er.seconds;
        er.test_accuracy = accuracy(student, data.test);
        result.epochs.push_back(er);
        if (er.test_accuracy > result.best_test_accuracy || result.best_epoch < 0) {
            result.best_test_accuracy = er.test_accuracy;
            result.best_epoch = epoch;
        }
        metrics << "{\"type\":\"epoch\",\"epoch\":" << epoch << ",\"step\":" << step << ",\"lr\":" << lr
                << ",\"test_accuracy\":" << er.test_accuracy << ",\"seconds\":" << er.seconds
                << ",\"images_per_second\":" << er.images_per_second
                << ",\"data_wait_fraction\":" << er.data_wait_fraction << "}\n";
        metrics.flush();
        if (cfg.progress)
            std::cerr << "\r" << cfg.method << " epoch " << epoch + 1 << "/" << cfg.epochs << ": test accuracy "
                      << std::fixed << std::setprecision(4) << er.test_accuracy << " (" << std::setprecision(1)
                      << er.seconds << " s, data wait " << std::setprecision(2) << 100 * er.data_wait_fraction
                      << "%)                                   \n";
        CheckpointMeta meta;
        meta.model_name = cfg.model;
        meta.num_classes = train.num_classes;
        meta.in_channels = train.channels();
        meta.height = train.height();
        meta.width = train.width();
        meta.epoch = epoch + 1;
        meta.step = step;
        meta.config = resolved_config;
        meta.optimizer_kind = cfg.optimizer;
        meta.optimizer_steps = optimizer.steps_taken();
        save_checkpoint(folder.path("checkpoint.pt"), *student.module, meta, optimizer.state(),
                        objectives->named_state());
    }
    result.steps = step;
    result.skipped_steps = guard.total_skipped();
    result.seconds = since(run_start);
    result.mean_step_seconds = step > 0 ? step_seconds_sum / double(step) : 0;
    result.final_test_accuracy = result.epochs.empty() ? 0 : result.epochs.back().test_accuracy;
    metrics.close();
    write_file_atomic(folder.path("summary.json"), summary_json(cfg, result) + "\n");
    folder.finish();
    result.run_dir = cfg.out;
    return result;
}

std::string summary_json(const TrainConfig &cfg, const RunResult &r) {
    std::ostringstream os;
    os.precision(6);
    os << "{\"model\":\"" << cfg.model << "\",\"method\":\"" << cfg.method << "\",\"dataset\":\"" << cfg.dataset
       << "\",\"epochs\":" << r.epochs.size() << ",\"steps\":" << r.steps << ",\"final_test_accuracy\":"
       << r.final_test_accuracy << ",\"best_test_accuracy\":" << r.best_test_accuracy
       << ",\"best_epoch\":" << r.best_epoch << ",\"seconds\":" << r.seconds
       << ",\"mean_step_seconds\":" << r.mean_step_seconds << ",\"skipped_steps\":" << r.skipped_steps
       << ",\"teacher_logits_cached\":" << (r.teacher_logits_cached ? "true" : "false") << "}";
    return os.str();
}

double evaluate_checkpoint(const std::string &checkpoint, const TrainConfig &cfg) {
    const DatasetPair data = load_dataset(cfg.dataset, cfg.data_dir);
    ModelHandle model = load_teacher(checkpoint, data.test.channels(), data.test.height(), data.test.width(),
                                    data.test.num_classes);
    return accuracy(model, data.test);
}

}  // namespace dtokd
