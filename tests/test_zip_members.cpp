// verify_zip_members: every member of a zip (stored or deflated, zip64 or not) is checked
// against its CRC-32 and its records before LibTorch reads the archive. The archives are
// built here byte by byte, so each field the reader trusts can be changed on its own.
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "model_factory.h"
#include "scratch_data.h"
#include "zip_members.h"

using namespace dtokd_test;

namespace {

void put(std::string &b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) b.push_back(char(v >> (8 * i) & 0xff));
}

std::string raw_deflate(const std::string &in) {
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&z, uLong(in.size())), '\0');
    z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
    z.avail_in = uInt(in.size());
    z.next_out = reinterpret_cast<Bytef *>(out.data());
    z.avail_out = uInt(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

struct Member {
    std::string name, content;
    bool deflated = false;
};

// A zip as APPNOTE describes it; `zip64` writes sizes and offsets as all ones in the
// central directory and the end record, with the values in zip64 extra fields and a
// zip64 end record (as LibTorch does for its end record).
std::string make_zip(const std::vector<Member> &members, bool zip64) {
    std::string zip, central;
    for (const Member &m : members) {
        const std::string data = m.deflated ? raw_deflate(m.content) : m.content;
        const uint32_t crc = uint32_t(crc32(0L, reinterpret_cast<const Bytef *>(m.content.data()), uInt(m.content.size())));
        const uint64_t local = zip.size();
        put(zip, 0x04034b50, 4), put(zip, 20, 2), put(zip, 0, 2), put(zip, m.deflated ? 8 : 0, 2), put(zip, 0, 4);
        put(zip, crc, 4), put(zip, data.size(), 4), put(zip, m.content.size(), 4);
        put(zip, m.name.size(), 2), put(zip, 0, 2);
        zip += m.name + data;
        std::string extra;
        if (zip64) put(extra, 1, 2), put(extra, 24, 2), put(extra, m.content.size(), 8), put(extra, data.size(), 8),
            put(extra, local, 8);
        put(central, 0x02014b50, 4), put(central, 45, 2), put(central, 45, 2), put(central, 0, 2);
        put(central, m.deflated ? 8 : 0, 2), put(central, 0, 4), put(central, crc, 4);
        put(central, zip64 ? 0xffffffff : data.size(), 4), put(central, zip64 ? 0xffffffff : m.content.size(), 4);
        put(central, m.name.size(), 2), put(central, extra.size(), 2), put(central, 0, 2), put(central, 0, 2);
        put(central, 0, 2), put(central, 0, 4), put(central, zip64 ? 0xffffffff : local, 4);
        central += m.name + extra;
    }
    const uint64_t cd_offset = zip.size();
    zip += central;
    if (zip64) {
        const uint64_t record = zip.size();
        put(zip, 0x06064b50, 4), put(zip, 44, 8), put(zip, 45, 2), put(zip, 45, 2), put(zip, 0, 4), put(zip, 0, 4);
        put(zip, members.size(), 8), put(zip, members.size(), 8), put(zip, central.size(), 8), put(zip, cd_offset, 8);
        put(zip, 0x07064b50, 4), put(zip, 0, 4), put(zip, record, 8), put(zip, 1, 4);
    }
    put(zip, 0x06054b50, 4), put(zip, 0, 2), put(zip, 0, 2);
    put(zip, zip64 ? 0xffff : members.size(), 2), put(zip, zip64 ? 0xffff : members.size(), 2);
    put(zip, zip64 ? 0xffffffff : central.size(), 4), put(zip, zip64 ? 0xffffffff : cd_offset, 4), put(zip, 0, 2);
    return zip;
}

const std::vector<Member> kMembers = {{"a/stored", "stored bytes, read as they are"},
                                      {"a/deflated", std::string(3000, 'x') + "then some text", true},
                                      {"a/empty", ""}};

void verify(const std::string &zip) { dtokd::verify_zip_members("archive.zip", zip); }

std::string field_error(const std::string &zip) {
    try {
        verify(zip);
    } catch (const std::runtime_error &e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(ZipMembers, WellFormedArchivesPass) {
    for (bool zip64 : {false, true}) EXPECT_NO_THROW(verify(make_zip(kMembers, zip64))) << "zip64 " << zip64;
    EXPECT_NO_THROW(verify("not a zip at all: no end record"));  // left to the caller's reader
}

// A byte changed in any member's data (stored or deflated), in either layout, is one error
// naming the archive and the member; never accepted.
TEST(ZipMembers, AChangedMemberByteIsOneErrorNamingTheMember) {
    for (bool zip64 : {false, true})
        for (const Member &m : kMembers) {
            if (m.content.empty()) continue;
            const std::string zip = make_zip(kMembers, zip64);
            const std::string data = m.deflated ? raw_deflate(m.content) : m.content;
            const size_t at = zip.find(m.name + data) + m.name.size();
            ASSERT_NE(at, std::string::npos);
            for (size_t offset : {size_t(0), data.size() / 2, data.size() - 1}) {
                std::string bad = zip;
                bad[at + offset] ^= 0x20;
                const std::string error = field_error(bad);
                EXPECT_NE(error.find("archive.zip: unreadable checkpoint (corrupt zip archive: member '" + m.name + "'"),
                          std::string::npos)
                    << error << " (zip64 " << zip64 << ", offset " << offset << ")";
            }
        }
}

// The records' numbers are checked against the bytes before anything is read or allocated.
TEST(ZipMembers, RecordsThatPointOutsideTheBytesAreErrors) {
    const std::string zip = make_zip(kMembers, true);
    const size_t record = zip.rfind(std::string("\x50\x4b\x06\x06", 4));
    ASSERT_NE(record, std::string::npos);
    auto with = [&](size_t at, uint64_t v, int bytes) {
        std::string b = zip;
        std::string field;
        put(field, v, bytes);
        b.replace(at, size_t(bytes), field);
        return field_error(b);
    };
    EXPECT_NE(with(record + 32, 0x7fffffffffffULL, 8).find("entries cannot fit its central directory"), std::string::npos);
    EXPECT_NE(with(record + 40, ~0ULL - 8, 8).find("central directory outside the file"), std::string::npos);
    EXPECT_NE(with(record + 48, ~0ULL - 8, 8).find("central directory outside the file"), std::string::npos);
    EXPECT_NE(with(zip.size() - 22 - 20 + 8, ~0ULL - 3, 8).find("zip64 end record outside the file"), std::string::npos);
    // A member's zip64 sizes: larger than the bytes, or a deflated size that does not match.
    const size_t extra = zip.find(std::string("\x01\x00\x18\x00", 4));
    ASSERT_NE(extra, std::string::npos);
    EXPECT_NE(with(extra + 4 + 8, 5, 8).find("member 'a/stored' is stored with two sizes"), std::string::npos);
    EXPECT_NE(with(extra + 4 + 8, 1ULL << 40, 8).find("member 'a/stored' runs past the end"), std::string::npos);
    const size_t deflated_extra = zip.find(std::string("\x01\x00\x18\x00", 4), extra + 1);
    EXPECT_NE(with(deflated_extra + 4, 100, 8).find("member 'a/deflated' does not inflate to its 100 bytes"),
              std::string::npos);
    EXPECT_NE(with(deflated_extra + 4, 100000, 8).find("member 'a/deflated' does not inflate to its 100000 bytes"),
              std::string::npos);
    EXPECT_NE(with(deflated_extra + 4 + 16, 1ULL << 40, 8).find("local header of 'a/deflated'"), std::string::npos);
}

// LibTorch's own archives (zip64 end record, stored and deflated members) pass as written.
TEST(ZipMembers, LibTorchArchivesPass) {
    ScratchDir dir("zipok");
    auto model = dtokd::make_model("cnn_small", 1, 10);
    dtokd::CheckpointMeta meta;
    meta.model_name = "cnn_small", meta.num_classes = 10, meta.in_channels = 1, meta.height = 28, meta.width = 28;
    const std::string path = dir / "model.pt";
    dtokd::save_checkpoint(path, *model, meta);
    const Bytes bytes = read_bytes(path);
    const std::string payload(bytes.begin() + 24, bytes.end());
    ASSERT_NE(payload.find(std::string("\x50\x4b\x06\x06", 4)), std::string::npos) << "LibTorch wrote no zip64 record";
    EXPECT_NO_THROW(verify(payload));
}

// Fuzz regression (fuzz_checkpoint, mode 1: tests/data/fuzz-regressions/checkpoint/
// pickle-string-length-2GB): data.pkl with one string's length changed to 1.78 GB, framed with
// a correct checksum. The zip has a zip64 end record, which the reader used to leave to
// LibTorch, whose unpickler then ran for a minute and allocated over 2 GB before failing.
TEST(ZipMembers, FuzzRegressionChangedPickleLengthIsOneError) {
    ScratchDir dir("zippickle");
    const Bytes input = read_bytes(std::string(DTOKD_SOURCE_DIR) +
                                   "/tests/data/fuzz-regressions/checkpoint/pickle-string-length-2GB");
    ASSERT_EQ(input.at(0), 1) << "a mode-1 input: the payload follows";
    const std::string payload(input.begin() + 1, input.end());
    const std::string file = dtokd::frame_checkpoint_payload(payload);
    const std::string framed = dir / "framed.pt";
    write_bytes(framed, Bytes(file.begin(), file.end()));
    expect_error([&] { dtokd::read_checkpoint_meta(framed); },
                 {framed, "corrupt zip archive: member 'archive/data.pkl' fails its CRC-32"});
}
