// See image_encode.h.
#include "image_encode.h"

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

void check_channels(int channels, const char *what) {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(channels) +
                                    " channels; expected 1 or 3");
}

// libjpeg allocates the output with malloc; copied out and freed on every path.
bool compress_jpeg(const uint8_t *pixels, int width, int height, int channels, int quality,
                   std::vector<uint8_t> *out, std::string *message) {
    jpeg_compress_struct cinfo;
    JpegError err;
    unsigned char *buffer = nullptr;
    unsigned long size = 0;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_error_exit;
    if (setjmp(err.jump)) {
        *message = err.message;
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = JDIMENSION(width);
    cinfo.image_height = JDIMENSION(height);
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    const size_t stride = size_t(width) * size_t(channels);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<uint8_t *>(pixels) + stride * cinfo.next_scanline;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    out->assign(buffer, buffer + size);
    jpeg_destroy_compress(&cinfo);
    free(buffer);
    return true;
}

}  // namespace

std::vector<uint8_t> encode_png(const uint8_t *pixels, int width, int height, int channels) {
    check_channels(channels, "encode_png");
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = png_uint_32(width);
    image.height = png_uint_32(height);
    image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels, 0, nullptr))
        throw std::runtime_error(std::string("encode_png: ") + image.message);
    std::vector<uint8_t> out(size);
    if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels, 0, nullptr))
        throw std::runtime_error(std::string("encode_png: ") + image.message);
    out.resize(size);
    return out;
}

std::vector<uint8_t> encode_jpeg(const uint8_t *pixels, int width, int height, int channels, int quality) {
    check_channels(channels, "encode_jpeg");
    std::vector<uint8_t> out;
    std::string message;
    if (!compress_jpeg(pixels, width, height, channels, quality, &out, &message))
        throw std::runtime_error("encode_jpeg: " + message);
    return out;
}

void write_bytes(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot create the file");
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

}  // namespace dtokd
