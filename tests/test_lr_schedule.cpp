// pipelines/lr_schedule.h against the schedules it claims to be, written out here
// independently: mdistiller's step rule (1-based epochs: lr = base * gamma^#{m < epoch}),
// PyTorch's CosineAnnealingLR closed form (eta_min 0, T_max = epochs), a constant.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "lr_schedule.h"

namespace {

TEST(LrSchedule, StepDropsAtTheMilestonesAsMdistiller) {
    const std::vector<int> milestones = {150, 180, 210};
    for (int epoch = 0; epoch < 240; epoch++) {
        const int one_based = epoch + 1;
        int drops = 0;
        for (int m : milestones) drops += m < one_based;
        EXPECT_DOUBLE_EQ(dtokd::scheduled_lr("step", 0.05, epoch, 240, milestones, 0.1), 0.05 * std::pow(0.1, drops))
            << "epoch " << one_based;
    }
    // The drops themselves: the 150th epoch still at 0.05, the 151st at 0.005, the 211th at 5e-5.
    EXPECT_DOUBLE_EQ(dtokd::scheduled_lr("step", 0.05, 149, 240, milestones, 0.1), 0.05);
    EXPECT_NEAR(dtokd::scheduled_lr("step", 0.05, 150, 240, milestones, 0.1), 0.005, 1e-15);
    EXPECT_NEAR(dtokd::scheduled_lr("step", 0.05, 210, 240, milestones, 0.1), 5e-5, 1e-18);
    // Another gamma and unsorted milestones count the same way.
    EXPECT_NEAR(dtokd::scheduled_lr("step", 1.0, 7, 10, {8, 3}, 0.5), 0.5, 1e-15);
    EXPECT_NEAR(dtokd::scheduled_lr("step", 1.0, 8, 10, {8, 3}, 0.5), 0.25, 1e-15);
}

TEST(LrSchedule, CosineIsPyTorchsAnnealingToZero) {
    const int epochs = 7;
    for (int epoch = 0; epoch < epochs; epoch++)
        EXPECT_NEAR(dtokd::scheduled_lr("cosine", 0.1, epoch, epochs, {}, 0.1),
                    0.1 * (1 + std::cos(M_PI * epoch / epochs)) / 2, 1e-15);
    EXPECT_DOUBLE_EQ(dtokd::scheduled_lr("cosine", 0.1, 0, epochs, {}, 0.1), 0.1);
    EXPECT_GT(dtokd::scheduled_lr("cosine", 0.1, epochs - 1, epochs, {}, 0.1), 0.0);  // the last epoch still learns
    EXPECT_DOUBLE_EQ(dtokd::scheduled_lr("cosine", 0.1, 0, 1, {}, 0.1), 0.1);          // one epoch: the base lr
}

TEST(LrSchedule, ConstantAndUnknown) {
    for (int epoch : {0, 5, 239}) EXPECT_DOUBLE_EQ(dtokd::scheduled_lr("constant", 0.02, epoch, 240, {1}, 0.1), 0.02);
    try {
        dtokd::scheduled_lr("linear", 0.1, 0, 10, {}, 0.1);
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find("'linear'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("cosine, step or constant"), std::string::npos) << e.what();
    }
}

}  // namespace
