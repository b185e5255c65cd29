// JPEG and PNG decoding (image_decode.h): lossless round trips through the encoders,
// the conversions torchvision's loader (PIL) makes, and one clear error per bad file.
#include <gtest/gtest.h>
#include <png.h>

#include <cstring>

#include "image_decode.h"
#include "image_encode.h"
#include "scratch_data.h"

namespace {

using dtokd_test::Bytes;
using dtokd_test::expect_error;
using dtokd_test::random_bytes;

dtokd::DecodedImage decode(const Bytes &b, int channels) { return dtokd::decode_image(b.data(), b.size(), channels, "img"); }

// A PNG in a layout the encoder does not write (alpha, 16-bit), through libpng directly.
Bytes png_with_format(const std::vector<uint8_t> &samples, int w, int h, png_uint_32 format) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = png_uint_32(w);
    image.height = png_uint_32(h);
    image.format = format;
    png_alloc_size_t size = 0;
    EXPECT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0, samples.data(), 0, nullptr));
    Bytes out(size);
    EXPECT_TRUE(png_image_write_to_memory(&image, out.data(), &size, 0, samples.data(), 0, nullptr));
    out.resize(size);
    return out;
}

TEST(ImageDecode, PngRoundTripsGreyAndRgbExactly) {
    for (const auto &[w, h] : {std::pair{1, 1}, std::pair{7, 5}, std::pair{33, 17}}) {
        for (int c : {1, 3}) {
            const Bytes pixels = random_bytes(size_t(w * h * c), uint32_t(w * 31 + c));
            const Bytes png = dtokd::encode_png(pixels.data(), w, h, c);
            const dtokd::ImageHeader header = dtokd::read_image_header(png.data(), png.size(), "img");
            EXPECT_EQ(header.format, dtokd::ImageFormat::png);
            EXPECT_EQ(header.width, w);
            EXPECT_EQ(header.height, h);
            EXPECT_EQ(header.channels, c);
            const dtokd::DecodedImage img = decode(png, c);
            EXPECT_EQ(img.width, w);
            EXPECT_EQ(img.height, h);
            EXPECT_EQ(img.pixels, pixels) << w << "x" << h << "x" << c;
        }
    }
}

TEST(ImageDecode, GreyBecomesRgbAndRgbBecomesPilLuma) {
    const int w = 9, h = 4;
    const Bytes grey = random_bytes(size_t(w * h), 3), rgb = random_bytes(size_t(w * h * 3), 4);
    const dtokd::DecodedImage as_rgb = decode(dtokd::encode_png(grey.data(), w, h, 1), 3);
    for (size_t p = 0; p < grey.size(); p++)
        for (int c = 0; c < 3; c++) ASSERT_EQ(as_rgb.pixels[p * 3 + size_t(c)], grey[p]);
    const dtokd::DecodedImage as_grey = decode(dtokd::encode_png(rgb.data(), w, h, 3), 1);
    for (size_t p = 0; p < grey.size(); p++) {
        // ITU-R 601 in float64: PIL's fixed-point result is within rounding of it.
        const double luma = 0.299 * rgb[p * 3] + 0.587 * rgb[p * 3 + 1] + 0.114 * rgb[p * 3 + 2];
        EXPECT_NEAR(double(as_grey.pixels[p]), luma, 0.51) << p;
    }
}

TEST(ImageDecode, AlphaIsDroppedAndSixteenBitIsCutToEight) {
    const int w = 5, h = 3;
    const Bytes rgba = random_bytes(size_t(w * h * 4), 5);
    const dtokd::DecodedImage img = decode(png_with_format(rgba, w, h, PNG_FORMAT_RGBA), 3);
    for (size_t p = 0; p < size_t(w * h); p++)
        for (int c = 0; c < 3; c++) ASSERT_EQ(img.pixels[p * 3 + size_t(c)], rgba[p * 4 + size_t(c)]) << p;
    // 16-bit grey: each sample's high byte equal to its low byte (v * 257) maps back to v.
    const Bytes grey = random_bytes(size_t(w * h), 6);
    std::vector<uint16_t> wide(grey.begin(), grey.end());
    for (uint16_t &v : wide) v = uint16_t(v * 257);
    std::vector<uint8_t> raw(wide.size() * 2);
    std::memcpy(raw.data(), wide.data(), raw.size());
    // PNG_FORMAT_LINEAR_Y is linear light; the decoder returns sRGB-encoded 8-bit, so
    // compare against the sRGB encoding of the linear values (libpng's gamma tables land
    // within 2.5 of the exact curve; taking the high byte as is would be off by up to 50).
    const dtokd::DecodedImage g = decode(png_with_format(raw, w, h, PNG_FORMAT_LINEAR_Y), 1);
    for (size_t p = 0; p < grey.size(); p++) {
        const double lin = grey[p] / 255.0;
        const double srgb = lin <= 0.0031308 ? 12.92 * lin : 1.055 * std::pow(lin, 1 / 2.4) - 0.055;
        EXPECT_NEAR(double(g.pixels[p]), 255.0 * srgb, 2.5) << p;
    }
}

TEST(ImageDecode, JpegDecodesCloseToWhatWasEncoded) {
    const int w = 40, h = 24;
    // A smooth image: JPEG's error on it is small; on noise it would not be.
    Bytes rgb(size_t(w * h * 3));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) rgb[size_t((y * w + x) * 3 + c)] = uint8_t(4 * x + 3 * y + 10 * c);
    const Bytes jpeg = dtokd::encode_jpeg(rgb.data(), w, h, 3, 95);
    const dtokd::ImageHeader header = dtokd::read_image_header(jpeg.data(), jpeg.size(), "img");
    EXPECT_EQ(header.format, dtokd::ImageFormat::jpeg);
    EXPECT_EQ(header.channels, 3);
    const dtokd::DecodedImage img = decode(jpeg, 3);
    ASSERT_EQ(img.pixels.size(), rgb.size());
    double err = 0;
    for (size_t i = 0; i < rgb.size(); i++) err += std::abs(double(img.pixels[i]) - double(rgb[i]));
    EXPECT_LT(err / double(rgb.size()), 3.0);
    const Bytes grey_jpeg = dtokd::encode_jpeg(rgb.data(), w * 3, h, 1, 95);  // any bytes as a grey image
    EXPECT_EQ(dtokd::read_image_header(grey_jpeg.data(), grey_jpeg.size(), "img").channels, 1);
    EXPECT_EQ(decode(grey_jpeg, 3).pixels.size(), size_t(w * 3 * h * 3));
}

TEST(ImageDecode, BadFilesAreOneErrorNamingThem) {
    const Bytes pixels = random_bytes(16 * 16 * 3, 7);
    const Bytes png = dtokd::encode_png(pixels.data(), 16, 16, 3), jpeg = dtokd::encode_jpeg(pixels.data(), 16, 16, 3);
    auto decode_named = [](const Bytes &b) { dtokd::decode_image(b.data(), b.size(), 3, "cat/7.png"); };
    expect_error([&] { decode_named(Bytes{}); }, {"cat/7.png", "empty file"});
    expect_error([&] { decode_named(Bytes{'G', 'I', 'F', '8', '9', 'a', 0, 0}); }, {"cat/7.png", "not a JPEG or PNG"});
    // Cut bodies: a PNG and a JPEG missing their second half.
    expect_error([&] { decode_named(Bytes(png.begin(), png.begin() + long(png.size() / 2))); }, {"cat/7.png", "corrupt PNG"});
    expect_error([&] { decode_named(Bytes(jpeg.begin(), jpeg.begin() + long(jpeg.size() / 2))); },
                 {"cat/7.png", "corrupt JPEG"});
    // A header cut short is found by the header read alone.
    const Bytes stub(png.begin(), png.begin() + 12);
    expect_error([&] { dtokd::read_image_header(stub.data(), stub.size(), "cat/7.png"); }, {"cat/7.png", "corrupt PNG"});
    expect_error<std::invalid_argument>([&] { dtokd::decode_image(png.data(), png.size(), 2, "cat/7.png"); },
                                        {"cat/7.png", "2 channels"});
    // A 107-byte PNG whose header claims 30000 x 30000: refused at the header, before any
    // allocation (the fuzz seed of the image target).
    const Bytes huge = dtokd_test::read_bytes(std::string(DTOKD_SOURCE_DIR) + "/fuzz/corpus/image/invalid-png-30000x30000-header");
    expect_error([&] { dtokd::read_image_header(huge.data(), huge.size(), "big.png"); },
                 {"big.png", "30000x30000", "at most 67108864 pixels"});
}

}  // namespace
