// The tuning file's JSON subset (runtime/tuning_json.h): what json_string writes reads
// back, everything else is one error with its byte offset.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "tuning_json.h"

namespace {

std::string error_of(const std::string &text) {
    try {
        dtokd::parse_flat_json_object(text);
    } catch (const std::runtime_error &e) {
        return e.what();
    }
    return "";
}

TEST(TuningJson, WrittenStringsReadBack) {
    const std::string key = "a\"b\\c\nd\te/f";
    const auto entries = dtokd::parse_flat_json_object("{" + dtokd::json_string(key) + ": \"v\"}");
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries.begin()->first, key);
}

TEST(TuningJson, ErrorsNameTheByte) {
    EXPECT_NE(error_of("{\"a\": 1}").find("value of 'a' is not a string at byte 6"), std::string::npos);
    EXPECT_NE(error_of("{\"a\": \"b\",}").find("at byte"), std::string::npos);
    EXPECT_NE(error_of("{\"a\": \"b\", \"a\": \"c\"}").find("duplicate key 'a'"), std::string::npos);
}

// Fuzz regression (fuzz_tuning, tests/data/fuzz-regressions/tuning/nul-escape.json): a
// backslash before a NUL byte put the raw NUL into the message, so the message (printed
// as a C string in the tuning warning) ended at "unsupported escape '\" without saying
// where or what was expected. The byte is now shown as \x00.
TEST(TuningJson, FuzzRegressionNulAfterBackslashIsShownInTheMessage) {
    const std::string path = std::string(DTOKD_SOURCE_DIR) + "/tests/data/fuzz-regressions/tuning/nul-escape.json";
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_NE(text.find(std::string("\\\0", 2)), std::string::npos) << "the reproducer lost its NUL";
    const std::string what = error_of(text);
    EXPECT_EQ(std::strlen(what.c_str()), what.size()) << "a NUL byte in the message";
    EXPECT_NE(what.find("unsupported escape '\\\\x00' at byte"), std::string::npos) << what;
    EXPECT_NE(what.find("expected a flat JSON object of strings"), std::string::npos) << what;
}

}  // namespace
