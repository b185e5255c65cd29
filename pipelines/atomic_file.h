// The one way dtokd writes a file it must not half-write (checkpoints, caches, run
// summaries, configs): the bytes go to a temp file beside the target, every write()
// and the fsync are checked, then rename over the target and fsync the folder. On any
// failure (no space, a write error, a missing folder) the temp file is removed, the
// previous target is left as it was, and a std::runtime_error names the target and
// the system's reason.
#pragma once
#include <string>
#include <string_view>

namespace dtokd {

void write_file_atomic(const std::string &path, std::string_view contents);

}  // namespace dtokd
