// `dtokd plot`: each run gets accuracy, losses, pi and conflict PNGs, several runs also an
// overlay; every PNG is decoded here (signature, chunk CRCs, IHDR, the inflated image
// data's exact size) and has the size the plotting module draws (800 x 500). A folder that
// is not a run is one error naming it. Skips without python3-matplotlib.
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <set>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "scratch_data.h"

namespace {

using namespace dtokd_test;

uint32_t be32(const Bytes &b, size_t at) {
    return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | uint32_t(b[at + 3]);
}

struct Png {
    uint32_t width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    Bytes pixels;  // inflated IDAT: per row a filter byte and the row's samples
};

// A PNG read chunk by chunk (every CRC checked) and its image data inflated; ADD_FAILURE on any defect.
Png decode_png(const std::string &path) {
    Png png;
    const Bytes b = read_bytes(path);
    const Bytes signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (b.size() < 8 || !std::equal(signature.begin(), signature.end(), b.begin())) {
        ADD_FAILURE() << path << ": not a PNG";
        return png;
    }
    Bytes idat;
    bool ended = false;
    for (size_t at = 8; at + 12 <= b.size() && !ended;) {
        const uint32_t len = be32(b, at);
        if (at + 12 + len > b.size()) {
            ADD_FAILURE() << path << ": chunk past the end";
            return png;
        }
        const std::string type(b.begin() + long(at) + 4, b.begin() + long(at) + 8);
        const uint32_t crc = uint32_t(crc32(0L, b.data() + at + 4, uInt(4 + len)));
        EXPECT_EQ(crc, be32(b, at + 8 + len)) << path << ": chunk " << type << " fails its CRC";
        if (type == "IHDR") {
            png.width = be32(b, at + 8);
            png.height = be32(b, at + 12);
            png.bit_depth = b[at + 16];
            png.color_type = b[at + 17];
        } else if (type == "IDAT") {
            idat.insert(idat.end(), b.begin() + long(at) + 8, b.begin() + long(at) + 8 + len);
        } else if (type == "IEND") {
            ended = true;
        }
        at += 12 + len;
    }
    EXPECT_TRUE(ended) << path << ": no IEND";
    const int channels = png.color_type == 6 ? 4 : png.color_type == 2 ? 3 : 1;
    png.pixels.resize(size_t(png.height) * (1 + size_t(png.width) * size_t(channels)) + 1);
    uLongf size = uLongf(png.pixels.size());
    EXPECT_EQ(uncompress(png.pixels.data(), &size, idat.data(), uLong(idat.size())), Z_OK) << path;
    png.pixels.resize(size);
    EXPECT_EQ(png.pixels.size(), size_t(png.height) * (1 + size_t(png.width) * size_t(channels))) << path;
    return png;
}

void expect_plots(const std::string &dir) {
    for (const char *name : {"accuracy", "losses", "pi", "conflict"}) {
        const std::string path = dir + "/" + name + ".png";
        ASSERT_TRUE(fs::exists(path)) << path;
        const Png png = decode_png(path);
        EXPECT_EQ(png.width, 800u) << path;
        EXPECT_EQ(png.height, 500u) << path;
        EXPECT_EQ(png.bit_depth, 8) << path;
        // Something is drawn: many distinct byte values, not a blank canvas.
        const std::set<uint8_t> values(png.pixels.begin(), png.pixels.end());
        EXPECT_GT(values.size(), 16u) << path;
    }
}

}  // namespace

TEST(PlotCli, WritesDecodablePlotsOfEachRunAndTheirOverlay) {
    if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "no python3-matplotlib (scripts/setup.sh installs it)";
    ScratchDir dir("plotcli");
    fs::create_directories(dir / "data");
    write_idx_dataset(dir / "data", random_idx_split(128, 28, 28, 10, 41), random_idx_split(32, 28, 28, 10, 42), 28,
                      28, /*gz=*/false);
    const std::string data = " --dataset mnist --data " + quoted(dir / "data") +
                             " --model cnn_small --epochs 2 --batch-size 32 --log-interval 2 --no-progress --out ";
    CliResult r = run_cli("--threads 1 train" + data + quoted(dir / "teacher"));
    ASSERT_EQ(r.code, 0) << r.output;
    r = run_cli("--threads 1 distill --method dto --teacher " + quoted(dir / "teacher/checkpoint.pt") + data +
                quoted(dir / "student"));
    ASSERT_EQ(r.code, 0) << r.output;
    r = run_cli("plot " + quoted(dir / "student") + " " + quoted(dir / "teacher") + " --out " + quoted(dir / "both"));
    ASSERT_EQ(r.code, 0) << r.output;
    expect_plots(dir / "student/plots");
    expect_plots(dir / "teacher/plots");
    expect_plots(dir / "both");

    r = run_cli("plot " + quoted(dir / "missing"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.output.find(dir / "missing" + ": no such run folder"), std::string::npos) << r.output;
    r = run_cli("plot " + quoted(dir / "data"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.output.find("no metrics.jsonl; expected a dtokd run folder"), std::string::npos) << r.output;
}
