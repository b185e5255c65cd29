// The loss ramp of DKD and ReviewKD as mdistiller applies it: the loss is scaled by
// min(epoch / warmup_epochs, 1) with a 1-based epoch, so 1/20 in the first epoch and
// 1 from the 20th on (the original ReviewKD is 0-based and starts at 0; mdistiller's
// form keeps the loss positive, which log-gradients need). warmup_epochs <= 0: no ramp.
// Under the DTO policies a constant factor cancels (grad log(cL) = grad log L).
#pragma once
#include <algorithm>

namespace dtokd {

inline double warmup_factor(int epoch0, int warmup_epochs) {
    if (warmup_epochs <= 0) return 1.0;
    return std::min(double(epoch0 + 1) / double(warmup_epochs), 1.0);
}

}  // namespace dtokd
