// Learning-rate schedules, per epoch: step (x gamma at each milestone, the CIFAR
// recipe), cosine (to 0 at the last epoch), constant.
#pragma once
#include <string>
#include <vector>

namespace dtokd {

// Throws std::invalid_argument for an unknown schedule name.
double scheduled_lr(const std::string &schedule, double base_lr, int epoch, int epochs,
                    const std::vector<int> &milestones, double gamma);

}  // namespace dtokd
