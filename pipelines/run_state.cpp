// See run_state.h.
#include "run_state.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "tensor_doubles.h"

#include <map>
#include <mutex>
#include <stdexcept>

namespace dtokd {

namespace {

constexpr int kEpochFields = 6;  // EpochResult, in declaration order

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> loop_state_entries(const LoopState &s) {
    std::vector<double> epochs;
    for (const EpochResult &e : s.epochs)
        epochs.insert(epochs.end(),
                      {double(e.epoch), e.lr, e.test_accuracy, e.seconds, e.images_per_second, e.data_wait_fraction});
    // Counts as int64 (exact), measurements as float64.
    const at::Tensor counts = at::tensor(std::vector<int64_t>{s.epoch, s.batch, s.step, s.best_epoch,
                                                              s.guard_consecutive, s.guard_total, s.metrics_bytes},
                                         at::kLong);
    std::vector<std::pair<std::string, at::Tensor>> out = {
        {"loop/counts", counts},
        {"loop/measures", doubles_to_tensor({s.best_test_accuracy, s.seconds, s.step_seconds_sum})},
        {"loop/epochs", doubles_to_tensor(epochs)},
        {"loop/window", doubles_to_tensor(s.window)},
        {"loop/rng", s.rng_state}};
    if (s.device_rng_state.defined()) out.emplace_back("loop/device_rng", s.device_rng_state);
    return out;
}

LoopState loop_state_from(const std::vector<std::pair<std::string, at::Tensor>> &entries, const std::string &path) {
    std::map<std::string, at::Tensor> e;
    for (const auto &[k, t] : entries) e[k] = t;
    for (const char *key : {"loop/counts", "loop/measures", "loop/epochs", "loop/window", "loop/rng"})
        if (!e.count(key))
            throw std::runtime_error(path + ": has no '" + key + "' (a checkpoint written before dtokd could "
                                     "resume runs, or not a training checkpoint); it cannot be resumed");
    LoopState s;
    const at::Tensor counts = e["loop/counts"].to(at::kLong).contiguous();
    const std::vector<double> measures = tensor_to_doubles(e["loop/measures"]), epochs = tensor_to_doubles(e["loop/epochs"]);
    if (counts.numel() != 7 || measures.size() != 3 || epochs.size() % kEpochFields != 0)
        throw std::runtime_error(path + ": the loop state has an unexpected layout; it cannot be resumed");
    const int64_t *c = counts.data_ptr<int64_t>();
    s.epoch = int(c[0]);
    s.batch = c[1];
    s.step = c[2];
    s.best_epoch = int(c[3]);
    s.guard_consecutive = int(c[4]);
    s.guard_total = c[5];
    s.metrics_bytes = c[6];
    s.best_test_accuracy = measures[0];
    s.seconds = measures[1];
    s.step_seconds_sum = measures[2];
    for (size_t i = 0; i < epochs.size(); i += kEpochFields)
        s.epochs.push_back(EpochResult{int(epochs[i]), epochs[i + 1], epochs[i + 2], epochs[i + 3], epochs[i + 4],
                                       epochs[i + 5]});
    s.window = tensor_to_doubles(e["loop/window"]);
    s.rng_state = e["loop/rng"];
    if (e.count("loop/device_rng")) s.device_rng_state = e["loop/device_rng"];  // GPU runs only
    return s;
}

at::Tensor cpu_rng_state() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
}

void set_cpu_rng_state(const at::Tensor &state) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
}

at::Tensor device_rng_state(const at::Device &device) {
    at::Generator gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
}

void set_device_rng_state(const at::Device &device, const at::Tensor &state) {
    at::Generator gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
}

}  // namespace dtokd
