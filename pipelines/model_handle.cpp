// See model_handle.h. The one place the pipeline meets models/make_model and
// TorchScript.
#include "model_handle.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <stdexcept>
#include <utility>

#include "checkpoint.h"
#include "device.h"
#include "model_factory.h"

namespace dtokd {

namespace {

std::string shape_text(int c, int h, int w) {
    return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

std::string taps_text(const FeatureRequest &taps) {
    std::string out;
    for (const auto &[on, name] : {std::pair{taps.feats, "feats"}, std::pair{taps.preact_feats, "preact_feats"},
                                   std::pair{taps.pooled, "pooled"}})
        if (on) out += (out.empty() ? "" : ", ") + std::string(name);
    return out.empty() ? "none" : out;
}

void check_taps(const std::string &model, const FeatureRequest &gives, const FeatureRequest &request) {
    const FeatureRequest missing{request.feats && !gives.feats, request.preact_feats && !gives.preact_feats,
                                 request.pooled && !gives.pooled};
    if (!missing.any()) return;
    std::string message = model + " does not give the intermediate features " + taps_text(missing) +
                          " (it gives: " + taps_text(gives) + ")";
    if (model.rfind("torchscript:", 0) == 0)
        message += "; a TorchScript teacher gives them by returning (logits, dict) with 'feats', "
                   "'preact_feats' and 'pooled_feat' entries (README: TorchScript teachers)";
    throw std::runtime_error(message);
}

// --- TorchScript teachers: the output forms read (README "TorchScript teachers").

constexpr const char *kAcceptedForms =
    "expected logits [B, classes], or a tuple (logits, dict) as mdistiller's models return, whose str-keyed "
    "dict holds any of 'feats' (list of tensors [B, ...]), 'preact_feats' (list of tensors [B, ...]) and "
    "'pooled_feat' or 'pooled' (tensor [B, D])";

[[noreturn]] void bad_output(const std::string &path, const std::string &what) {
    throw std::runtime_error(path + ": TorchScript teacher output " + what + "; " + kAcceptedForms);
}

std::string type_text(const c10::IValue &v) { return v.type()->annotation_str(); }

std::vector<at::Tensor> tensor_list(const c10::IValue &v, const std::string &path, const std::string &key) {
    const std::string wrong = "has '" + key + "' of type " + type_text(v) + ", not a non-empty list of tensors";
    if (!v.isList()) bad_output(path, wrong);
    std::vector<at::Tensor> out;
    for (const c10::IValue &e : v.toListRef()) {
        if (!e.isTensor()) bad_output(path, wrong);
        out.push_back(e.toTensor());
    }
    if (out.empty()) bad_output(path, wrong);
    return out;
}

// Logits alone, or (logits, dict) with every feature tap the dict holds.
ModelOutputs read_script_output(const c10::IValue &out, const std::string &path) {
    ModelOutputs result;
    if (out.isTensor()) {
        result.logits = out.toTensor();
        return result;
    }
    if (!out.isTuple()) bad_output(path, "is " + type_text(out));
    const auto &elements = out.toTupleRef().elements();
    if (elements.size() != 2 || !elements[0].isTensor() || !elements[1].isGenericDict())
        bad_output(path, "is " + type_text(out));
    result.logits = elements[0].toTensor();
    std::string keys;
    for (const auto &entry : elements[1].toGenericDict()) {
        if (!entry.key().isString()) bad_output(path, "is " + type_text(out) + " (a dict without str keys)");
        const std::string key = entry.key().toStringRef();
        keys += (keys.empty() ? "'" : ", '") + key + "'";
        if (key == "feats") {
            result.feats = tensor_list(entry.value(), path, key);
        } else if (key == "preact_feats") {
            result.preact_feats = tensor_list(entry.value(), path, key);
        } else if (key == "pooled_feat" || key == "pooled") {
            if (result.pooled.defined()) bad_output(path, "has both 'pooled_feat' and 'pooled'");
            if (!entry.value().isTensor())
                bad_output(path, "has '" + key + "' of type " + type_text(entry.value()) + ", not a tensor");
            result.pooled = entry.value().toTensor();
        }  // other keys are the model's own business
    }
    if (result.feats.empty() && result.preact_feats.empty() && !result.pooled.defined())
        bad_output(path, "is (logits, dict) whose dict holds none of the feature keys (its keys: " +
                             (keys.empty() ? std::string("none") : keys) + ")");
    return result;
}

FeatureRequest taps_held(const ModelOutputs &out) {
    return FeatureRequest{!out.feats.empty(), !out.preact_feats.empty(), out.pooled.defined()};
}

// The probe batch's features must be per-sample (batch first) and the two lists must pair up.
void check_probe_features(const ModelOutputs &out, int64_t batch, const std::string &path) {
    const auto check = [&](const at::Tensor &t, const std::string &what, bool flat) {
        if (t.dim() < 2 || t.size(0) != batch || (flat && t.dim() != 2))
            bad_output(path, "has " + what + " of shape " + c10::str(t.sizes()) + " for a batch of " +
                                 std::to_string(batch) + " (features must be [" + std::to_string(batch) +
                                 (flat ? ", D])" : ", ...])"));
    };
    for (size_t i = 0; i < out.feats.size(); i++) check(out.feats[i], "feats[" + std::to_string(i) + "]", false);
    for (size_t i = 0; i < out.preact_feats.size(); i++)
        check(out.preact_feats[i], "preact_feats[" + std::to_string(i) + "]", false);
    if (out.pooled.defined()) check(out.pooled, "the pooled feature", true);
    if (!out.feats.empty() && !out.preact_feats.empty() && out.feats.size() != out.preact_feats.size())
        bad_output(path, "has " + std::to_string(out.feats.size()) + " 'feats' but " +
                             std::to_string(out.preact_feats.size()) + " 'preact_feats' (one per stage in both)");
}

}  // namespace

void check_gives_features(const ModelHandle &model, const FeatureRequest &request) {
    check_taps(model.name, model.feature_taps, request);
}

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
    h.forward_features = [model](const at::Tensor &x, const FeatureRequest &request) {
        return model->forward_features(x, request);
    };
    h.feature_taps = FeatureRequest{/*feats=*/true, /*preact_feats=*/true, /*pooled=*/true};  // every zoo family
    h.set_train = [model](bool on) { model->train(on); };
    h.preact_bn_affine = [model] { return model->preact_bn_affine(); };
    h.to = [model](const at::Device &d) { model->to(d); };
    return h;
}

void move_to(ModelHandle &model, const at::Device &device) {
    if (model.device == device) return;
    if (!model.to) throw std::invalid_argument(model.name + ": this model cannot be moved to " + device_name(device));
    model.to(device);
    model.device = device;
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
        h.class_names = meta.class_names;
        h.set_train(false);
        return h;
    }
    std::shared_ptr<torch::jit::Module> script;
    try {
        script = std::make_shared<torch::jit::Module>(torch::jit::load(path, at::Device(at::kCPU)));
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
    h.set_train = [script](bool on) { script->train(on); };
    h.to = [script](const at::Device &d) { script->to(d); };
    // Probe the input/output contract before any training starts.
    constexpr int64_t kProbeBatch = 2;
    c10::IValue probe;
    try {
        torch::NoGradGuard no_grad;
        probe = script->forward({torch::zeros({kProbeBatch, in_channels, height, width})});
    } catch (const std::exception &e) {
        throw std::runtime_error(path + ": TorchScript teacher does not accept " + shape_text(in_channels, height, width) +
                                 " inputs");
    }
    const ModelOutputs out = read_script_output(probe, path);
    if (out.logits.dim() != 2 || out.logits.size(0) != kProbeBatch || out.logits.size(1) != num_classes)
        throw std::runtime_error(path + ": TorchScript teacher outputs " + c10::str(out.logits.sizes()) +
                                 " for a batch of 2; expected [2, " + std::to_string(num_classes) + "] (the data has " +
                                 std::to_string(num_classes) + " classes)");
    check_probe_features(out, kProbeBatch, path);
    h.feature_taps = taps_held(out);

    h.forward = [script, path](const at::Tensor &x) { return read_script_output(script->forward({x}), path).logits; };
    const std::string name = h.name;
    const FeatureRequest taps = h.feature_taps;
    h.forward_features = [script, path, name, taps](const at::Tensor &x, const FeatureRequest &request) {
        check_taps(name, taps, request);
        ModelOutputs all = read_script_output(script->forward({x}), path);
        ModelOutputs out;  // only the requested taps, as the zoo models return them
        out.logits = std::move(all.logits);
        if (request.feats) out.feats = std::move(all.feats);
        if (request.preact_feats) out.preact_feats = std::move(all.preact_feats);
        if (request.pooled) out.pooled = std::move(all.pooled);
        return out;
    };
    return h;
}

}  // namespace dtokd
