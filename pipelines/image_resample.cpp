// See image_resample.h. The weights follow PIL's ImagingResample (and ATen's
// _upsample_bilinear2d_aa, which copies it): support = max(scale, 1), the triangle filter
// stretched by the scale when shrinking, weights normalized per output pixel.
#include "image_resample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace dtokd {

namespace {

// Weights of output positions [first, first + count) of an in_size -> out_size resize.
struct AxisWeights {
    std::vector<int> start, size;
    std::vector<float> weights;  // size max_support per output
    int stride = 0;
};

AxisWeights axis_weights(int in_size, int out_size, int first, int count) {
    const double scale = double(in_size) / double(out_size);
    const double support = scale >= 1.0 ? scale : 1.0, inv = scale >= 1.0 ? 1.0 / scale : 1.0;
    AxisWeights a;
    a.stride = int(std::ceil(support)) * 2 + 1;
    a.start.resize(size_t(count));
    a.size.resize(size_t(count));
    a.weights.assign(size_t(count) * size_t(a.stride), 0.f);
    std::vector<double> w(size_t(a.stride));
    for (int k = 0; k < count; k++) {
        const double center = scale * (double(first + k) + 0.5);
        const int lo = std::max(int(center - support + 0.5), 0);
        const int hi = std::min(int(center + support + 0.5), in_size);
        const int n = std::min(hi - lo, a.stride);
        double total = 0;
        for (int j = 0; j < n; j++) {
            const double x = std::abs((double(j + lo) - center + 0.5) * inv);
            w[size_t(j)] = x < 1.0 ? 1.0 - x : 0.0;
            total += w[size_t(j)];
        }
        a.start[size_t(k)] = lo;
        a.size[size_t(k)] = n;
        for (int j = 0; j < n; j++)
            a.weights[size_t(k) * size_t(a.stride) + size_t(j)] = float(total > 0 ? w[size_t(j)] / total : 0.0);
    }
    return a;
}

}  // namespace

void resize_window(const DecodedImage &src, const ResizeWindow &win, float *out) {
    const CropBox &b = win.box;
    if (b.width < 1 || b.height < 1 || b.x < 0 || b.y < 0 || b.x + b.width > src.width ||
        b.y + b.height > src.height)
        throw std::invalid_argument("crop box " + std::to_string(b.width) + "x" + std::to_string(b.height) + "+" +
                                    std::to_string(b.x) + "+" + std::to_string(b.y) + " is outside the " +
                                    std::to_string(src.width) + "x" + std::to_string(src.height) + " image");
    if (win.top < 0 || win.left < 0 || win.top + win.out_h > win.resized_h || win.left + win.out_w > win.resized_w ||
        win.out_h < 1 || win.out_w < 1)
        throw std::invalid_argument("output window outside the resized image");
    const int c = src.channels;
    const AxisWeights xs = axis_weights(b.width, win.resized_w, win.left, win.out_w);
    const AxisWeights ys = axis_weights(b.height, win.resized_h, win.top, win.out_h);
    // Rows the vertical pass needs, resized horizontally: [row_lo, row_hi) of the box.
    const int row_lo = ys.start.front();
    int row_hi = 0;
    for (int k = 0; k < win.out_h; k++) row_hi = std::max(row_hi, ys.start[size_t(k)] + ys.size[size_t(k)]);
    std::vector<float> rows(size_t(row_hi - row_lo) * size_t(win.out_w) * size_t(c));
    for (int r = row_lo; r < row_hi; r++) {
        const uint8_t *line = src.pixels.data() + (size_t(b.y + r) * size_t(src.width) + size_t(b.x)) * size_t(c);
        float *dst = rows.data() + size_t(r - row_lo) * size_t(win.out_w) * size_t(c);
        for (int k = 0; k < win.out_w; k++) {
            const float *w = xs.weights.data() + size_t(k) * size_t(xs.stride);
            const uint8_t *p = line + size_t(xs.start[size_t(k)]) * size_t(c);
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int j = 0; j < xs.size[size_t(k)]; j++) acc += w[j] * float(p[size_t(j) * size_t(c) + size_t(ch)]);
                dst[size_t(k) * size_t(c) + size_t(ch)] = acc;
            }
        }
    }
    const size_t plane = size_t(win.out_h) * size_t(win.out_w);
    for (int k = 0; k < win.out_h; k++) {
        const float *w = ys.weights.data() + size_t(k) * size_t(ys.stride);
        const int first = ys.start[size_t(k)] - row_lo;
        for (int x = 0; x < win.out_w; x++) {
            const int ox = win.mirror ? win.out_w - 1 - x : x;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int j = 0; j < ys.size[size_t(k)]; j++)
                    acc += w[j] * rows[(size_t(first + j) * size_t(win.out_w) + size_t(x)) * size_t(c) + size_t(ch)];
                out[size_t(ch) * plane + size_t(k) * size_t(win.out_w) + size_t(ox)] = acc;
            }
        }
    }
}

CropBox random_resized_crop_box(int width, int height, std::mt19937_64 &rng, double min_scale, double max_scale,
                                double min_ratio, double max_ratio) {
    const double area = double(width) * double(height);
    std::uniform_real_distribution<double> scale(min_scale, max_scale);
    std::uniform_real_distribution<double> log_ratio(std::log(min_ratio), std::log(max_ratio));
    for (int attempt = 0; attempt < 10; attempt++) {
        const double target = area * scale(rng), ratio = std::exp(log_ratio(rng));
        // nearbyint: Python's round() (halves to even), as torchvision.
        const int w = int(std::nearbyint(std::sqrt(target * ratio))), h = int(std::nearbyint(std::sqrt(target / ratio)));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            std::uniform_int_distribution<int> ys(0, height - h), xs(0, width - w);
            const int y = ys(rng);
            return {xs(rng), y, w, h};
        }
    }
    const double in_ratio = double(width) / double(height);
    int w = width, h = height;
    if (in_ratio < min_ratio)
        h = int(std::nearbyint(w / min_ratio));
    else if (in_ratio > max_ratio)
        w = int(std::nearbyint(h * max_ratio));
    return {(width - w) / 2, (height - h) / 2, w, h};
}

ResizeWindow center_crop_window(int width, int height, int size, double crop_fraction) {
    if (size < 1 || !(crop_fraction > 0 && crop_fraction <= 1))
        throw std::invalid_argument("center crop of " + std::to_string(size) + " at fraction " +
                                    std::to_string(crop_fraction) + "; expected size >= 1 and 0 < fraction <= 1");
    // floor, as timm's crop_pct (224 / 0.875 = 256).
    const int shorter = int(std::floor(size / crop_fraction + 1e-9));
    ResizeWindow win;
    win.box = {0, 0, width, height};
    // torchvision's Resize(int): the shorter side becomes `shorter`, the longer one is truncated.
    if (width <= height) {
        win.resized_w = shorter;
        win.resized_h = int(double(shorter) * height / width);
    } else {
        win.resized_h = shorter;
        win.resized_w = int(double(shorter) * width / height);
    }
    win.out_h = win.out_w = size;
    win.top = int(std::nearbyint((win.resized_h - size) / 2.0));
    win.left = int(std::nearbyint((win.resized_w - size) / 2.0));
    return win;
}

}  // namespace dtokd
