// pipelines/run_folder.h: a run is built in <out>.partial under a flock and renamed when
// done; an existing run, a .partial held by another RunFolder (another process: flock
// conflicts between separate opens of the folder) and a stale .partial left by an
// interrupted run are each one error, and nothing already there is touched.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "run_folder.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;
namespace fs = std::filesystem;

TEST(RunFolder, BuildsInPartialThenRenames) {
    ScratchDir dir("runfolder");
    const std::string out = dir / "run";
    dtokd::RunFolder folder(out);
    EXPECT_TRUE(fs::is_directory(out + ".partial"));
    EXPECT_EQ(folder.path("metrics.jsonl"), out + ".partial/metrics.jsonl");
    std::ofstream(folder.path("metrics.jsonl")) << "{}\n";
    folder.finish();
    EXPECT_FALSE(fs::exists(out + ".partial"));
    EXPECT_TRUE(fs::is_regular_file(out + "/metrics.jsonl"));
    EXPECT_EQ(folder.path("summary.json"), out + "/summary.json");
    const std::string again = error_of([&] { dtokd::RunFolder second(out); });
    EXPECT_NE(again.find("already exists"), std::string::npos) << again;
}

TEST(RunFolder, ASecondWriterIsRefusedAndTheFirstIsUnharmed) {
    ScratchDir dir("runfolderlock");
    const std::string out = dir / "run";
    dtokd::RunFolder first(out);
    std::ofstream(first.path("metrics.jsonl")) << "line\n";
    const std::string e1 = error_of([&] { dtokd::RunFolder::check_available(out); });
    const std::string e2 = error_of([&] { dtokd::RunFolder second(out); });
    for (const std::string &e : {e1, e2}) {
        EXPECT_NE(e.find(out + ".partial"), std::string::npos) << e;
        EXPECT_NE(e.find("another dtokd process"), std::string::npos) << e;
    }
    EXPECT_EQ(read_bytes(first.path("metrics.jsonl")), Bytes({'l', 'i', 'n', 'e', '\n'}));
    first.finish();
    EXPECT_TRUE(fs::is_regular_file(out + "/metrics.jsonl"));
}

TEST(RunFolder, AStalePartialIsNeverDeleted) {
    ScratchDir dir("runfolderstale");
    const std::string out = dir / "run";
    fs::create_directories(out + ".partial");
    std::ofstream(out + ".partial/checkpoint.pt") << "what an interrupted run left";
    const std::string e = error_of([&] { dtokd::RunFolder folder(out); });
    EXPECT_NE(e.find("interrupted run"), std::string::npos) << e;
    EXPECT_NE(e.find("rm -r"), std::string::npos) << e;
    EXPECT_TRUE(fs::is_regular_file(out + ".partial/checkpoint.pt"));
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(dtokd::RunFolder::partial_state(out), dtokd::RunFolder::Partial::stale);
    EXPECT_EQ(dtokd::RunFolder::partial_state(dir / "other"), dtokd::RunFolder::Partial::none);
    dtokd::RunFolder held(dir / "other");
    EXPECT_EQ(dtokd::RunFolder::partial_state(dir / "other"), dtokd::RunFolder::Partial::held);
}

}  // namespace
