// torchvision's transform geometry (image_resample.h) against PyTorch's own antialiased
// bilinear resize (ATen's _upsample_bilinear2d_aa, float64) and torchvision's formulas.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "image_resample.h"
#include "scratch_data.h"

namespace {

dtokd::DecodedImage random_image(int w, int h, int c, uint32_t seed) {
    dtokd::DecodedImage img;
    img.width = w;
    img.height = h;
    img.channels = c;
    img.pixels = dtokd_test::random_bytes(size_t(w * h * c), seed);
    return img;
}

// The reference: crop the box, resize it with PyTorch (antialias, align_corners=False), in float64.
at::Tensor reference(const dtokd::DecodedImage &img, const dtokd::ResizeWindow &win) {
    const at::Tensor hwc = at::from_blob(const_cast<uint8_t *>(img.pixels.data()), {img.height, img.width, img.channels},
                                         at::kByte);
    const at::Tensor box = hwc.permute({2, 0, 1})
                               .narrow(1, win.box.y, win.box.height)
                               .narrow(2, win.box.x, win.box.width)
                               .to(at::kDouble)
                               .unsqueeze(0);
    at::Tensor resized = at::_upsample_bilinear2d_aa(box, at::IntArrayRef{win.resized_h, win.resized_w},
                                                     /*align_corners=*/false, c10::nullopt)
                             .squeeze(0)
                             .narrow(1, win.top, win.out_h)
                             .narrow(2, win.left, win.out_w);
    return win.mirror ? resized.flip({2}) : resized;
}

at::Tensor ours(const dtokd::DecodedImage &img, const dtokd::ResizeWindow &win) {
    at::Tensor out = at::empty({img.channels, win.out_h, win.out_w}, at::kFloat);
    dtokd::resize_window(img, win, out.data_ptr<float>());
    return out.to(at::kDouble);
}

struct ResizeCase {
    int w, h, c;
    dtokd::CropBox box;
    int rh, rw;
};

class ResizeMatchesPyTorch : public ::testing::TestWithParam<ResizeCase> {};

TEST_P(ResizeMatchesPyTorch, WithinFloatRounding) {
    const ResizeCase p = GetParam();
    const dtokd::DecodedImage img = random_image(p.w, p.h, p.c, uint32_t(p.w * 7 + p.h));
    for (bool mirror : {false, true}) {
        dtokd::ResizeWindow win;
        win.box = p.box.width > 0 ? p.box : dtokd::CropBox{0, 0, p.w, p.h};
        win.resized_h = p.rh;
        win.resized_w = p.rw;
        win.out_h = p.rh;
        win.out_w = p.rw;
        win.mirror = mirror;
        const double diff = (ours(img, win) - reference(img, win)).abs().max().item<double>();
        EXPECT_LT(diff, 2e-3) << p.w << "x" << p.h << " -> " << p.rw << "x" << p.rh << " mirror " << mirror;
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ResizeMatchesPyTorch,
                         ::testing::Values(ResizeCase{32, 32, 3, {}, 32, 32},       // identity
                                           ResizeCase{28, 28, 1, {}, 32, 32},       // up
                                           ResizeCase{500, 375, 3, {}, 224, 298},   // down, uneven
                                           ResizeCase{97, 61, 3, {}, 13, 7},        // strong down, odd
                                           ResizeCase{17, 5, 1, {}, 40, 3},         // up one way, down the other
                                           ResizeCase{64, 48, 3, {5, 9, 37, 21}, 32, 32},  // a crop, stretched
                                           ResizeCase{300, 200, 3, {120, 3, 31, 190}, 224, 224}));

TEST(ResizeWindow, ComputesOnlyTheWindowOfTheFullResize) {
    const dtokd::DecodedImage img = random_image(120, 90, 3, 11);
    dtokd::ResizeWindow win = dtokd::center_crop_window(120, 90, 56, 0.875);
    const double diff = (ours(img, win) - reference(img, win)).abs().max().item<double>();
    EXPECT_LT(diff, 2e-3);
}

TEST(CenterCropWindow, IsTorchvisionsResizeThenCenterCrop) {
    // Resize(256) of 500x375: the shorter side 375 -> 256, the longer int(256 * 500 / 375) = 341;
    // CenterCrop(224): top round(32 / 2) = 16, left round(117 / 2) = 58 (Python rounds 58.5 to even).
    const dtokd::ResizeWindow w = dtokd::center_crop_window(500, 375, 224, 0.875);
    EXPECT_EQ(w.resized_h, 256);
    EXPECT_EQ(w.resized_w, 341);
    EXPECT_EQ(w.top, 16);
    EXPECT_EQ(w.left, 58);
    EXPECT_EQ(w.out_h, 224);
    const dtokd::ResizeWindow same = dtokd::center_crop_window(28, 28, 28, 1.0);
    EXPECT_EQ(same.resized_h, 28);
    EXPECT_EQ(same.top, 0);
    EXPECT_THROW(dtokd::center_crop_window(28, 28, 28, 0.0), std::invalid_argument);
}

TEST(RandomResizedCrop, BoxesFollowTorchvisionsBounds) {
    std::mt19937_64 rng(3);
    double area_sum = 0;
    const int draws = 4000;
    for (int i = 0; i < draws; i++) {
        const dtokd::CropBox b = dtokd::random_resized_crop_box(64, 48, rng);
        ASSERT_GE(b.x, 0);
        ASSERT_GE(b.y, 0);
        ASSERT_LE(b.x + b.width, 64);
        ASSERT_LE(b.y + b.height, 48);
        ASSERT_GT(b.width, 0);
        ASSERT_GT(b.height, 0);
        area_sum += double(b.width) * b.height / (64.0 * 48.0);
    }
    // The area fraction is uniform in [0.08, 1] before rejection (mean 0.54); large
    // draws are rejected more often, so the mean ends lower, but not far.
    EXPECT_GT(area_sum / draws, 0.35);
    EXPECT_LT(area_sum / draws, 0.56);
    std::mt19937_64 a(9), b(9);
    for (int i = 0; i < 20; i++) {
        const dtokd::CropBox x = dtokd::random_resized_crop_box(50, 50, a), y = dtokd::random_resized_crop_box(50, 50, b);
        ASSERT_EQ(std::tie(x.x, x.y, x.width, x.height), std::tie(y.x, y.y, y.width, y.height));
    }
    // A 1000x10 strip with the whole area asked: every draw is too tall, so the fallback
    // takes the central crop at the largest allowed ratio: h 10, w round(10 * 4/3) = 13.
    const dtokd::CropBox f = dtokd::random_resized_crop_box(1000, 10, rng, 1.0, 1.0);
    EXPECT_EQ(f.height, 10);
    EXPECT_EQ(f.width, 13);
    EXPECT_EQ(f.x, (1000 - 13) / 2);
    EXPECT_EQ(f.y, 0);
}

}  // namespace
