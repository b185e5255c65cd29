// See config_toml.h.
#include "config_toml.h"

#include <toml++/toml.h>

#include <sstream>
#include <stdexcept>

namespace dtokd {

namespace {

template <typename T>
toml::array array_of(const std::vector<T> &v) {
    toml::array a;
    for (const T &x : v) a.push_back(x);
    return a;
}

toml::table config_table(const TrainConfig &c) {
    toml::table t;
    auto text = [&t](const char *key, const std::string &v) {
        if (!v.empty()) t.insert(key, v);
    };
    text("dataset", c.dataset);
    text("data", c.data_dir);
    t.insert("augment", c.augment);
    // Only for image folders: the configs of other runs (and their checkpoints) stay as they were.
    if (c.dataset == "folder") {
        t.insert("image-size", c.image_size);
        t.insert("channels", c.channels);
        t.insert("center-crop-fraction", c.center_crop_fraction);
        t.insert("min-crop-scale", c.min_crop_scale);
        if (!c.mean.empty()) t.insert("mean", array_of(c.mean));
        if (!c.std.empty()) t.insert("std", array_of(c.std));
        t.insert("skip-bad-images", c.skip_bad_images);
    }
    t.insert("workers", c.workers);
    if (c.train_fraction != 1.0) {  // absent otherwise: older runs' configs stay as they were
        t.insert("train-fraction", c.train_fraction);
        t.insert("subset-seed", int64_t(c.subset_seed));
    }
    t.insert("batch-size", c.batch_size);
    text("model", c.model);
    text("teacher", c.teacher);
    text("method", c.method);
    if (!c.objectives.empty()) t.insert("objectives", array_of(c.objectives));
    if (!c.weights.empty()) t.insert("weights", array_of(c.weights));
    t.insert("hint-layer", c.hint_layer);
    t.insert("warmup-epochs", c.warmup_epochs);
    t.insert("dkd-alpha", c.dkd_alpha);
    t.insert("dkd-beta", c.dkd_beta);
    t.insert("dist-beta", c.dist_beta);
    t.insert("dist-gamma", c.dist_gamma);
    t.insert("at-p", c.at_p);
    t.insert("rkd-distance-weight", c.rkd_distance_weight);
    t.insert("rkd-angle-weight", c.rkd_angle_weight);
    t.insert("crd-dim", c.crd_dim);
    t.insert("crd-negatives", c.crd_negatives);
    t.insert("crd-temperature", c.crd_temperature);
    t.insert("crd-momentum", c.crd_momentum);
    text("ofd-teacher-bn", c.ofd_teacher_bn);
    t.insert("temperature", c.temperature);
    t.insert("alpha-distill", c.alpha_distill);
    t.insert("alpha-task", c.alpha_task);
    t.insert("label-smoothing", c.label_smoothing);
    t.insert("eps", c.eps);
    t.insert("clip-norm", c.clip_norm);
    t.insert("dto-lr", c.amortized_lr);
    t.insert("dto-decay", c.amortized_decay);
    t.insert("dto-refresh", c.dto_refresh);
    t.insert("dto-reeval-every", c.dto_reeval_every);
    text("optimizer", c.optimizer);
    t.insert("lr", c.lr);
    t.insert("momentum", c.momentum);
    t.insert("weight-decay", c.weight_decay);
    t.insert("nesterov", c.nesterov);
    t.insert("adamw-beta1", c.adamw_beta1);
    t.insert("adamw-beta2", c.adamw_beta2);
    t.insert("adamw-eps", c.adamw_eps);
    text("schedule", c.schedule);
    t.insert("milestones", array_of(c.milestones));
    t.insert("gamma", c.gamma);
    t.insert("epochs", c.epochs);
    t.insert("max-steps", c.max_steps);
    t.insert("checkpoint-every", c.checkpoint_every);
    text("kernels", c.kernels);
    t.insert("seed", int64_t(c.seed));
    t.insert("log-interval", c.log_interval);
    t.insert("skip-limit", c.skip_limit);
    t.insert("teacher-cache", c.teacher_cache);
    t.insert("progress", c.progress);
    text("out", c.out);
    text("cache-dir", c.cache_dir);
    return t;
}

toml::table parse(const std::string &text, const std::string &what) {
    try {
        return toml::parse(text);
    } catch (const toml::parse_error &e) {
        std::ostringstream os;
        os << what << ": not valid TOML at line " << e.source().begin.line << ": " << e.description();
        throw std::runtime_error(os.str());
    }
}

std::string value_text(const toml::node *n) {
    if (n == nullptr) return "(unset)";
    std::ostringstream os;
    if (const toml::array *a = n->as_array())
        os << *a;
    else if (const toml::table *t = n->as_table())
        os << *t;
    else
        n->visit([&os](const auto &v) { os << v; });
    return os.str();
}

}  // namespace

std::string config_toml(const TrainConfig &config, const std::string &header, const std::set<std::string> &keys) {
    toml::table t = config_table(config);
    if (!keys.empty()) {
        std::vector<std::string> drop;
        for (const auto &[k, v] : t)
            if (!keys.count(std::string(k.str()))) drop.emplace_back(k.str());
        for (const std::string &k : drop) t.erase(k);
    }
    // ASCII only (config files are ASCII: config_file.cpp), one line per key, basic
    // strings: other characters and control characters are written as escapes (toml++
    // 3.3 writes a literal string holding a raw control character, which it then refuses
    // to read: tests/data/fuzz-regressions/config/newline-in-text.toml).
    constexpr auto flags = toml::toml_formatter::default_flags & ~toml::format_flags::allow_unicode_strings &
                           ~toml::format_flags::allow_multi_line_strings &
                           ~toml::format_flags::allow_real_tabs_in_strings &
                           ~toml::format_flags::allow_literal_strings;
    std::ostringstream os;
    os << "# " << header << "\n" << toml::toml_formatter{t, flags} << "\n";
    return os.str();
}

std::optional<double> config_number(const std::string &toml_text, const std::string &key) {
    const toml::table t = parse(toml_text, "config");
    const toml::node *n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (const auto v = n->value<double>()) return *v;
    throw std::runtime_error("config key '" + key + "' is " + value_text(n) + "; expected a number");
}

std::vector<std::string> config_differences(const std::string &before, const std::string &after,
                                            const std::set<std::string> &ignored, const std::string &what) {
    const toml::table a = parse(before, what), b = parse(after, what);
    std::set<std::string> keys;
    for (const auto &[k, v] : a) keys.insert(std::string(k.str()));
    for (const auto &[k, v] : b) keys.insert(std::string(k.str()));
    std::vector<std::string> out;
    for (const std::string &k : keys) {
        if (ignored.count(k)) continue;
        const std::string va = value_text(a.get(k)), vb = value_text(b.get(k));
        if (va != vb) out.push_back(k + " (" + va + " -> " + vb + ")");
    }
    return out;
}

}  // namespace dtokd
