// The torchrun variables: none set is one process; a complete set is read; every bad or
// partial set is one error naming the variable.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "launch_env.h"

namespace {

dtokd::LaunchEnv read(const std::map<std::string, std::string> &vars) {
    return dtokd::launch_env_from([&vars](const char *name) -> const char * {
        const auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    });
}

void expect_error(const std::map<std::string, std::string> &vars, const std::string &names) {
    try {
        read(vars);
        ADD_FAILURE() << "accepted; expected an error naming " << names;
    } catch (const std::invalid_argument &e) {
        EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
    }
}

TEST(LaunchEnv, NoneSetIsOneProcess) {
    const dtokd::LaunchEnv e = read({});
    EXPECT_FALSE(e.distributed());
    EXPECT_EQ(e.rank, 0);
    EXPECT_EQ(e.world_size, 1);
}

TEST(LaunchEnv, ReadsTorchrunsVariables) {
    const dtokd::LaunchEnv e = read({{"RANK", "3"},
                                     {"WORLD_SIZE", "4"},
                                     {"LOCAL_RANK", "1"},
                                     {"LOCAL_WORLD_SIZE", "2"},
                                     {"MASTER_ADDR", "10.0.0.2"},
                                     {"MASTER_PORT", "29500"}});
    EXPECT_TRUE(e.distributed());
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.local_world_size, 2);
    EXPECT_EQ(e.master_addr, "10.0.0.2");
    EXPECT_EQ(e.master_port, 29500);
    // A world of one needs no rendezvous.
    EXPECT_FALSE(read({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).distributed());
}

TEST(LaunchEnv, BadOrPartialSetsAreOneErrorNamingTheVariable) {
    const std::map<std::string, std::string> ok = {
        {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
    auto with = [&](const std::string &k, const std::string &v) {
        auto m = ok;
        m[k] = v;
        return m;
    };
    auto without = [&](const std::string &k) {
        auto m = ok;
        m.erase(k);
        return m;
    };
    EXPECT_NO_THROW(read(ok));
    expect_error(without("RANK"), "RANK is not set");
    expect_error(without("WORLD_SIZE"), "WORLD_SIZE is not set");
    expect_error(without("MASTER_ADDR"), "MASTER_ADDR");
    expect_error(without("MASTER_PORT"), "MASTER_PORT");
    expect_error(with("RANK", "2"), "RANK is '2'");           // outside a world of 2
    expect_error(with("RANK", "-1"), "RANK is '-1'");
    expect_error(with("RANK", "1x"), "RANK is '1x'");
    expect_error(with("RANK", ""), "RANK is ''");
    expect_error(with("WORLD_SIZE", "0"), "WORLD_SIZE is '0'");
    expect_error(with("WORLD_SIZE", "two"), "WORLD_SIZE is 'two'");
    expect_error(with("MASTER_PORT", "70000"), "MASTER_PORT is '70000'");
    expect_error(with("MASTER_PORT", "0"), "MASTER_PORT is '0'");
    expect_error(with("MASTER_ADDR", ""), "MASTER_ADDR");
    expect_error(with("LOCAL_RANK", "5"), "LOCAL_RANK is '5'");
    auto local = ok;
    local["LOCAL_WORLD_SIZE"] = "3";  // more local ranks than ranks
    expect_error(local, "LOCAL_WORLD_SIZE is '3'");
}

}  // namespace

// Under torchrun's elastic agent the store already runs (TORCHELASTIC_USE_AGENT_STORE=True):
// rank 0 must join it, not serve a second one on the same port.
TEST(LaunchEnv, TorchrunsAgentStoreIsJoined) {
    std::map<std::string, std::string> vars = {
        {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
    EXPECT_FALSE(read(vars).agent_store);
    vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
    EXPECT_TRUE(read(vars).agent_store);
    vars["TORCHELASTIC_USE_AGENT_STORE"] = "False";
    EXPECT_FALSE(read(vars).agent_store);
}
