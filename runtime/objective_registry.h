// Objectives by name: what a run lists (`--objectives kd,ce`), each made by the
// registry with its options. The trainer looks objectives up here; it never builds
// a specific one inline. The logit-level ones (ce, kd) share one fused KD kernel pass.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "objective.h"
#include "objective_list.h"

namespace dtokd {

struct ObjectiveOptions {
    // fitnet: index into feats of the hint layer; -1: feats[2] where both networks
    // have it (the reference's hint layer), else their last common stage.
    int hint_layer = -1;
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

}  // namespace dtokd
