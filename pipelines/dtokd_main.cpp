// The dtokd command line: train | distill | eval | plot | export | info | autotune, and the default
// job (no subcommand). Options come from a TOML config file (--config, read with
// toml++; unknown keys and wrong types are errors naming the key) overridden by
// flags. Only main() decides exit codes: every library error is one exception
// with a clear message, printed once, exit code 1. Every command except autotune
// first loads the kernel tuning file (--tuning); a bad one is one warning, not an error.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "build_info.h"
#include "c10d_collective.h"
#include "cli_options.h"
#include "config_file.h"
#include "config_toml.h"
#include "default_job.h"
#include "export_command.h"
#include "kernel_autotune.h"
#include "kernel_selection.h"
#include "tuning_file.h"
#include "device.h"
#include "kernels.h"
#include "host_allocator.h"
#include "launch_env.h"
#include "local_ranks.h"
#include "plot_command.h"
#include "process_group.h"
#include "rank_agreement.h"
#include "threads.h"
#include "train_config.h"
#include "trainer.h"

namespace {

using dtokd::TrainConfig;

// "128x10,64x100" -> {(128, 10), (64, 100)}.
std::vector<std::pair<int64_t, int64_t>> parse_kd_shapes(const std::string &text) {
    std::vector<std::pair<int64_t, int64_t>> shapes;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        long long batch = 0, classes = 0;
        char x = 0, extra = 0;
        if (std::sscanf(item.c_str(), "%lld%c%lld%c", &batch, &x, &classes, &extra) != 3 || x != 'x' || batch < 1 ||
            classes < 1)
            throw std::invalid_argument("--kd-shapes: '" + item + "' is not BATCHxCLASSES (e.g. 128x10)");
        shapes.emplace_back(batch, classes);
    }
    if (shapes.empty()) throw std::invalid_argument("--kd-shapes is empty; expected e.g. 128x10,64x100");
    return shapes;
}

// The tuned kernel schedules, if any. A missing file at the default place is normal
// (never tuned); one named by --tuning or $DTOKD_TUNING that is missing gets a warning.
void load_kernel_tuning(const std::string &tuning_flag) {
    const bool named = !tuning_flag.empty() || std::getenv("DTOKD_TUNING") != nullptr;
    const std::string path = tuning_flag.empty() ? dtokd::default_tuning_path() : tuning_flag;
    if (path.empty()) return;
    const dtokd::TuningLoadResult r = dtokd::load_tuning_file(path);
    using Status = dtokd::TuningLoadResult::Status;
    if (r.status == Status::ignored || (r.status == Status::missing && named))
        std::cerr << "dtokd: warning: " << r.message << "\n";
}

int run_autotune(const dtokd::AutotuneOptions &options, std::string out) {
    if (out.empty()) out = dtokd::default_tuning_path();
    if (out.empty()) throw std::invalid_argument("autotune: no --out given and no $HOME for the default path");
    const auto results =
        dtokd::autotune_kernels(options, [](const std::string &line) { std::cerr << line << std::endl; });
    std::cout << dtokd::format_autotune_report(results);
    dtokd::save_tuning_file(out, dtokd::tuning_choices(results));
    std::cerr << "tuning written to " << out << "\n";
    return 0;
}

int run(int argc, char **argv) {
    const std::vector<std::string> args(argv, argv + argc);
    CLI::App app{"dtokd: knowledge distillation with DTO-KD (Halide kernels + LibTorch).\n"
                 "Without a subcommand it runs the default job: a Fashion-MNIST teacher, then a\n"
                 "DTO-KD student, and a table of their test accuracies."};
    app.require_subcommand(0, 1);
    int threads = 0;
    std::string kernels = "halide";
    app.add_option("--threads", threads, "LibTorch and Halide threads (0 = $DTOKD_THREADS or all)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--kernels", kernels, "halide | torch")->capture_default_str();
    std::string device = "cpu";
    app.add_option("--device", device,
                   "train/distill/eval and the default job: cpu | cuda | cuda:N (needs a CUDA LibTorch; "
                   "`dtokd info` shows the GPUs)")
        ->capture_default_str();
    std::string tuning;
    app.add_option("--tuning", tuning,
                   "kernel schedule choices written by `dtokd autotune` (default: $DTOKD_TUNING, else "
                   "$XDG_CACHE_HOME/dtokd/tuning.json or ~/.cache/dtokd/tuning.json)");
    int nproc = 0;
    app.add_option("--nproc", nproc,
                   "train/distill: start N data-parallel ranks on this machine (torchrun's variables "
                   "are set for them; under torchrun leave it out)")
        ->check(CLI::PositiveNumber);
    int dist_timeout = 300;
    app.add_option("--dist-timeout", dist_timeout,
                   "data-parallel: seconds a rank waits for the others (rendezvous, each collective) "
                   "before it stops with an error")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    std::string root = "runs/default";
    app.add_option("--root", root, "default job: its run folder")->capture_default_str();

    TrainConfig train_cfg, distill_cfg, eval_cfg;
    std::string train_config_file, distill_config_file, train_resume, distill_resume;
    train_cfg.model = "cnn_large";
    CLI::App *train = app.add_subcommand("train", "Train a zoo model with cross-entropy (teacher / student alone)");
    dtokd::add_common_options(train, train_cfg, train_config_file, &train_resume);

    CLI::App *distill = app.add_subcommand("distill", "Distill a student from a teacher");
    distill_cfg.method = "dto";
    dtokd::add_common_options(distill, distill_cfg, distill_config_file, &distill_resume);
    add_distill_options(distill, distill_cfg);

    CLI::App *eval = app.add_subcommand("eval", "Test accuracy of a checkpoint or TorchScript model");
    std::string checkpoint;
    eval->add_option("checkpoint", checkpoint, "dtokd checkpoint or TorchScript file")->required();
    // A dtokd checkpoint trained on an image folder brings its own input size, channels,
    // normalization and evaluation crop; the folder options are for other models.
    dtokd::add_data_options(eval, eval_cfg);

    CLI::App *plot = app.add_subcommand(
        "plot", "PNG plots of runs: accuracy, losses, pi, gradient conflict (RUN/plots/; several runs also overlaid)");
    std::vector<std::string> plot_runs;
    std::string plot_out = "plots";
    plot->add_option("runs", plot_runs, "run folders (their --out)")->required();
    plot->add_option("--out", plot_out, "folder for the overlay of several runs")->capture_default_str();

    CLI::App *export_cmd = app.add_subcommand(
        "export", "Write a run's student for PyTorch: a state_dict (torch.load + load_state_dict) or TorchScript");
    dtokd::ExportOptions export_opts;
    export_cmd->add_option("run", export_opts.run, "run folder (its final checkpoint.pt) or a dtokd checkpoint file")
        ->required();
    export_cmd->add_option("--out", export_opts.out, "file to write (e.g. student.pth)")->required();
    export_cmd
        ->add_option("--format", export_opts.format,
                     "pytorch: a state_dict whose keys are those of the zoo's PyTorch code (dtokd_zoo.py beside "
                     "dtokd; RepDistiller/mdistiller for CIFAR models) | torchscript: the scripted model (needs "
                     "python3-torch)")
        ->check(CLI::IsMember({"pytorch", "torchscript"}))
        ->capture_default_str();
    export_cmd->add_flag("--force", export_opts.force, "replace --out if it exists (default: refuse)");

    CLI::App *info = app.add_subcommand("info", "Print kernel targets, threads, versions and CPU features");

    CLI::App *autotune = app.add_subcommand(
        "autotune", "Time every schedule variant of each Halide kernel here; write the fastest to the tuning file");
    dtokd::AutotuneOptions tune;
    std::string tune_out, kd_shapes = "128x10,64x100";
    autotune->add_option("--out", tune_out, "tuning file to write (default: the --tuning path)");
    autotune->add_option("--sizes", tune.flat_sizes, "elements per tensor for log_gram and the optimizer updates")
        ->delimiter(',')
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    autotune->add_option("--kd-shapes", kd_shapes, "kd_loss logit shapes BATCHxCLASSES,...")->capture_default_str();
    autotune->add_option("--repeats", tune.repeats, "timed rounds per size (median)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    autotune->add_option("--min-gain", tune.min_gain, "least speedup over the default that replaces it")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    double batch_ms = tune.min_batch_seconds * 1e3;
    autotune->add_option("--batch-ms", batch_ms, "length of one timed batch of calls")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return app.exit(e);
    }

    const bool training = train->parsed() || distill->parsed();
    if (nproc > 0 && !training) throw std::invalid_argument("--nproc applies to train and distill only");
    // Data-parallel: torchrun's variables (or our own launcher's) make this process a rank.
    const dtokd::LaunchEnv env = training ? dtokd::launch_env() : dtokd::LaunchEnv{};
    if (nproc > 0 && env.distributed() && std::getenv(dtokd::kLocalLaunchVariable) == nullptr)
        throw std::invalid_argument("--nproc starts its own ranks, but RANK and WORLD_SIZE are set (torchrun?): "
                                    "use one of the two");
    // The device, checked before any rank starts or any file is read (info, plot, export
    // and autotune run on the CPU whatever --device says).
    try {
        const at::Device parsed = dtokd::parse_device(device);
        if (training || eval->parsed() || app.get_subcommands().empty()) {
            dtokd::check_device_usable(parsed);
            dtokd::check_device_for_ranks(parsed, std::max(nproc, env.world_size));
        }
    } catch (const std::invalid_argument &e) {
        throw std::invalid_argument(std::string("--device: ") + e.what());
    }
    if (nproc > 1 && !env.distributed())
        return dtokd::run_local_ranks(nproc, args, std::chrono::seconds(15));
    // Threads per rank: the cores shared by the ranks on this machine.
    if (threads == 0 && env.distributed() && std::getenv("DTOKD_THREADS") == nullptr)
        threads = std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, env.local_world_size));
    dtokd::configure_host_allocator();
    dtokd::configure_threads(threads);
    dtokd::parse_kernel_backend(kernels);  // validate early
    if (autotune->parsed()) {
        tune.kd_shapes = parse_kd_shapes(kd_shapes);
        tune.min_batch_seconds = batch_ms * 1e-3;
        return run_autotune(tune, tune_out.empty() ? tuning : tune_out);
    }
    load_kernel_tuning(tuning);
    if (plot->parsed()) {
        dtokd::plot_runs(plot_runs, plot_out, args[0]);
        return 0;
    }
    if (export_cmd->parsed()) {
        const dtokd::ExportResult r = dtokd::export_student(export_opts, args[0]);
        std::cout << "wrote " << export_opts.out << ": " << export_opts.format << " " << r.meta.model_name << " ("
                  << r.meta.num_classes << " classes, input " << r.meta.in_channels << "x" << r.meta.height << "x"
                  << r.meta.width << ", " << r.tensors << " state_dict tensors) from " << r.checkpoint << "\n";
        if (export_opts.format == "pytorch")
            std::cout << "load it with: model = dtokd_zoo.build(\"" << r.meta.model_name << "\", num_classes="
                      << r.meta.num_classes << ", in_channels=" << r.meta.in_channels
                      << "); model.load_state_dict(torch.load(\"" << export_opts.out << "\"))\n";
        // An image-folder student: what a user's inference code must reproduce (also in
        // the run's summary.json): the label order and the input normalization.
        if (!r.meta.class_names.empty()) {
            auto list = [](const auto &items) {
                std::ostringstream os;
                for (size_t i = 0; i < items.size(); i++) os << (i ? ", " : "") << items[i];
                return os.str();
            };
            std::cout << "classes (label order): " << list(r.meta.class_names) << "\n"
                      << "inputs: " << r.meta.height << "x" << r.meta.width << ", pixels / 255 normalized with mean ["
                      << list(r.meta.mean) << "] std [" << list(r.meta.std) << "]\n";
        }
        return 0;
    }
    if (info->parsed()) {
        std::cout << dtokd::format_build_info(dtokd::build_info());
        return 0;
    }
    if (train->parsed() || distill->parsed()) {
        TrainConfig &cfg = train->parsed() ? train_cfg : distill_cfg;
        CLI::App *sub = train->parsed() ? train : distill;
        cfg.kernels = kernels;
        cfg.device = device;
        cfg.threads = threads;
        const std::string &config_file = train->parsed() ? train_config_file : distill_config_file;
        std::string resume = train->parsed() ? train_resume : distill_resume;
        if (!resume.empty()) {
            // RUN, RUN/ or RUN.partial: the run's own config.toml is the config; flags win.
            while (resume.size() > 1 && resume.back() == '/') resume.pop_back();
            const std::string suffix = ".partial";
            if (resume.size() > suffix.size() && resume.compare(resume.size() - suffix.size(), suffix.size(), suffix) == 0)
                resume.resize(resume.size() - suffix.size());
            if (!config_file.empty())
                throw std::invalid_argument("--resume reads the run's own config.toml; pass either --config or --resume");
            if (!cfg.out.empty() && cfg.out != resume)
                throw std::invalid_argument("--out " + cfg.out + " and --resume " + resume + " name different runs");
            dtokd::apply_config_file(*sub, dtokd::run_config_path(resume));
            cfg.out = resume;
        } else if (!config_file.empty()) {
            dtokd::apply_config_file(*sub, config_file);
        }
        if (train->parsed()) cfg.method = "ce";
        const std::string resolved = dtokd::resolved_config_toml(*sub, cfg);
        std::unique_ptr<dtokd::Collective> ranks;
        if (env.distributed()) {
            const std::chrono::milliseconds timeout(int64_t(dist_timeout) * 1000);
            auto store = dtokd::make_rendezvous_store(env, timeout);
            dtokd::check_ranks_agree(*store, env, resolved);
            // Loopback rendezvous (one machine): Gloo's pairs on loopback too.
            const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
            ranks = dtokd::make_c10d_collective(
                dtokd::make_gloo_group(store, env.rank, env.world_size, timeout, loopback ? "127.0.0.1" : ""));
        }
        const dtokd::RunResult r = dtokd::run_training(
            cfg, resolved, resume.empty() ? dtokd::RunStart::fresh : dtokd::RunStart::resume, ranks.get());
        if (env.rank == 0) {
            std::cout << dtokd::summary_json(cfg, r) << "\n";
            std::cerr << "run written to " << r.run_dir << "\n";
        }
        return 0;
    }
    if (eval->parsed()) {
        eval_cfg.device = device;
        const double acc = dtokd::evaluate_checkpoint(checkpoint, eval_cfg);
        std::cout << "test accuracy " << acc << "\n";
        return 0;
    }
    dtokd::DefaultJobOptions job;
    job.root = root;
    job.kernels = kernels;
    job.device = device;
    return dtokd::run_default_job(job);
}

}  // namespace

int main(int argc, char **argv) {
    // A write past the file-size limit (ulimit -f) then fails with EFBIG, which the
    // writers report as one error naming the file, instead of killing the process.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::cerr << "dtokd: error: " << e.what() << "\n";
        return 1;
    }
}
