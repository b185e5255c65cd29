// Every option of a training or distillation run. The CLI fills it from a TOML
// config file and flags (flags win); the resolved values are written to the run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtokd {

struct TrainConfig {
    // Data
    std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | cifar10 | cifar100 | folder
    std::string data_dir;                   // empty: the Debian package's folder (fashion-mnist)
    // Random crop (padding 4; image folders: RandomResizedCrop) + flip; CIFAR configs turn it on.
    bool augment = false;
    // Image folders (--dataset folder, image_folder.h).
    int image_size = 32;
    int channels = 0;                     // 1 or 3; 0: 1 when every training image is grey
    double center_crop_fraction = 0.875;  // evaluation: resize to image-size / fraction, crop the centre
    double min_crop_scale = 0.08;         // --augment: RandomResizedCrop's smallest area fraction
    std::vector<double> mean, std;        // normalization; empty: computed from the training images
    bool skip_bad_images = false;         // leave out (and list) unreadable files instead of failing
    int workers = 0;                      // threads making batches; 0: 1, or the cores for image folders
    // The label-scarce regime: train on this stratified fraction of the training split,
    // chosen by subset_seed alone (dataset_subset.h); evaluation uses the whole test split.
    double train_fraction = 1.0;
    uint64_t subset_seed = 0;
    int64_t batch_size = 128;
    // Models
    std::string model = "cnn_small";
    std::string teacher;  // distill: dtokd checkpoint or TorchScript file
    // Method and losses
    std::string method = "ce";  // ce | kd | sum | dto | dto-amortized | dto-logit
    // The objectives (objective_registry.h); empty: [ce] for ce, [kd, ce] otherwise.
    std::vector<std::string> objectives;
    std::vector<double> weights;  // fixed-weight methods: one per objective (kd: default alpha-distill/-task)
    int hint_layer = -1;          // fitnet: feats index of the hint (-1: 2 where both nets have it)
    // The seed's methods (runtime/objective_registry.h ObjectiveOptions; reference defaults).
    int warmup_epochs = 20;
    double dkd_alpha = 1.0, dkd_beta = 8.0;
    double dist_beta = 1.0, dist_gamma = 1.0;
    double at_p = 2.0;
    double rkd_distance_weight = 25.0, rkd_angle_weight = 50.0;
    int64_t crd_dim = 128, crd_negatives = 16384;
    double crd_temperature = 0.07, crd_momentum = 0.5;
    std::string ofd_teacher_bn = "train";  // train | eval
    double temperature = 4.0;
    double alpha_distill = 0.9, alpha_task = 0.1;
    double label_smoothing = 0.0;
    double eps = 1e-8;
    double clip_norm = 0.0;
    double amortized_lr = 0.025, amortized_decay = 0.01;
    int dto_refresh = 0;
    // dto-amortized: re-evaluate the losses (and learn pi) every K-th step. 4: the step costs
    // 1.08x a kd step instead of 1.31x, at the same accuracy (docs/results/reeval_every.md).
    int dto_reeval_every = 4;
    // Optimization
    std::string optimizer = "sgd";  // sgd | adamw
    double lr = 0.05, momentum = 0.9, weight_decay = 5e-4;
    bool nesterov = false;
    double adamw_beta1 = 0.9, adamw_beta2 = 0.999, adamw_eps = 1e-8;
    std::string schedule = "cosine";  // cosine | step | constant
    std::vector<int> milestones = {150, 180, 210};
    double gamma = 0.1;
    int epochs = 5;
    int64_t max_steps = 0;  // > 0: stop after this many steps (smoke runs)
    int64_t checkpoint_every = 0;  // > 0: also checkpoint every this many steps (epoch ends always)
    // Runtime
    std::string kernels = "halide";
    std::string device = "cpu";  // cpu | cuda | cuda:N (a global option, like kernels)
    int threads = 0;
    uint64_t seed = 0;
    int log_interval = 50;
    int skip_limit = 10;  // consecutive non-finite steps before training stops
    bool teacher_cache = true;
    bool progress = true;
    std::string out;        // run directory
    std::string cache_dir;  // teacher-logit cache; empty: <out>/../cache
};

}  // namespace dtokd
