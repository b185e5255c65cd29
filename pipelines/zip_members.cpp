// See zip_members.h. Field offsets from PKWARE's APPNOTE (4.3.12-4.3.16, 4.5.3).
#include "zip_members.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace dtokd {

namespace {

uint64_t le(const std::string &b, size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | uint8_t(b[at + size_t(i)]);
    return v;
}

constexpr uint32_t kEndSig = 0x06054b50, kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50,
                   kCentralSig = 0x02014b50, kLocalSig = 0x04034b50;
constexpr size_t kEnd = 22, kZip64Locator = 20, kZip64End = 56, kCentral = 46, kLocal = 30;

struct Reader {
    const std::string &path, &zip;

    [[noreturn]] void corrupt(const std::string &what) const {
        throw std::runtime_error(path + ": unreadable checkpoint (corrupt zip archive: " + what + ")");
    }
    // True when [at, at + n) lies inside the bytes (no overflow for hostile 64-bit values).
    bool inside(uint64_t at, uint64_t n) const { return at <= zip.size() && n <= zip.size() - at; }

    // CRC-32 of a member's stored bytes, or of what they inflate to (method 8); the inflated
    // length must be exactly `size`, so a changed length cannot make us allocate more.
    uint32_t member_crc(const std::string &name, uint32_t method, uint64_t data, uint64_t stored, uint64_t size) const {
        const auto *bytes = reinterpret_cast<const Bytef *>(zip.data() + data);
        if (method == 0) {
            if (stored != size) corrupt("member '" + name + "' is stored with two sizes");
            return uint32_t(crc32_z(0L, bytes, size_t(stored)));
        }
        if (method != 8) corrupt("member '" + name + "' uses compression method " + std::to_string(method));
        z_stream z{};
        if (inflateInit2(&z, -MAX_WBITS) != Z_OK) corrupt("member '" + name + "': zlib cannot start");
        uLong crc = crc32_z(0L, Z_NULL, 0);
        std::vector<Bytef> out(64 * 1024);
        uint64_t produced = 0, consumed = 0;
        int rc = Z_OK;
        while (rc != Z_STREAM_END) {
            if (z.avail_in == 0) {
                const uint64_t n = std::min<uint64_t>(stored - consumed, 1u << 30);
                z.next_in = const_cast<Bytef *>(bytes + consumed);
                z.avail_in = uInt(n);
                consumed += n;
            }
            z.next_out = out.data();
            z.avail_out = uInt(out.size());
            rc = inflate(&z, Z_NO_FLUSH);
            const uint64_t got = out.size() - z.avail_out;
            produced += got;
            if (produced > size || (rc != Z_OK && rc != Z_STREAM_END) ||
                (rc == Z_OK && got == 0 && z.avail_in == 0 && consumed == stored)) {
                inflateEnd(&z);
                corrupt("member '" + name + "' does not inflate to its " + std::to_string(size) + " bytes");
            }
            crc = crc32_z(crc, out.data(), size_t(got));
        }
        inflateEnd(&z);
        if (produced != size) corrupt("member '" + name + "' does not inflate to its " + std::to_string(size) + " bytes");
        return uint32_t(crc);
    }
};

}  // namespace

void verify_zip_members(const std::string &path, const std::string &zip) {
    const Reader r{path, zip};
    if (zip.size() < kEnd) return;
    // The end record is in the last 22 + 65535 (comment) bytes; the last one found wins.
    size_t end = std::string::npos;
    for (size_t at = zip.size() - kEnd + 1; at-- > 0 && zip.size() - at <= kEnd + 0xffff;)
        if (le(zip, at, 4) == kEndSig) {
            end = at;
            break;
        }
    if (end == std::string::npos) return;
    uint64_t entries = le(zip, end + 10, 2), cd_size = le(zip, end + 12, 4), cd_offset = le(zip, end + 16, 4);
    // Zip64 (LibTorch writes it for every archive): a locator just before the end record
    // points to a record whose 64-bit values LibTorch's reader (miniz) uses instead of the
    // end record's, whatever those say; so do we.
    size_t directory_end = end;
    if (end >= kZip64Locator && le(zip, end - kZip64Locator, 4) == kZip64LocatorSig) {
        const uint64_t record = le(zip, end - kZip64Locator + 8, 8);
        if (!r.inside(record, kZip64End) || record + kZip64End > end - kZip64Locator ||
            le(zip, size_t(record), 4) != kZip64EndSig)
            r.corrupt("zip64 end record outside the file");
        entries = le(zip, size_t(record) + 32, 8);
        cd_size = le(zip, size_t(record) + 40, 8);
        cd_offset = le(zip, size_t(record) + 48, 8);
        directory_end = size_t(record);
    }
    if (!r.inside(cd_offset, cd_size) || cd_offset + cd_size > directory_end)
        r.corrupt("central directory outside the file");
    if (entries > cd_size / kCentral) r.corrupt(std::to_string(entries) + " entries cannot fit its central directory");
    uint64_t at = cd_offset;
    const uint64_t cd_end = cd_offset + cd_size;
    for (uint64_t i = 0; i < entries; i++) {
        const std::string entry = "central directory entry " + std::to_string(i);
        if (at + kCentral > cd_end || le(zip, size_t(at), 4) != kCentralSig) r.corrupt(entry);
        const uint32_t method = uint32_t(le(zip, at + 10, 2)), crc = uint32_t(le(zip, at + 16, 4));
        uint64_t stored = le(zip, at + 20, 4), size = le(zip, at + 24, 4), local = le(zip, at + 42, 4);
        const uint64_t name_len = le(zip, at + 28, 2), extra_len = le(zip, at + 30, 2);
        const uint64_t next = at + kCentral + name_len + extra_len + le(zip, at + 32, 2);
        if (next > cd_end) r.corrupt(entry);
        const std::string name = zip.substr(size_t(at + kCentral), size_t(name_len));
        // Zip64 extra field (id 1): 64-bit values, in this order, for the fields set to all ones.
        for (uint64_t x = at + kCentral + name_len; x + 4 <= at + kCentral + name_len + extra_len;) {
            const uint64_t id = le(zip, x, 2), len = le(zip, x + 2, 2);
            if (x + 4 + len > at + kCentral + name_len + extra_len) r.corrupt("extra field of '" + name + "'");
            if (id == 1) {
                uint64_t f = x + 4;
                for (uint64_t *v : {&size, &stored, &local})
                    if (*v == 0xffffffff) {
                        if (f + 8 > x + 4 + len) r.corrupt("zip64 field of '" + name + "'");
                        *v = le(zip, f, 8);
                        f += 8;
                    }
            }
            x += 4 + len;
        }
        if (!r.inside(local, kLocal) || le(zip, size_t(local), 4) != kLocalSig) r.corrupt("local header of '" + name + "'");
        const uint64_t data = local + kLocal + le(zip, local + 26, 2) + le(zip, local + 28, 2);
        if (!r.inside(data, stored)) r.corrupt("member '" + name + "' runs past the end");
        if (r.member_crc(name, method, data, stored, size) != crc) r.corrupt("member '" + name + "' fails its CRC-32");
        at = next;
    }
}

}  // namespace dtokd
