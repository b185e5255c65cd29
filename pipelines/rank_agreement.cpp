// See rank_agreement.h. Rank 0 compares every rank's entry with its own; the others
// compare theirs with rank 0's, so each side of a disagreement reports it.
#include "rank_agreement.h"

#include <stdexcept>

#include "config_toml.h"

namespace dtokd {

namespace {

std::string text(const std::vector<uint8_t> &bytes) { return std::string(bytes.begin(), bytes.end()); }
std::vector<uint8_t> bytes(const std::string &text) { return std::vector<uint8_t>(text.begin(), text.end()); }

std::string read(c10d::Store &store, const std::string &key, const LaunchEnv &env, int from) {
    try {
        return text(store.get(key));
    } catch (const std::exception &e) {
        throw std::runtime_error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                                 ": rank " + std::to_string(from) + " did not join the run in time");
    }
}

}  // namespace

void check_ranks_agree(c10d::Store &store, const LaunchEnv &env, const std::string &resolved_config) {
    const std::string me = std::to_string(env.rank);
    store.set("dtokd/world/" + me, bytes(std::to_string(env.world_size)));
    store.set("dtokd/config/" + me, bytes(resolved_config));
    const std::string where = "rank " + me + " of " + std::to_string(env.world_size);
    std::vector<int> others;
    if (env.rank == 0)
        for (int r = 1; r < env.world_size; r++) others.push_back(r);
    else
        others.push_back(0);
    std::string disagreement;
    for (int r : others) {
        const std::string world = read(store, "dtokd/world/" + std::to_string(r), env, r);
        if (world != std::to_string(env.world_size)) {
            disagreement = where + ": rank " + std::to_string(r) + " was started with WORLD_SIZE " + world +
                           "; every rank needs the same world size";
            break;
        }
        const std::string config = read(store, "dtokd/config/" + std::to_string(r), env, r);
        const std::vector<std::string> diff =
            config_differences(config, resolved_config, {"progress"}, "rank " + std::to_string(r) + "'s config");
        if (!diff.empty()) {
            std::string keys;
            for (const std::string &d : diff) keys += (keys.empty() ? "" : ", ") + d;
            disagreement = where + ": started with other options than rank " + std::to_string(r) + ": " + keys +
                           " (rank " + std::to_string(r) + "'s value -> this rank's)";
            break;
        }
    }
    // Rank 0 serves the store: it stays until every rank has compared, so each one
    // reports the disagreement it sees instead of a store that went away.
    store.set("dtokd/checked/" + me, bytes("1"));
    if (env.rank == 0)
        for (int r : others) read(store, "dtokd/checked/" + std::to_string(r), env, r);
    if (!disagreement.empty()) throw std::invalid_argument(disagreement);
}

}  // namespace dtokd
