// MetricsLog: whole JSON lines (NaN as null), lengths that checkpoints record, the
// cut back to a checkpoint's length on resume, and a full disk as one error naming the file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "metrics_log.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;
using Json = nlohmann::ordered_json;

std::string text_of(const std::string &path) {
    const Bytes b = read_bytes(path);
    return std::string(b.begin(), b.end());
}

TEST(MetricsLog, WritesLinesAndCutsBackToACheckpointsLength) {
    ScratchDir dir("metricslog");
    const std::string path = dir / "metrics.jsonl";
    int64_t after_first = 0;
    {
        dtokd::MetricsLog log(path);
        log.append(Json{{"type", "train"}, {"step", 1}, {"loss", 0.5}, {"pi", std::numeric_limits<double>::quiet_NaN()}});
        after_first = log.sync();
        log.append(Json{{"type", "epoch"}, {"step", 2}, {"name", "a \"quoted\"\\nname"}});
        EXPECT_GT(log.sync(), after_first);
    }
    const std::string all = text_of(path);
    EXPECT_EQ(int64_t(all.find('\n')) + 1, after_first);
    EXPECT_EQ(all.substr(0, size_t(after_first)), "{\"type\":\"train\",\"step\":1,\"loss\":0.5,\"pi\":null}\n");
    // The second line is valid JSON with its string escaped.
    EXPECT_EQ(Json::parse(all.substr(size_t(after_first)))["name"], "a \"quoted\"\\nname");
    {
        dtokd::MetricsLog resumed(path, after_first);  // the lines after the checkpoint go
        EXPECT_EQ(text_of(path), all.substr(0, size_t(after_first)));
        resumed.append(Json{{"type", "epoch"}, {"step", 2}});
        resumed.sync();
    }
    EXPECT_EQ(text_of(path), all.substr(0, size_t(after_first)) + "{\"type\":\"epoch\",\"step\":2}\n");
    // A file shorter than the checkpoint says was written: one error naming it, the file kept.
    const std::string before = text_of(path);
    try {
        dtokd::MetricsLog bad(path, 100000);
        ADD_FAILURE() << "accepted a metrics file shorter than the checkpoint's record";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("100000"), std::string::npos) << e.what();
    }
    EXPECT_EQ(text_of(path), before);
}

TEST(MetricsLog, AFullDiskIsOneErrorNamingTheFile) {
    // /dev/full accepts the open and fails every write with ENOSPC.
    dtokd::MetricsLog log("/dev/full");
    try {
        log.append(Json{{"type", "train"}});
        ADD_FAILURE() << "a write to /dev/full succeeded";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("No space"), std::string::npos) << e.what();
    }
    EXPECT_THROW(dtokd::MetricsLog("/no/such/folder/metrics.jsonl"), std::runtime_error);
}

}  // namespace
