// See image_decode.h. PNG goes through libpng's simplified API (it handles palettes,
// 16-bit, gamma and interlacing); alpha and colour conversion are done here so they
// match PIL's convert(), which torchvision's ImageFolder loader uses.
#include "image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <jpeglib.h>
#include <png.h>

#include "jpeg_error.h"

namespace dtokd {

namespace {

[[noreturn]] void fail(const std::string &name, const std::string &what) {
    throw std::runtime_error(name + ": " + what);
}

// Warnings (e.g. a truncated file, which libjpeg pads with grey) are counted, not
// printed, and become errors below.
void jpeg_count_warning(j_common_ptr cinfo, int level) {
    if (level < 0) cinfo->err->num_warnings++;
}

// One decompressor for header and body; `body` false stops after the header.
// Returns false (with `message`) on a libjpeg error.
bool run_jpeg(const uint8_t *bytes, size_t size, bool body, int *w, int *h, int *c, std::vector<uint8_t> *out,
              std::string *message) {
    jpeg_decompress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_error_exit;
    err.mgr.emit_message = jpeg_count_warning;
    if (setjmp(err.jump)) {
        *message = err.message;
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    const J_COLOR_SPACE space = cinfo.jpeg_color_space;
    if (space == JCS_CMYK || space == JCS_YCCK) {
        *message = "CMYK JPEG is not supported (convert it to RGB)";
        jpeg_destroy_decompress(&cinfo);
        return false;
    }
    *w = int(cinfo.image_width);
    *h = int(cinfo.image_height);
    *c = space == JCS_GRAYSCALE ? 1 : 3;
    if (body) {
        cinfo.out_color_space = *c == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_start_decompress(&cinfo);
        const size_t stride = size_t(cinfo.output_width) * size_t(cinfo.output_components);
        out->resize(stride * cinfo.output_height);
        // Stops at the first warning: a cut file would otherwise be padded to its full height.
        while (cinfo.output_scanline < cinfo.output_height && cinfo.err->num_warnings == 0) {
            JSAMPROW row = out->data() + stride * cinfo.output_scanline;
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
        // A truncated file is a warning to libjpeg (it pads with grey): treat it as corrupt.
        if (cinfo.err->num_warnings > 0) {
            (*cinfo.err->format_message)(reinterpret_cast<j_common_ptr>(&cinfo), err.message);
            *message = err.message;
            jpeg_destroy_decompress(&cinfo);
            return false;
        }
        jpeg_finish_decompress(&cinfo);
    }
    jpeg_destroy_decompress(&cinfo);
    return true;
}

struct PngImage {
    png_image image;
    PngImage() {
        std::memset(&image, 0, sizeof image);
        image.version = PNG_IMAGE_VERSION;
    }
    ~PngImage() { png_image_free(&image); }
};

void begin_png(PngImage &png, const uint8_t *bytes, size_t size, const std::string &name) {
    if (!png_image_begin_read_from_memory(&png.image, bytes, size))
        fail(name, std::string("corrupt PNG (") + png.image.message + ")");
}

int png_channels(const png_image &image) { return (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1; }

void check_size(int w, int h, const std::string &name) {
    // A header is a few bytes: without a bound, a corrupt one makes the decoder allocate
    // gigabytes before the data runs out. 2^26 pixels is a 67-megapixel photo.
    if (w < 1 || h < 1 || w > 32768 || h > 32768)
        fail(name, "image size " + std::to_string(w) + "x" + std::to_string(h) + "; expected 1..32768 on each side");
    if (int64_t(w) * int64_t(h) > kMaxImagePixels)
        fail(name, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels; dtokd reads at most " +
                       std::to_string(kMaxImagePixels) + " pixels per image");
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t *bytes, size_t size, const std::string &name) {
    static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (size >= 8 && std::memcmp(bytes, kPng, 8) == 0) return ImageFormat::png;
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return ImageFormat::jpeg;
    fail(name, size == 0 ? "empty file; expected a JPEG or PNG image"
                         : "not a JPEG or PNG image (unrecognized first bytes)");
}

ImageHeader read_image_header(const uint8_t *bytes, size_t size, const std::string &name) {
    ImageHeader h;
    h.format = sniff_image_format(bytes, size, name);
    if (h.format == ImageFormat::jpeg) {
        std::string message;
        if (!run_jpeg(bytes, size, false, &h.width, &h.height, &h.channels, nullptr, &message))
            fail(name, "corrupt JPEG (" + message + ")");
    } else {
        PngImage png;
        begin_png(png, bytes, size, name);
        h.width = int(png.image.width);
        h.height = int(png.image.height);
        h.channels = png_channels(png.image);
    }
    check_size(h.width, h.height, name);
    return h;
}

DecodedImage decode_image(const uint8_t *bytes, size_t size, int channels, const std::string &name) {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument(name + ": cannot decode to " + std::to_string(channels) +
                                    " channels; expected 1 or 3");
    DecodedImage img;
    std::vector<uint8_t> native;
    int native_channels = 0, stride_channels = 0;
    if (sniff_image_format(bytes, size, name) == ImageFormat::jpeg) {
        std::string message;
        if (!run_jpeg(bytes, size, true, &img.width, &img.height, &native_channels, &native, &message))
            fail(name, "corrupt JPEG (" + message + ")");
        stride_channels = native_channels;
    } else {
        PngImage png;
        begin_png(png, bytes, size, name);
        native_channels = png_channels(png.image);
        const bool alpha = png.image.format & PNG_FORMAT_FLAG_ALPHA;
        // Alpha is kept through the read and dropped below: no compositing (as PIL's convert).
        png.image.format = native_channels == 3 ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                                                : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
        img.width = int(png.image.width);
        img.height = int(png.image.height);
        check_size(img.width, img.height, name);
        stride_channels = int(PNG_IMAGE_PIXEL_CHANNELS(png.image.format));
        // Deflate expands at most 1032:1, so larger pixels than that cannot be in the file.
        if (uint64_t(PNG_IMAGE_SIZE(png.image)) > 1040ull * size + 4096)
            fail(name, "corrupt PNG (" + std::to_string(img.width) + "x" + std::to_string(img.height) +
                           " pixels cannot come from " + std::to_string(size) + " bytes)");
        native.resize(PNG_IMAGE_SIZE(png.image));
        if (!png_image_finish_read(&png.image, nullptr, native.data(), 0, nullptr))
            fail(name, std::string("corrupt PNG (") + png.image.message + ")");
    }
    check_size(img.width, img.height, name);
    img.channels = channels;
    const size_t pixels = size_t(img.width) * size_t(img.height);
    img.pixels.resize(pixels * size_t(channels));
    uint8_t *dst = img.pixels.data();
    const uint8_t *src = native.data();
    for (size_t p = 0; p < pixels; p++, src += stride_channels) {
        if (channels == native_channels) {
            for (int c = 0; c < channels; c++) *dst++ = src[c];
        } else if (channels == 3) {
            dst[0] = dst[1] = dst[2] = src[0];
            dst += 3;
        } else {
            // ITU-R 601 luma in PIL's 16-bit fixed point (its convert("L")).
            *dst++ = uint8_t((src[0] * 19595 + src[1] * 38470 + src[2] * 7471 + 0x8000) >> 16);
        }
    }
    return img;
}

std::vector<uint8_t> read_file_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw std::runtime_error(path + ": cannot open the file");
    const std::streamsize size = in.tellg();
    std::vector<uint8_t> bytes(size_t(std::max<std::streamsize>(size, 0)));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char *>(bytes.data()), size))
        throw std::runtime_error(path + ": read failed");
    return bytes;
}

}  // namespace dtokd
