// See progress_line.h.
#include "progress_line.h"

#include <unistd.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace dtokd {

std::string format_eta(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    std::ostringstream os;
    const int s = int(seconds);
    if (s >= 3600) os << s / 3600 << "h";
    if (s >= 60) os << (s / 60) % 60 << "m";
    os << s % 60 << "s";
    return os.str();
}

ProgressLine::ProgressLine(bool enabled, std::string method, int epochs, int64_t total_steps, int64_t first_step,
                           std::vector<std::string> objective_names)
    : enabled_(enabled),
      live_(enabled && isatty(STDERR_FILENO)),  // the \r line only on a terminal
      method_(std::move(method)),
      epochs_(epochs),
      total_steps_(total_steps),
      first_step_(first_step),
      names_(std::move(objective_names)),
      start_(Clock::now()),
      last_(Clock::now()) {}

void ProgressLine::step(int epoch, int64_t steps_done, const StepStats &s, double epoch_images_per_second) {
    if (!live_ || std::chrono::duration<double>(Clock::now() - last_).count() <= 0.5) return;
    last_ = Clock::now();
    const double elapsed = std::chrono::duration<double>(last_ - start_).count();
    const double rate = double(steps_done - first_step_) / elapsed;  // steps/s in this process
    std::ostringstream line;
    line << std::fixed << std::setprecision(3) << "\r" << method_ << " epoch " << epoch + 1 << "/" << epochs_
         << " step " << steps_done << "/" << total_steps_ << " ETA "
         << format_eta(double(total_steps_ - steps_done) / rate);
    for (int k = 0; k < s.objectives; k++) line << " L_" << names_[size_t(k)] << " " << s.loss[size_t(k)];
    line << " pi " << std::setprecision(2);
    for (int k = 0; k < s.objectives; k++) line << (k ? "/" : "") << s.pi[size_t(k)];
    line << " " << std::setprecision(0) << epoch_images_per_second << " img/s   ";
    std::cerr << line.str() << std::flush;
}

void ProgressLine::epoch_done(const EpochResult &r) {
    if (!enabled_) return;
    std::cerr << "\r" << method_ << " epoch " << r.epoch + 1 << "/" << epochs_ << ": test accuracy " << std::fixed
              << std::setprecision(4) << r.test_accuracy << " (" << std::setprecision(1) << r.seconds
              << " s, data wait " << std::setprecision(2) << 100 * r.data_wait_fraction
              << "%)                                   \n";
}

}  // namespace dtokd
