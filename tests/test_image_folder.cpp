// Image folders (image_folder.h) and the loader's work on them (batch_loader.h):
// folders of PNG and JPEG files written here, including grey and colour images, a
// corrupt file, an empty class folder and files of other kinds.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "batch_loader.h"
#include "image_decode.h"
#include "image_encode.h"
#include "image_folder.h"
#include "scratch_data.h"

namespace {

using dtokd_test::Bytes;
using dtokd_test::expect_error;
using dtokd_test::random_bytes;
using dtokd_test::ScratchDir;
namespace fs = std::filesystem;

// Writes an image of random pixels (also returned) as PNG or JPEG at `rel` under `dir`.
Bytes put_image(const ScratchDir &dir, const std::string &rel, int w, int h, int c, uint32_t seed) {
    const Bytes pixels = random_bytes(size_t(w * h * c), seed);
    const fs::path path = dir.path() / rel;
    fs::create_directories(path.parent_path());
    const bool jpeg = path.extension() == ".jpg" || path.extension() == ".JPEG";
    dtokd::write_bytes(path.string(), jpeg ? dtokd::encode_jpeg(pixels.data(), w, h, c) : dtokd::encode_png(pixels.data(), w, h, c));
    return pixels;
}

// DIR/{train,val}/{a_cat,b_dog,c_bird}: grey 8x8 images, PNG and JPEG, one nested folder,
// a note that is not an image.
void write_grey_folder(const ScratchDir &dir) {
    uint32_t seed = 1;
    for (const std::string split : {"train", "val"}) {
        put_image(dir, split + "/b_dog/1.png", 8, 8, 1, seed++);
        put_image(dir, split + "/a_cat/2.png", 8, 8, 1, seed++);
        put_image(dir, split + "/a_cat/1.jpg", 8, 8, 1, seed++);
        put_image(dir, split + "/c_bird/nested/x.PNG", 8, 8, 1, seed++);
        dtokd_test::write_bytes(dir / (split + "/c_bird/README.txt"), Bytes{'h', 'i'});
    }
}

dtokd::ImageFolderOptions options(int size = 8) {
    dtokd::ImageFolderOptions o;
    o.image_size = size;
    o.center_crop_fraction = 1.0;
    return o;
}

TEST(ImageFolder, ClassesAreSortedFolderNamesAndFilesAreListedRecursively) {
    ScratchDir dir("folder-layout");
    write_grey_folder(dir);
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), options());
    EXPECT_EQ(p.train.class_names, (std::vector<std::string>{"a_cat", "b_dog", "c_bird"}));
    EXPECT_EQ(p.test.class_names, p.train.class_names);
    EXPECT_EQ(p.train.num_classes, 3);
    ASSERT_EQ(p.train.size(), 4);
    EXPECT_EQ(p.train.channels(), 1);  // every image is grey
    EXPECT_EQ(p.train.height(), 8);
    std::vector<std::string> names;
    for (const std::string &f : p.train.files->paths) names.push_back(fs::relative(f, dir.path() / "train").string());
    EXPECT_EQ(names, (std::vector<std::string>{"a_cat/1.jpg", "a_cat/2.png", "b_dog/1.png", "c_bird/nested/x.PNG"}));
    EXPECT_EQ(std::vector<int64_t>(p.train.labels.data_ptr<int64_t>(), p.train.labels.data_ptr<int64_t>() + 4),
              (std::vector<int64_t>{0, 0, 1, 2}));
    EXPECT_TRUE(p.train.left_out.empty());
}

TEST(ImageFolder, OneColourImageMakesTheInputRgbUnlessChannelsAreGiven) {
    ScratchDir dir("folder-rgb");
    write_grey_folder(dir);
    put_image(dir, "train/b_dog/rgb.png", 10, 6, 3, 99);
    EXPECT_EQ(dtokd::load_image_folder(dir.str(), options()).train.channels(), 3);
    dtokd::ImageFolderOptions grey = options();
    grey.channels = 1;
    EXPECT_EQ(dtokd::load_image_folder(dir.str(), grey).train.channels(), 1);
}

TEST(ImageFolder, LayoutMistakesAreOneErrorNamingThePlace) {
    ScratchDir dir("folder-errors");
    expect_error([&] { dtokd::load_image_folder(dir / "nope", options()); }, {"nope", "not found"});
    write_grey_folder(dir);
    fs::create_directories(dir.path() / "train/d_empty");
    fs::create_directories(dir.path() / "val/d_empty");
    expect_error([&] { dtokd::load_image_folder(dir.str(), options()); }, {"train/d_empty", "no JPEG or PNG images"});
    fs::remove_all(dir.path() / "val/d_empty");
    expect_error([&] { dtokd::load_image_folder(dir.str(), options()); },
                 {"different class folders", "only in train: [d_empty]", "only in val: []"});
    fs::remove_all(dir.path() / "train/d_empty");
    fs::remove_all(dir.path() / "val");
    expect_error([&] { dtokd::load_image_folder(dir.str(), options()); }, {"val", "DIR/val/<class>"});
}

TEST(ImageFolder, BadFilesFailNamingThemOrAreLeftOutAndListed) {
    ScratchDir dir("folder-bad");
    write_grey_folder(dir);
    dtokd_test::write_bytes(dir / "train/b_dog/garbage.png", random_bytes(300, 5));
    dtokd_test::write_bytes(dir / "val/a_cat/anim.gif", Bytes{'G', 'I', 'F', '8'});
    expect_error([&] { dtokd::load_image_folder(dir.str(), options()); }, {"b_dog/garbage.png", "not a JPEG or PNG"});
    dtokd::ImageFolderOptions skip = options();
    skip.skip_bad_images = true;
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), skip);
    EXPECT_EQ(p.train.size(), 4);
    ASSERT_EQ(p.train.left_out.size(), 1u);
    EXPECT_NE(p.train.left_out[0].find("garbage.png"), std::string::npos);
    ASSERT_EQ(p.test.left_out.size(), 1u);
    EXPECT_NE(p.test.left_out[0].find("anim.gif: unsupported image format"), std::string::npos);
    // A class whose every file is bad has no images left: still an error.
    fs::remove(dir.path() / "train/b_dog/1.png");
    expect_error([&] { dtokd::load_image_folder(dir.str(), skip); }, {"train/b_dog", "no readable"});
}

TEST(ImageFolder, ComputedNormalizationIsThePixelStatisticsOfTheTrainingImages) {
    ScratchDir dir("folder-stats");
    std::vector<Bytes> all;
    for (int i = 0; i < 6; i++)
        all.push_back(put_image(dir, "train/" + std::string(i % 2 ? "x" : "y") + "/" + std::to_string(i) + ".png", 8,
                                8, 3, uint32_t(40 + i)));
    put_image(dir, "val/x/0.png", 8, 8, 3, 1);
    put_image(dir, "val/y/0.png", 8, 8, 3, 2);
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), options());
    ASSERT_EQ(p.train.mean.size(), 3u);
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0, n = 0;
        for (const Bytes &img : all)
            for (size_t i = size_t(c); i < img.size(); i += 3) {
                const double v = img[i] / 255.0;
                s += v;
                s2 += v * v;
                n++;
            }
        const double mean = s / n, std = std::sqrt(s2 / n - mean * mean);
        EXPECT_NEAR(p.train.mean[size_t(c)], mean, 1e-6);
        EXPECT_NEAR(p.train.std[size_t(c)], std, 1e-6);
        EXPECT_EQ(p.test.mean[size_t(c)], p.train.mean[size_t(c)]);  // val uses the training statistics
    }
    dtokd::ImageFolderOptions given = options();
    given.mean = {0.5};
    given.std = {0.25};
    expect_error<std::invalid_argument>([&] { dtokd::load_image_folder(dir.str(), given); }, {"1 means", "3 channels"});
}

TEST(ImageFolderLoader, EvaluationImagesAreTheDecodedPixelsNormalized) {
    ScratchDir dir("folder-eval");
    write_grey_folder(dir);
    dtokd::ImageFolderOptions o = options();
    o.mean = {0.25};
    o.std = {0.5};
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), o);
    dtokd::LoaderOptions lo;
    lo.batch_size = 4;
    lo.shuffle = false;
    dtokd::BatchLoader loader(p.train, lo);
    loader.start_epoch(0);
    const dtokd::Batch b = *loader.next();
    ASSERT_EQ(b.images.sizes(), (at::IntArrayRef{4, 1, 8, 8}));
    for (int64_t i = 0; i < 4; i++) {
        const std::string &path = p.train.files->paths[size_t(b.indices[i].item<int64_t>())];
        const Bytes bytes = dtokd::read_file_bytes(path);
        const dtokd::DecodedImage img = dtokd::decode_image(bytes.data(), bytes.size(), 1, path);
        const at::Tensor expected =
            (at::tensor(std::vector<double>(img.pixels.begin(), img.pixels.end())).view({1, 8, 8}) / 255.0 - 0.25) / 0.5;
        EXPECT_LT((b.images[i].to(at::kDouble) - expected).abs().max().item<double>(), 1e-5) << path;
    }
}

TEST(ImageFolderLoader, AugmentedBatchesAreTheSameForAnyWorkerCountAndChangeWithTheSeed) {
    ScratchDir dir("folder-workers");
    for (int i = 0; i < 24; i++)
        put_image(dir, "train/" + std::string(i % 3 ? "p" : "q") + "/" + std::to_string(i) + ".png", 20 + i, 16, 3,
                  uint32_t(i + 1));
    put_image(dir, "val/p/0.jpg", 12, 12, 3, 1);
    put_image(dir, "val/q/0.jpg", 12, 12, 3, 2);
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), options(12));
    auto epoch = [&](int workers, uint64_t seed) {
        dtokd::LoaderOptions lo;
        lo.batch_size = 5;
        lo.random_resized_crop = true;
        lo.flip = true;
        lo.workers = workers;
        lo.seed = seed;
        dtokd::BatchLoader loader(p.train, lo);
        EXPECT_TRUE(loader.augments());
        loader.start_epoch(1);
        std::vector<at::Tensor> out;
        while (auto b = loader.next()) out.push_back(b->images);
        return at::cat(out);
    };
    const at::Tensor one = epoch(1, 7);
    ASSERT_EQ(one.size(0), 24);
    EXPECT_TRUE(at::equal(one, epoch(3, 7)));
    EXPECT_TRUE(at::equal(one, epoch(8, 7)));
    EXPECT_FALSE(at::equal(one, epoch(2, 8)));
}

TEST(ImageFolderLoader, AFileThatFailsToDecodeStopsTheLoaderOrIsLeftOutOfItsBatch) {
    ScratchDir dir("folder-truncated");
    write_grey_folder(dir);
    // A JPEG cut in its scan data: the header read at load passes, the decode fails. (A
    // cut PNG is found at load: libpng reads its first data chunk with the header.)
    const Bytes pixels = random_bytes(64 * 64, 3);
    Bytes jpeg = dtokd::encode_jpeg(pixels.data(), 64, 64, 1);
    jpeg.resize(jpeg.size() / 2);
    dtokd_test::write_bytes(dir / "train/b_dog/cut.jpg", jpeg);
    // Computing the normalization decodes it: the load fails, naming it, before any training.
    expect_error([&] { dtokd::load_image_folder(dir.str(), options()); }, {"b_dog/cut.jpg", "corrupt JPEG"});
    dtokd::ImageFolderOptions given = options();
    given.mean = {0.5};
    given.std = {0.5};
    const dtokd::DatasetPair p = dtokd::load_image_folder(dir.str(), given);
    ASSERT_EQ(p.train.size(), 5);
    dtokd::LoaderOptions lo;
    lo.batch_size = 5;
    lo.shuffle = false;
    lo.workers = 2;
    {
        dtokd::BatchLoader loader(p.train, lo);
        loader.start_epoch(0);
        expect_error([&] { loader.next(); }, {"b_dog/cut.jpg", "corrupt JPEG"});
    }
    lo.skip_bad_images = true;
    dtokd::BatchLoader loader(p.train, lo);
    loader.start_epoch(0);
    const dtokd::Batch b = *loader.next();
    EXPECT_EQ(b.images.size(0), 4);
    EXPECT_EQ(b.labels.size(0), 4);
    ASSERT_EQ(loader.bad_images().size(), 1u);
    EXPECT_NE(loader.bad_images()[0].find("cut.jpg"), std::string::npos);
    EXPECT_FALSE(loader.next().has_value());
}

}  // namespace
