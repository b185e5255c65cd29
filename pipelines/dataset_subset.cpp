// See dataset_subset.h.
#include "dataset_subset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "image_folder.h"

namespace dtokd {

ImageDataset stratified_subset(const ImageDataset &data, double fraction, uint64_t seed) {
    if (!(fraction > 0 && fraction <= 1))
        throw std::invalid_argument("train fraction " + std::to_string(fraction) + "; expected 0 < fraction <= 1");
    if (fraction == 1) return data;
    std::vector<std::vector<int64_t>> by_class(size_t(data.num_classes));
    const at::Tensor labels = data.labels.contiguous();
    const int64_t *l = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < data.size(); i++) by_class[size_t(l[i])].push_back(i);
    std::vector<int64_t> keep;
    for (size_t c = 0; c < by_class.size(); c++) {
        std::vector<int64_t> rows = by_class[c];
        if (rows.empty()) continue;
        // Its own stream per class: a class's choice does not depend on the others' sizes.
        std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + c + 1);
        std::shuffle(rows.begin(), rows.end(), rng);
        const size_t n = std::max<size_t>(1, size_t(std::llround(fraction * double(rows.size()))));
        keep.insert(keep.end(), rows.begin(), rows.begin() + long(std::min(n, rows.size())));
    }
    std::sort(keep.begin(), keep.end());
    ImageDataset out = data;
    const at::Tensor index = at::tensor(keep, at::kLong);
    out.labels = data.labels.index_select(0, index);
    if (data.files) {
        auto files = std::make_shared<ImageFiles>(*data.files);
        files->paths.clear();
        for (int64_t i : keep) files->paths.push_back(data.files->paths[size_t(i)]);
        out.files = files;
    } else {
        out.images = data.images.index_select(0, index);
    }
    char pct[32];
    std::snprintf(pct, sizeof pct, "%g%%", 100 * fraction);
    out.name = data.name + " (" + pct + ")";
    return out;
}

}  // namespace dtokd
