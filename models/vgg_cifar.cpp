// See vgg_cifar.h. Layout follows RepDistiller models/vgg.py: each block is
// conv(bias)-BN-ReLU repeated, minus the block's last ReLU, which forward()
// applies outside the block (so a block's output is its pre-activation).
#include "vgg_cifar.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace dtokd {
namespace {

namespace nn = torch::nn;

nn::Sequential make_block(const std::vector<int64_t> &widths, int64_t in_channels) {
    nn::Sequential block;
    for (size_t i = 0; i < widths.size(); i++) {
        block->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, widths[i], /*kernel_size=*/3).padding(1)));
        block->push_back(nn::BatchNorm2d(widths[i]));
        if (i + 1 < widths.size()) block->push_back(nn::ReLU());
        in_channels = widths[i];
    }
    return block;
}

const std::vector<std::vector<int64_t>> &checked(const std::vector<std::vector<int64_t>> &blocks) {
    if (blocks.size() != 5)
        throw std::invalid_argument("VggCifar: " + std::to_string(blocks.size()) + " blocks given; expected 5");
    for (const auto &b : blocks)
        if (b.empty()) throw std::invalid_argument("VggCifar: a block has no conv widths; expected at least one");
    return blocks;
}

torch::Tensor max_pool(const torch::Tensor &x) {
    return torch::max_pool2d(x, /*kernel_size=*/{2, 2}, /*stride=*/{2, 2});
}

}  // namespace

std::vector<std::vector<int64_t>> vgg_cifar_blocks(int depth) {
    switch (depth) {
    case 8: return {{64}, {128}, {256}, {512}, {512}};
    case 11: return {{64}, {128}, {256, 256}, {512, 512}, {512, 512}};
    case 13: return {{64, 64}, {128, 128}, {256, 256}, {512, 512}, {512, 512}};
    }
    throw std::invalid_argument("vgg_cifar_blocks: depth is " + std::to_string(depth) + "; expected 8, 11 or 13");
}

VggCifarImpl::VggCifarImpl(const std::vector<std::vector<int64_t>> &blocks, int64_t in_channels, int64_t num_classes)
    : block0(register_module("block0", make_block(checked(blocks)[0], in_channels))),
      block1(register_module("block1", make_block(blocks[1], blocks[0].back()))),
      block2(register_module("block2", make_block(blocks[2], blocks[1].back()))),
      block3(register_module("block3", make_block(blocks[3], blocks[2].back()))),
      block4(register_module("block4", make_block(blocks[4], blocks[3].back()))),
      classifier(register_module("classifier", nn::Linear(blocks[4].back(), num_classes))) {
    // RepDistiller's init: conv ~ N(0, 2 / (k*k*out)) with zero bias; Linear ~ N(0, 0.01) with zero bias.
    torch::NoGradGuard no_grad;
    for (auto &m : modules(/*include_self=*/false)) {
        if (auto *conv = m->as<nn::Conv2d>()) {
            const auto &k = conv->options.kernel_size();
            conv->weight.normal_(0.0, std::sqrt(2.0 / double(k->at(0) * k->at(1) * conv->options.out_channels())));
            conv->bias.zero_();
        } else if (auto *linear = m->as<nn::Linear>()) {
            linear->weight.normal_(0.0, 0.01);
            linear->bias.zero_();
        }
    }
}

torch::Tensor VggCifarImpl::forward(torch::Tensor x) { return forward_features(std::move(x), {}).logits; }

ModelOutputs VggCifarImpl::forward_features(torch::Tensor x, const FeatureRequest &request) {
    ModelOutputs out;
    const int64_t height = x.size(2);
    x = torch::relu(block0->forward(x));
    record_stage(out, request, x, x);  // mdistiller lists the post-ReLU f0 in preact_feats too
    nn::Sequential *blocks[] = {&block1, &block2, &block3, &block4};
    for (int i = 0; i < 4; i++) {
        // Pools before blocks 1-3 always, before block 4 only for 64x64 inputs (RepDistiller's pool3).
        if (i < 3 || height == 64) x = max_pool(x);
        torch::Tensor preact = (*blocks[i])->forward(x);
        x = torch::relu(preact);
        record_stage(out, request, x, preact);
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    if (request.pooled) out.pooled = x;
    out.logits = classifier(x);
    return out;
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> VggCifarImpl::preact_bn_affine() {
    // mdistiller vgg.py get_bn_before_relu: block1..block4's last module, the BN whose output is
    // exactly the tap. f0 (post-ReLU block0): none.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> out(1);
    for (nn::Sequential *block : {&block1, &block2, &block3, &block4}) {
        const auto *bn = (*block)[(*block)->size() - 1]->as<nn::BatchNorm2dImpl>();
        out.emplace_back(bn->weight, bn->bias);
    }
    return out;
}

}  // namespace dtokd
