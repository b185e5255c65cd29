// See trainer.h. The parts: run_plan (config -> runtime options), StepEngine (the step),
// BatchLoader (data order), RunFolder (lock, .partial), MetricsLog, checkpoints with the
// LoopState, ProgressLine. run_training wires them and owns the loop.
#include "trainer.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <stdexcept>

#include "batch_loader.h"
#include "checkpoint.h"
#include "collective.h"
#include "config_toml.h"
#include "fault_injection.h"
#include "host_readback.h"
#include "dataset_registry.h"
#include "dataset_subset.h"
#include "device.h"
#include "lr_schedule.h"
#include "metrics_log.h"
#include "model_handle.h"
#include "progress_line.h"
#include "run_folder.h"
#include "run_plan.h"
#include "step_engine.h"
#include "step_stats.h"
#include "teacher_logit_cache.h"

namespace dtokd {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Data-parallel: rank r takes the test batches r, r + R, ... and the counts are summed,
// so every test image is counted exactly once.
// With skip_bad_images, files that fail to decode are left out of the count.
double accuracy(ModelHandle &model, const ImageDataset &test, Collective *ranks = nullptr, int workers = 1,
                bool skip_bad_images = false) {
    // Counted on the model's device and read once: no wait for the device per batch.
    LoaderOptions opts;
    opts.batch_size = 500;
    opts.shuffle = false;
    opts.workers = workers;
    opts.skip_bad_images = skip_bad_images;
    opts.pin_memory = model.device.is_cuda();
    BatchLoader loader(test, opts);
    loader.start_epoch(0);
    model.set_train(false);
    at::NoGradGuard no_grad;
    const int world = ranks ? ranks->world_size() : 1, rank = ranks ? ranks->rank() : 0;
    at::Tensor correct_on_device = at::zeros({}, at::TensorOptions(at::kLong).device(model.device));
    int64_t correct = 0, seen = 0;
    for (int64_t i = 0; auto b = loader.next(); i++)
        if (i % world == rank && b->labels.numel() > 0) {
            const at::Tensor images = b->images.to(model.device, /*non_blocking=*/true);
            const at::Tensor labels = b->labels.to(model.device, /*non_blocking=*/true);
            correct_on_device += model.forward(images).argmax(1).eq(labels).sum();
            seen += b->labels.numel();
        }
    correct = int64_t(read_to_host(correct_on_device).at(0));
    if (distributed(ranks)) {
        std::vector<double> count = {double(correct), double(seen)};
        sum_values(*ranks, count);
        correct = int64_t(count[0]);
        seen = int64_t(count[1]);
    }
    return seen > 0 ? double(correct) / double(seen) : 0.0;
}

// Every rank waits here until all have arrived (or the group's timeout passes).
void barrier(Collective *ranks) {
    if (!distributed(ranks)) return;
    std::vector<double> nothing = {0.0};
    sum_values(*ranks, nothing);
}

// The training batches, with the contrast negatives the objectives ask for; a bad
// count fails here, naming the objective, before the run folder exists.
std::unique_ptr<BatchLoader> train_loader_for(const TrainConfig &cfg, const ImageDataset &train,
                                              ObjectiveList &objectives, const at::Device &device, Collective *ranks) {
    LoaderOptions o = train_loader_options_for(cfg);
    o.contrast_negatives = objectives.contrast_negatives();
    o.pin_memory = device.is_cuda();  // batches copied to the GPU without waiting
    if (ranks) {
        o.rank = ranks->rank();
        o.world_size = ranks->world_size();
    }
    try {
        return std::make_unique<BatchLoader>(train, o);
    } catch (const std::invalid_argument &e) {
        if (o.contrast_negatives == 0) throw;
        int asker = 0;
        while (objectives.at(asker).contrast_negatives() == 0) asker++;
        throw std::invalid_argument("objective '" + objectives.at(asker).name() + "': " + e.what());
    }
}

// The images of the first two training samples: the engine's probe forward.
at::Tensor probe_images(const ImageDataset &train, bool skip_bad_images) {
    LoaderOptions o;
    o.batch_size = 2;
    o.shuffle = false;
    o.skip_bad_images = skip_bad_images;
    BatchLoader loader(train, o);
    loader.start_epoch(0);
    at::Tensor images = loader.next()->images;
    if (images.size(0) == 0) throw std::runtime_error(train.name + ": the first two images cannot be decoded");
    return images;
}

// A model trained on other classes (an image folder's class names, in label order) is
// one error; models without recorded names (other datasets, TorchScript) are not checked.
void check_same_classes(const std::string &model_file, const std::vector<std::string> &model_classes,
                        const ImageDataset &data) {
    if (model_classes.empty() || data.class_names.empty() || model_classes == data.class_names) return;
    std::string first_difference;
    for (size_t i = 0; i < std::max(model_classes.size(), data.class_names.size()); i++) {
        const std::string a = i < model_classes.size() ? model_classes[i] : "(none)",
                          b = i < data.class_names.size() ? data.class_names[i] : "(none)";
        if (a != b) {
            first_difference = "label " + std::to_string(i) + " is '" + a + "' there and '" + b + "' here";
            break;
        }
    }
    throw std::runtime_error(model_file + ": trained on other classes than " + data.name + " (" +
                             std::to_string(model_classes.size()) + " vs " + std::to_string(data.class_names.size()) +
                             " classes; " + first_difference + ")");
}

Json train_line(int epoch, double lr, const StepStatsWindow &window, int64_t step) {
    Json j = {{"type", "train"}, {"epoch", epoch}, {"lr", lr}};
    for (const auto &[key, value] : window.fields(step)) {
        if (key == "step" || key == "steps" || key == "skipped" || key == "exact_steps")
            j[key] = int64_t(value);
        else
            j[key] = value;  // NaN: null
    }
    return j;
}

Json epoch_line(const EpochResult &e, int64_t step) {
    return {{"type", "epoch"},
            {"epoch", e.epoch},
            {"step", step},
            {"lr", e.lr},
            {"test_accuracy", e.test_accuracy},
            {"seconds", e.seconds},
            {"images_per_second", e.images_per_second},
            {"data_wait_fraction", e.data_wait_fraction}};
}

std::string joined(const std::vector<std::string> &items, const std::string &sep) {
    std::string s;
    for (const std::string &i : items) s += (s.empty() ? "" : sep) + i;
    return s;
}

}  // namespace

const std::set<std::string> &resume_safe_keys() {
    // epochs extends (or shortens) the run; the rest change reporting, not the steps
    // (workers: the batches are the same for any count).
    static const std::set<std::string> keys = {"epochs",           "max-steps", "progress", "log-interval",
                                               "checkpoint-every", "skip-limit", "cache-dir", "out", "workers"};
    return keys;
}

RunResult run_training(const TrainConfig &config, const std::string &resolved_config, RunStart start,
                       Collective *ranks) {
    // "--out runs/x/" (shell completion) names the run runs/x: with the slash kept,
    // <out>.partial would be runs/x/.partial and the final rename onto runs/x/ fails.
    TrainConfig cfg = config;
    while (cfg.out.size() > 1 && cfg.out.back() == '/') cfg.out.pop_back();
    const bool resume = start == RunStart::resume;
    check_train_config(cfg);
    const KernelBackend backend = parse_kernel_backend(cfg.kernels);
    const at::Device device = parse_device(cfg.device);
    check_device_usable(device);
    check_backend_on_device(backend, device);
    check_device_for_ranks(device, ranks ? ranks->world_size() : 1);
    std::unique_ptr<TradeoffPolicy> policy = make_policy(policy_config_for(cfg));
    std::unique_ptr<ObjectiveList> objectives = objective_list_for(cfg);
    check_objectives(cfg, *objectives, *policy);
    // Data-parallel: rank 0 (the lead) alone writes the run folder, metrics, checkpoints
    // and progress; every rank reads the same data, teacher and checkpoint.
    const bool lead = !ranks || ranks->rank() == 0;
    if (distributed(ranks)) {
        if (objectives->contrast_negatives() > 0)
            throw std::invalid_argument("objective 'crd' keeps a memory bank of every training sample, which "
                                        "data-parallel ranks would each update apart; run it in one process");
        if (!lead) cfg.progress = false;
    }
    scheduled_lr(cfg.schedule, cfg.lr, 0, cfg.epochs, cfg.milestones, cfg.gamma);  // validates the name
    std::string resume_from;
    std::optional<CheckpointMeta> resumed_meta;
    if (resume) {
        resume_from = RunFolder::resume_checkpoint(cfg.out);
        resumed_meta = read_checkpoint_meta(resume_from);
        const std::vector<std::string> diff =
            config_differences(resumed_meta->config, resolved_config, resume_safe_keys(), resume_from);
        // --kernels is a global option, not in config.toml: the checkpoint records it.
        if (!resumed_meta->kernels.empty() && resumed_meta->kernels != cfg.kernels)
            throw std::invalid_argument(cfg.out + ": the run was trained with --kernels " + resumed_meta->kernels +
                                        ", not " + cfg.kernels + "; resume it with `dtokd --kernels " +
                                        resumed_meta->kernels +
                                        " ...` (another backend rounds differently, so the run would not continue "
                                        "the numbers it started)");
        // The device may change: the checkpoint holds host tensors, and the steps continue
        // (not bit for bit: another device rounds differently).
        if (lead && cfg.progress && !resumed_meta->device.empty() && resumed_meta->device != device_name(device))
            std::cerr << "dtokd: resuming on " << device_name(device) << "; the checkpoint was written on "
                      << resumed_meta->device << "\n";
        if (!diff.empty())
            throw std::invalid_argument(
                cfg.out + ": the run was started with other options: " + joined(diff, ", ") +
                ". Resume it with its own options (its config.toml is read for you; only " +
                joined(std::vector<std::string>(resume_safe_keys().begin(), resume_safe_keys().end()), ", ") +
                " may change)");
    } else {
        // Every rank checks (the lead creates the folder later): a taken --out fails them all at once.
        RunFolder::check_available(cfg.out);
    }

    // Everything that can fail on bad input happens before the run folder is written.
    ImageFolderOptions folder_options = folder_options_for(cfg);
    if (resumed_meta) {
        // A resumed image-folder run normalizes as it started (not with statistics of
        // files that may have changed since).
        if (!resumed_meta->mean.empty()) {
            folder_options.mean = resumed_meta->mean;
            folder_options.std = resumed_meta->std;
        }
    }
    const DatasetPair data = load_dataset(cfg.dataset, cfg.data_dir, folder_options);
    const ImageDataset train = stratified_subset(data.train, cfg.train_fraction, cfg.subset_seed);
    if (resumed_meta) check_same_classes(resume_from, resumed_meta->class_names, train);
    at::manual_seed(cfg.seed);  // same seed, same initial student (and data order, via the loader)
    ModelHandle student = build_model(cfg.model, train.channels(), train.height(), train.width(), train.num_classes);
    ModelHandle teacher;
    const bool distill = objectives->needs_teacher();
    if (distill) {
        teacher = load_teacher(cfg.teacher, train.channels(), train.height(), train.width(), train.num_classes);
        check_same_classes(cfg.teacher, teacher.class_names, train);
        move_to(teacher, device);  // the cache below is filled there
    }
    RunResult result;
    at::Tensor cached_logits;
    if (distill && cfg.teacher_cache && !cfg.augment && !objectives->teacher_taps().any()) {
        const std::string cache_dir =
            cfg.cache_dir.empty() ? (fs::path(cfg.out).parent_path() / "cache").string() : cfg.cache_dir;
        // Data-parallel: the lead fills the cache, then the others read it.
        if (!lead) barrier(ranks);
        TeacherLogits tl = teacher_logits_for(teacher, cfg.teacher, train, cache_dir, cfg.progress,
                                              loader_workers_for(cfg), cfg.skip_bad_images);
        if (lead) barrier(ranks);
        cached_logits = tl.logits;
        result.teacher_logits_cached = tl.from_cache;
    }
    PrepareContext context;
    context.num_samples = train.size();
    context.num_classes = train.num_classes;
    context.teacher_name = cfg.teacher;
    StepEngineOptions engine_options;
    engine_options.optimizer = optimizer_config_for(cfg);
    engine_options.backend = backend;
    engine_options.kd = kd_options_for(cfg);
    engine_options.collective = ranks;
    engine_options.device = device;
    StepEngine engine(std::move(student), std::move(teacher), std::move(objectives), std::move(policy),
                      probe_images(train, cfg.skip_bad_images), context, engine_options);
    if (cached_logits.defined()) engine.use_cached_teacher_logits(cached_logits);
    const std::unique_ptr<BatchLoader> train_loader = train_loader_for(cfg, train, engine.objectives(), device, ranks);
    BatchLoader &loader = *train_loader;
    const int64_t steps_per_epoch = loader.batches_per_epoch();
    const int64_t total_steps =
        cfg.max_steps > 0 ? std::min(cfg.max_steps, steps_per_epoch * cfg.epochs) : steps_per_epoch * cfg.epochs;

    LoopState loop;
    if (resume) {
        CheckpointEntries state;
        const CheckpointMeta meta = load_checkpoint(resume_from, *engine.student().module, &state);
        try {
            engine.load_state(state);
        } catch (const std::exception &e) {
            throw std::runtime_error(resume_from + ": " + e.what());
        }
        loop = loop_state_from(state, resume_from);
        if (loop.batch >= steps_per_epoch && loop.batch > 0)
            throw std::runtime_error(resume_from + ": stopped at batch " + std::to_string(loop.batch) +
                                     " of an epoch that has " + std::to_string(steps_per_epoch) +
                                     " (another dataset or batch size?)");
        const bool finished = fs::path(resume_from).parent_path() == fs::path(cfg.out);
        if (finished && loop.step >= total_steps)
            throw std::invalid_argument(cfg.out + ": the run is complete (" + std::to_string(meta.epoch) +
                                        " epochs, " + std::to_string(loop.step) +
                                        " steps); to train it further pass --epochs N with N > " +
                                        std::to_string(meta.epoch));
    }

    barrier(ranks);  // every rank has read the checkpoint before the lead takes the folder
    std::optional<RunFolder> folder;
    std::optional<MetricsLog> metrics;
    if (lead) {
        folder.emplace(cfg.out, resume ? RunFolder::Open::resume : RunFolder::Open::create);
        write_file_atomic(folder->path("config.toml"), resolved_config);
        metrics.emplace(folder->path("metrics.jsonl"), resume ? loop.metrics_bytes : -1);
    }
    auto append_metrics = [&](const Json &line) {
        if (metrics) metrics->append(line);
    };

    NonFiniteGuard guard(cfg.skip_limit);
    StepStatsWindow window(engine.objectives().names());
    if (resume) {
        guard.restore(loop.guard_consecutive, loop.guard_total);
        window.restore(loop.window);
        set_cpu_rng_state(loop.rng_state);  // last: nothing above may draw from it
        // A GPU's generator only when resuming on a GPU (a run started on the CPU has none).
        if (device.is_cuda() && loop.device_rng_state.defined()) set_device_rng_state(device, loop.device_rng_state);
    }
    ProgressLine progress(cfg.progress, cfg.method, cfg.epochs, total_steps, loop.step, engine.objectives().names());
    const auto run_start = Clock::now();
    const double seconds_before = loop.seconds;
    const int64_t steps_before = loop.step;

    // Everything the rest of the run depends on, after the metrics it has written so far.
    auto save_checkpoint_now = [&] {
        if (!lead) return;
        loop.metrics_bytes = metrics->sync();
        loop.window = window.state();
        loop.guard_consecutive = guard.consecutive_skipped();
        loop.guard_total = guard.total_skipped();
        loop.seconds = seconds_before + since(run_start);
        loop.rng_state = cpu_rng_state();
        loop.device_rng_state = device.is_cuda() ? device_rng_state(device) : at::Tensor();
        CheckpointMeta meta;
        meta.model_name = cfg.model;
        meta.num_classes = train.num_classes;
        meta.in_channels = train.channels();
        meta.height = train.height();
        meta.width = train.width();
        meta.epoch = int64_t(loop.epochs.size());
        meta.step = loop.step;
        meta.config = resolved_config;
        meta.optimizer_kind = cfg.optimizer;
        meta.kernels = cfg.kernels;
        meta.device = device_name(device);
        meta.optimizer_steps = engine.optimizer().steps_taken();
        if (train.files) {
            meta.class_names = train.class_names;
            meta.mean = train.mean;
            meta.std = train.std;
        }
        CheckpointEntries entries = engine.state();
        for (auto &e : loop_state_entries(loop)) entries.push_back(std::move(e));
        save_checkpoint(folder->path("checkpoint.pt"), *engine.student().module, meta, entries);
    };

    for (int epoch = loop.epoch; epoch < cfg.epochs && loop.step < total_steps; epoch++) {
        const double lr = scheduled_lr(cfg.schedule, cfg.lr, epoch, cfg.epochs, cfg.milestones, cfg.gamma);
        engine.set_lr(lr);
        const auto epoch_start = Clock::now();
        const double wait_before = loader.wait_seconds();
        int64_t images = 0;
        loader.start_epoch(epoch, loop.batch);
        loop.epoch = epoch;
        engine.set_train(true);
        while (loop.step < total_steps) {
            std::optional<Batch> batch = loader.next();
            if (!batch) break;
            // On the CPU these are the batch's own tensors; on a GPU, copies queued on its stream.
            auto on_device = [&](const at::Tensor &t) { return t.defined() ? t.to(device, true) : t; };
            const at::Tensor batch_images = on_device(batch->images);
            const BatchTargets targets{on_device(batch->labels), on_device(batch->indices),
                                       on_device(batch->contrast_indices), epoch};
            NetOutputs teacher_out = engine.teacher_outputs(batch_images, targets.indices);
            // The step time covers the student forward (run when the batch is made) too.
            const auto step_start = Clock::now();
            StepStats s = engine.step(batch_images, std::move(teacher_out), targets, loop.step);
            s.seconds = since(step_start);
            guard.record(s);
            window.add(s);
            loop.step_seconds_sum += s.seconds;
            images += batch->labels.numel() * (ranks ? ranks->world_size() : 1);
            loop.step++;
            loop.batch++;
            if (window.count() >= cfg.log_interval) {
                append_metrics(train_line(epoch, lr, window, loop.step));
                window.clear();
            }
            progress.step(epoch, loop.step, s, double(images) / since(epoch_start));
            kill_if_requested_after_step(loop.step);
            // Mid-epoch checkpoints; the epoch's last step is followed by the epoch's own.
            if (cfg.checkpoint_every > 0 && loop.step % cfg.checkpoint_every == 0 && loop.batch < steps_per_epoch &&
                loop.step < total_steps)
                save_checkpoint_now();
        }
        if (window.count() > 0) {
            append_metrics(train_line(epoch, lr, window, loop.step));
            window.clear();
        }
        EpochResult er;
        er.epoch = epoch;
        er.lr = lr;
        er.seconds = since(epoch_start);  // a resumed epoch: its part in this process
        er.images_per_second = double(images) / er.seconds;
        er.data_wait_fraction = (loader.wait_seconds() - wait_before) / er.seconds;
        er.test_accuracy = accuracy(engine.student(), data.test, ranks, loader_workers_for(cfg), cfg.skip_bad_images);
        loop.epochs.push_back(er);
        if (er.test_accuracy > loop.best_test_accuracy || loop.best_epoch < 0) {
            loop.best_test_accuracy = er.test_accuracy;
            loop.best_epoch = epoch;
        }
        append_metrics(epoch_line(er, loop.step));
        progress.epoch_done(er);
        loop.epoch = epoch + 1;
        loop.batch = 0;
        save_checkpoint_now();
    }
    result.epochs = loop.epochs;
    result.best_test_accuracy = loop.best_test_accuracy;
    result.best_epoch = loop.best_epoch;
    result.steps = loop.step;
    result.skipped_steps = guard.total_skipped();
    result.seconds = seconds_before + since(run_start);
    result.mean_step_seconds = loop.step > 0 ? loop.step_seconds_sum / double(loop.step) : 0;
    result.final_test_accuracy = loop.epochs.empty() ? 0 : loop.epochs.back().test_accuracy;
    result.resumed = resume;
    result.device = device_name(device);
    if (resumed_meta) result.resumed_from_device = resumed_meta->device;
    result.ranks = ranks ? ranks->world_size() : 1;
    result.train_samples = train.size();
    if (train.files) {
        result.class_names = train.class_names;
        result.mean = train.mean;
        result.std = train.std;
        // Left out when listed, and (this rank's) files that failed to decode while training.
        std::set<std::string> bad(train.left_out.begin(), train.left_out.end());
        bad.insert(data.test.left_out.begin(), data.test.left_out.end());
        for (const std::string &b : loader.bad_images()) bad.insert(b);
        result.bad_images.assign(bad.begin(), bad.end());
    }
    // Everything this rank summed or broadcast (steps, evaluations, barriers) per step taken here.
    if (ranks && loop.step > steps_before)
        result.collective_bytes_per_step = double(ranks->bytes()) / double(loop.step - steps_before);
    if (lead) {
        metrics->sync();
        write_file_atomic(folder->path("summary.json"), summary_json(cfg, result) + "\n");
        folder->finish();
    }
    barrier(ranks);  // no rank reports success before the run is complete on disk
    result.run_dir = cfg.out;
    return result;
}

std::string summary_json(const TrainConfig &cfg, const RunResult &r) {
    Json j = {{"model", cfg.model},
                    {"method", cfg.method},
                    {"dataset", cfg.dataset},
                    {"epochs", r.epochs.size()},
                    {"steps", r.steps},
                    {"final_test_accuracy", r.final_test_accuracy},
                    {"best_test_accuracy", r.best_test_accuracy},
                    {"best_epoch", r.best_epoch},
                    {"seconds", r.seconds},
                    {"mean_step_seconds", r.mean_step_seconds},
                    {"skipped_steps", r.skipped_steps},
                    {"teacher_logits_cached", r.teacher_logits_cached},
                    {"resumed", r.resumed},
                    {"device", r.device},
                    {"ranks", r.ranks},
                    {"collective_bytes_per_step", r.collective_bytes_per_step},
                    {"train_samples", r.train_samples}};
    if (!r.class_names.empty()) {
        j["classes"] = r.class_names;
        j["normalization"] = {{"mean", r.mean}, {"std", r.std}};
        j["bad_images"] = {{"count", r.bad_images.size()}, {"files", r.bad_images}};
    }
    if (!r.resumed_from_device.empty() && r.resumed_from_device != r.device)
        j["resumed_from_device"] = r.resumed_from_device;
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

double evaluate_checkpoint(const std::string &checkpoint, const TrainConfig &cfg) {
    ImageFolderOptions folder_options = folder_options_for(cfg);
    CheckpointMeta meta;
    if (is_dtokd_checkpoint(checkpoint)) {
        // A model trained on an image folder is evaluated with its own input size,
        // channels, normalization and crop (statistics of the evaluation set would differ).
        meta = read_checkpoint_meta(checkpoint);
        if (!meta.mean.empty()) {
            folder_options.image_size = int(meta.height);
            folder_options.channels = int(meta.in_channels);
            folder_options.mean = meta.mean;
            folder_options.std = meta.std;
            if (const auto fraction = config_number(meta.config, "center-crop-fraction"))
                folder_options.center_crop_fraction = *fraction;
        }
    }
    const DatasetPair data = load_dataset(cfg.dataset, cfg.data_dir, folder_options);
    check_same_classes(checkpoint, meta.class_names, data.test);
    const at::Device device = parse_device(cfg.device);
    check_device_usable(device);
    ModelHandle model = load_teacher(checkpoint, data.test.channels(), data.test.height(), data.test.width(),
                                    data.test.num_classes);
    move_to(model, device);
    return accuracy(model, data.test, nullptr, loader_workers_for(cfg), cfg.skip_bad_images);
}

}  // namespace dtokd
