// JPEG (libjpeg-turbo) and PNG (libpng) files decoded to 8-bit pixels, grey or RGB.
// Every failure is a std::runtime_error naming the file and what was wrong; nothing
// here aborts or prints (libjpeg's and libpng's default handlers are replaced).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dtokd {

enum class ImageFormat { jpeg, png };

// Larger headers are refused (before any allocation).
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

struct ImageHeader {
    ImageFormat format = ImageFormat::png;
    int width = 0, height = 0;
    int channels = 0;  // what the file holds once decoded: 1 (grey) or 3 (colour)
};

struct DecodedImage {
    int width = 0, height = 0, channels = 0;
    std::vector<uint8_t> pixels;  // height x width x channels, row-major (HWC)
};

// The format from the first bytes (not the file name): JPEG's FF D8 FF or PNG's signature.
// Throws for anything else (naming `name`).
ImageFormat sniff_image_format(const uint8_t *bytes, size_t size, const std::string &name);

// Reads only the header. Throws for an unsupported or corrupt header (e.g. CMYK JPEG).
ImageHeader read_image_header(const uint8_t *bytes, size_t size, const std::string &name);

// Decodes to `channels` (1 or 3): colour becomes grey with ITU-R 601 luma (as PIL's
// convert("L")), grey is repeated into RGB, alpha is dropped, palettes are expanded and
// 16-bit samples cut to 8. Throws for a truncated or corrupt body.
DecodedImage decode_image(const uint8_t *bytes, size_t size, int channels, const std::string &name);

std::vector<uint8_t> read_file_bytes(const std::string &path);

}  // namespace dtokd
