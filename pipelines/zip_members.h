// Verifies a zip archive's members before LibTorch reads it. LibTorch 1.13's zip reader
// (miniz, built without its CRC checks) trusts every byte: a changed member reaches its
// unpickler or TorchScript importer, which may crash (SEGV) or allocate gigabytes for one
// changed length (both found by fuzz_checkpoint). Checking each member's CRC-32 first
// turns any changed byte into one error; a file crafted with correct CRCs is not caught.
#pragma once
#include <string>

namespace dtokd {

// Throws std::runtime_error "<path>: unreadable checkpoint (corrupt zip archive: ...)"
// when the central directory (zip64 included) is inconsistent with the bytes, a member
// lies outside them, a deflated member does not inflate to its declared size, or a
// member's CRC-32 differs. Bytes without an end record are not a zip: left to the caller.
void verify_zip_members(const std::string &path, const std::string &zip);

}  // namespace dtokd
