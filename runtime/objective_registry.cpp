// See objective_registry.h.
#include "objective_registry.h"

#include <stdexcept>

namespace dtokd {

const std::vector<std::string> &objective_names() {
    static const std::vector<std::string> names = {
        "ce", "kd", "dkd", "dkd_tckd", "dkd_nckd", "dist", "dist_inter", "dist_intra", "fitnet",
        "at", "pkt", "rkd", "rkd_distance", "rkd_angle", "ofd", "crd", "reviewkd"};
    return names;
}

std::unique_ptr<Objective> make_objective(const std::string &name, const ObjectiveOptions &options) {
    if (name == "ce") return make_ce_objective();
    if (name == "kd") return make_kd_objective();
    if (name == "fitnet") return make_fitnet_objective(options.hint_layer);
    if (name == "dkd" || name == "dkd_tckd" || name == "dkd_nckd") return make_dkd_objective(name, options);
    if (name == "dist" || name == "dist_inter" || name == "dist_intra") return make_dist_objective(name, options);
    if (name == "at") return make_at_objective(options);
    if (name == "pkt") return make_pkt_objective();
    if (name == "rkd" || name == "rkd_distance" || name == "rkd_angle") return make_rkd_objective(name, options);
    if (name == "ofd") return make_ofd_objective(options.ofd_teacher_train_mode);
    if (name == "reviewkd") return make_reviewkd_objective(options.warmup_epochs);
    if (name == "crd") return make_crd_objective(options);
    std::string known;
    for (const auto &n : objective_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("objective '" + name + "' is unknown; expected one of: " + known);
}

std::unique_ptr<ObjectiveList> make_objective_list(const std::vector<std::string> &names,
                                                   const ObjectiveOptions &options) {
    std::vector<std::unique_ptr<Objective>> list;
    for (const std::string &name : names) list.push_back(make_objective(name, options));
    return std::make_unique<ObjectiveList>(std::move(list));
}

}  // namespace dtokd
