// Fuzz target: the JPEG/PNG decoder of image folders (image_decode.h). Input: one image
// file's bytes. A header that reads must decode (or be rejected naming the file) to the
// size it declared, in 1 and 3 channels.
#include "fuzz_support.h"
#include "image_decode.h"

namespace dtokd::fuzz {

int fuzz_image(const uint8_t *data, size_t size) {
    const std::string path = write_scratch("image-input", std::string_view(reinterpret_cast<const char *>(data), size));
    ImageHeader header;
    if (!accepts(path, [&] {
            const std::vector<uint8_t> bytes = read_file_bytes(path);
            header = read_image_header(bytes.data(), bytes.size(), path);
        }))
        return 0;
    if (header.channels != 1 && header.channels != 3)
        throw FuzzFinding("read_image_header accepted " + path + " with " + std::to_string(header.channels) + " channels");
    for (int channels : {1, 3}) {
        DecodedImage img;
        if (!accepts(path, [&] { img = decode_image(data, size, channels, path); })) return 0;
        if (img.width != header.width || img.height != header.height ||
            img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(channels))
            throw FuzzFinding("decode_image of " + path + " disagrees with its header");
    }
    return 1;
}

}  // namespace dtokd::fuzz

DTOKD_FUZZ_ENTRY(dtokd::fuzz::fuzz_image)
