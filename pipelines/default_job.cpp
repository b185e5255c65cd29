// See default_job.h.
#include "default_job.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "config_toml.h"
#include "run_folder.h"
#include "trainer.h"

namespace dtokd {

namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string &path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A number from a run's summary.json; one error naming the file when it is not there.
double summary_number(const std::string &json, const std::string &key, const std::string &file) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::exception &) {
        j = nullptr;  // not JSON (or a number out of range): the error below names the file
    }
    if (!j.is_object() || !j.contains(key) || !j[key].is_number())
        throw std::runtime_error(file + ": no number '" + key + "' in the run summary (a corrupt summary.json?)");
    return j[key].get<double>();
}

struct StageResult {
    double accuracy = 0, seconds = 0;
    bool reused = false;
};

StageResult run_stage(const TrainConfig &cfg, const std::string &label) {
    StageResult r;
    const std::string summary = cfg.out + "/summary.json";
    if (fs::exists(summary) && fs::exists(cfg.out + "/checkpoint.pt")) {
        const std::string json = slurp(summary);
        r.accuracy = summary_number(json, "final_test_accuracy", summary);
        r.seconds = summary_number(json, "seconds", summary);
        r.reused = true;
        std::cerr << label << ": reusing " << cfg.out << "\n";
        return r;
    }
    // The default job owns its stage folders: an interrupted stage runs again from the start.
    if (RunFolder::partial_state(cfg.out) == RunFolder::Partial::stale) {
        std::cerr << label << ": removing " << cfg.out << ".partial, left by an interrupted run, to run it again\n";
        fs::remove_all(cfg.out + ".partial");
    }
    std::cerr << label << ": " << cfg.model << " (" << cfg.method << ", " << cfg.epochs << " epochs) -> " << cfg.out
              << "\n";
    const RunResult run = run_training(cfg, config_toml(cfg, "dtokd default job: resolved options"));
    r.accuracy = run.final_test_accuracy;
    r.seconds = run.seconds;
    return r;
}

}  // namespace

int run_default_job(const DefaultJobOptions &o) {
    const auto t0 = std::chrono::steady_clock::now();
    fs::create_directories(o.root);

    TrainConfig base;
    base.dataset = "fashion-mnist";
    base.kernels = o.kernels;
    base.device = o.device;
    base.batch_size = 128;
    base.lr = 0.05;
    base.schedule = "cosine";
    base.seed = 0;
    base.log_interval = 50;

    TrainConfig teacher = base;
    teacher.model = o.teacher_model;
    teacher.method = "ce";
    teacher.epochs = o.teacher_epochs;
    teacher.out = o.root + "/teacher";

    TrainConfig student_ce = base;
    student_ce.model = o.student_model;
    student_ce.method = "ce";
    student_ce.epochs = o.student_epochs;
    student_ce.out = o.root + "/student-ce";

    TrainConfig student_dto = student_ce;
    student_dto.method = "dto";
    student_dto.teacher = teacher.out + "/checkpoint.pt";
    student_dto.out = o.root + "/student-dto";

    const StageResult t = run_stage(teacher, "teacher");
    const StageResult ce = run_stage(student_ce, "student alone");
    const StageResult dto = run_stage(student_dto, "student DTO-KD");

    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "\nFashion-MNIST test accuracy (runs in " << o.root << ")\n";
    std::cout << std::left << std::setw(28) << "model" << std::setw(10) << "method" << std::right << std::setw(10)
              << "accuracy" << std::setw(12) << "train time" << "\n";
    auto row = [](const std::string &who, const std::string &method, const StageResult &r) {
        std::cout << std::left << std::setw(28) << who << std::setw(10) << method << std::right << std::fixed
                  << std::setprecision(2) << std::setw(9) << 100 * r.accuracy << "%" << std::setw(11)
                  << std::setprecision(0) << r.seconds << "s" << (r.reused ? "  (reused)" : "") << "\n";
    };
    row("teacher " + o.teacher_model, "ce", t);
    row("student " + o.student_model, "ce", ce);
    row("student " + o.student_model, "dto", dto);
    std::cout << "total " << std::fixed << std::setprecision(0) << total << " s\n";
    return 0;
}

}  // namespace dtokd
