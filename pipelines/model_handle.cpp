// See model_handle.h. The one place the pipeline meets models/make_model and
// TorchScript.
#include "model_handle.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <stdexcept>

#include "checkpoint.h"
#include "model_factory.h"

namespace dtokd {

namespace {
std::string shape_text(int c, int h, int w) {
    return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}
}  // namespace

ModelHandle build_model(const std::string &name, int in_channels, int height, int width, int num_classes) {
    std::shared_ptr<ClassifierImpl> model = make_model(name, in_channels, num_classes);
    ModelHandle h;
    h.name = name;
    h.in_channels = in_channels;
    h.height = height;
    h.width = width;
    h.num_classes = num_classes;
    h.module = model;
    h.forward = [model](const at::Tensor &x) { return model->forward(x); };
    h.set_train = [model](bool on) { model->train(on); };
    h.forward_features = [model](const at::Tensor &x, const FeatureRequest &r) { return model->forward_features(x, r); };
    h.gives_features = true;
    return h;
}

ModelHandle load_teacher(const std::string &path, int in_channels, int height, int width, int num_classes) {
    if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": teacher file not found");
    if (is_dtokd_checkpoint(path)) {
        const CheckpointMeta meta = read_checkpoint_meta(path);
        if (meta.num_classes != num_classes)
            throw std::runtime_error(path + ": teacher '" + meta.model_name + "' has " +
                                     std::to_string(meta.num_classes) + " classes; the data has " +
                                     std::to_string(num_classes));
        if (meta.in_channels != in_channels || meta.height != height || meta.width != width)
            throw std::runtime_error(path + ": teacher '" + meta.model_name + "' takes " +
                                     shape_text(int(meta.in_channels), int(meta.height), int(meta.width)) +
                                     " inputs; the data is " + shape_text(in_channels, height, width));
        ModelHandle h = build_model(meta.model_name, in_channels, height, width, num_classes);
        load_checkpoint(path, *h.module);
        h.set_train(false);
        return h;
    }
    std::shared_ptr<torch::jit::Module> script;
    try {
        script = std::make_shared<torch::jit::Module>(torch::jit::load(path));
    } catch (const std::exception &e) {
        throw std::runtime_error(path + ": neither a dtokd checkpoint nor a TorchScript file (torch.jit.save)");
    }
    script->eval();
    ModelHandle h;
    h.name = "torchscript:" + path;
    h.in_channels = in_channels;
    h.height = height;
    h.width = width;
    h.num_classes = num_classes;
    h.forward = [script](const at::Tensor &x) { return script->forward({x}).toTensor(); };
    h.set_train = [script](bool on) { script->train(on); };
    h.forward_features = [script](const at::Tensor &x, const FeatureRequest &r) {
        TORCH_CHECK(!r.any(), "this TorchScript teacher gives logits only");
        ModelOutputs out;
        out.logits = script->forward({x}).toTensor();
        return out;
    };
    // Probe the input/output contract before any training starts.
    at::Tensor out;
    try {
        torch::NoGradGuard no_grad;
        out = h.forward(torch::zeros({2, in_channels, height, width}));
    } catch (const std::exception &e) {
        throw std::runtime_error(path + ": TorchScript teacher does not accept " + shape_text(in_channels, height, width) +
                                 " inputs");
    }
    if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != num_classes)
        throw std::runtime_error(path + ": TorchScript teacher outputs " + c10::str(out.sizes()) +
                                 " for a batch of 2; expected [2, " + std::to_string(num_classes) + "] (the data has " +
                                 std::to_string(num_classes) + " classes)");
    return h;
}

}  // namespace dtokd
