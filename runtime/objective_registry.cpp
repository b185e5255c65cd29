// See objective_registry.h.
#include "objective_registry.h"

#include <stdexcept>

namespace dtokd {

const std::vector<std::string> &objective_names() {
    static const std::vector<std::string> names = {"ce", "kd", "fitnet", "crd"};
    return names;
}

std::unique_ptr<Objective> make_objective(const std::string &name, const ObjectiveOptions &options) {
    if (name == "ce") return make_ce_objective();
    if (name == "kd") return make_kd_objective();
    if (name == "fitnet") return make_fitnet_objective(options.hint_layer);
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
