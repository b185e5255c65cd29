// See lr_schedule.h.
#include "lr_schedule.h"

#include <cmath>
#include <stdexcept>

namespace dtokd {

double scheduled_lr(const std::string &schedule, double base_lr, int epoch, int epochs,
                    const std::vector<int> &milestones, double gamma) {
    if (schedule == "constant") return base_lr;
    if (schedule == "step") {
        double lr = base_lr;
        for (int m : milestones)
            if (epoch >= m) lr *= gamma;
        return lr;
    }
    if (schedule == "cosine") {
        if (epochs <= 1) return base_lr;
        return 0.5 * base_lr * (1 + std::cos(M_PI * double(epoch) / double(epochs)));
    }
    throw std::invalid_argument("schedule '" + schedule + "' is unknown; expected cosine, step or constant");
}

}  // namespace dtokd
