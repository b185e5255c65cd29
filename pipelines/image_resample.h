// The geometry of torchvision's image transforms on decoded 8-bit images:
// antialiased bilinear resizing (the triangle filter of PIL and of torch's
// interpolate(antialias=True)), RandomResizedCrop's box and Resize + CenterCrop.
#pragma once
#include <cstdint>
#include <random>

#include "image_decode.h"

namespace dtokd {

struct CropBox {
    int x = 0, y = 0, width = 0, height = 0;
};

// The part of a resize to be computed: the resize takes `box` of the source (clamped
// at the box's edges, as a crop followed by a resize) to resized_h x resized_w; `out`
// receives rows [top, top + out_h) and columns [left, left + out_w) of it, planar
// float [C, out_h, out_w] in 0..255, mirrored left-right when `mirror`.
struct ResizeWindow {
    CropBox box;
    int resized_h = 0, resized_w = 0;
    int top = 0, left = 0, out_h = 0, out_w = 0;
    bool mirror = false;
};

void resize_window(const DecodedImage &src, const ResizeWindow &window, float *out);

// torchvision's RandomResizedCrop.get_params: up to 10 draws of an area fraction in
// [min_scale, max_scale] and a log-uniform aspect ratio in [min_ratio, max_ratio],
// else the central crop of the clamped ratio.
CropBox random_resized_crop_box(int width, int height, std::mt19937_64 &rng, double min_scale = 0.08,
                                double max_scale = 1.0, double min_ratio = 3.0 / 4.0, double max_ratio = 4.0 / 3.0);

// Resize(round(size / crop_fraction)) of the shorter side, then CenterCrop(size):
// torchvision's evaluation transform (crop_fraction 0.875 gives ImageNet's 256 -> 224).
ResizeWindow center_crop_window(int width, int height, int size, double crop_fraction);

}  // namespace dtokd
