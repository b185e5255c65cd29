// Objectives by name: what a run lists (`--objectives kd,ce`), each made by the
// registry with its options. The trainer looks objectives up here; it never builds
// a specific one inline. The logit-level ones (ce, kd) share one fused KD kernel pass.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "objective.h"
#include "objective_list.h"

namespace dtokd {

// Every objective's hyper-parameters; the defaults are the reference's CIFAR-100
// values (shared/KD_LOSSES.md section 2).
struct ObjectiveOptions {
    // fitnet: index into feats of the hint layer; -1: feats[2] where both networks
    // have it (the reference's hint layer), else their last common stage.
    int hint_layer = -1;
    double temperature = 4.0;  // dkd, dist (kd reads the KD kernel's own)
    // dkd, reviewkd: the loss is scaled by min((epoch + 1) / warmup_epochs, 1) (mdistiller's
    // 1-based ramp); 0: no ramp. Under the DTO policies a constant factor cancels.
    int warmup_epochs = 20;
    double dkd_alpha = 1.0, dkd_beta = 8.0;        // TCKD and NCKD weights
    double dist_beta = 1.0, dist_gamma = 1.0;      // inter- and intra-relation weights
    double at_p = 2.0;                             // attention map exponent
    double rkd_distance_weight = 25.0, rkd_angle_weight = 50.0;
    int64_t crd_dim = 128;                         // embedding size
    int64_t crd_negatives = 16384;                 // K negatives per sample
    double crd_temperature = 0.07, crd_momentum = 0.5;
    bool ofd_teacher_train_mode = true;            // OFD's reference keeps the teacher's BN in train mode
};

// Every name make_objective() accepts, in a stable order.
const std::vector<std::string> &objective_names();

// A fresh objective; throws std::invalid_argument for an unknown name (listing the known ones).
std::unique_ptr<Objective> make_objective(const std::string &name, const ObjectiveOptions &options = {});

// The objectives `names` in that order (the first of them is objective 0).
std::unique_ptr<ObjectiveList> make_objective_list(const std::vector<std::string> &names,
                                                   const ObjectiveOptions &options = {});

// The built-in objectives (one file each).
std::unique_ptr<Objective> make_ce_objective();
std::unique_ptr<Objective> make_kd_objective();
std::unique_ptr<Objective> make_fitnet_objective(int hint_layer);
// The parameter-free methods; the ones with separable terms take their registry name
// (e.g. dkd, dkd_tckd, dkd_nckd) and throw std::invalid_argument for another.
std::unique_ptr<Objective> make_dkd_objective(const std::string &name, const ObjectiveOptions &options);
std::unique_ptr<Objective> make_dist_objective(const std::string &name, const ObjectiveOptions &options);
std::unique_ptr<Objective> make_at_objective(const ObjectiveOptions &options);
std::unique_ptr<Objective> make_pkt_objective();
std::unique_ptr<Objective> make_rkd_objective(const std::string &name, const ObjectiveOptions &options);
std::unique_ptr<Objective> make_ofd_objective(bool teacher_train_mode);
std::unique_ptr<Objective> make_reviewkd_objective(int warmup_epochs);
std::unique_ptr<Objective> make_crd_objective(const ObjectiveOptions &options);

}  // namespace dtokd
