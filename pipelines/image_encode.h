// 8-bit grey or RGB pixels (HWC) encoded as PNG or JPEG: for writing image folders
// (the IDX-to-folder converter, tests, benchmarks). Errors name the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtokd {

std::vector<uint8_t> encode_png(const uint8_t *pixels, int width, int height, int channels);
std::vector<uint8_t> encode_jpeg(const uint8_t *pixels, int width, int height, int channels, int quality = 90);

// Writes `bytes` to `path` (plain write: folders of images are not run state).
void write_bytes(const std::string &path, const std::vector<uint8_t> &bytes);

}  // namespace dtokd
