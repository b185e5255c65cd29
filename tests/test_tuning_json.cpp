// The tuning file's JSON (pipelines/tuning_json.h, nlohmann-json): what tuning_json_text
// writes reads back; anything but a flat object of strings is one error saying why.
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
        dtokd::parse_tuning_json(text);
    } catch (const std::runtime_error &e) {
        return e.what();
    }
    return "";
}

TEST(TuningJson, WrittenStringsReadBack) {
    const std::map<std::string, std::string> entries = {{"a\"b\\c\nd\te/f", "v"}, {"format", "x\x01y"}, {"z", ""}};
    const std::string text = dtokd::tuning_json_text(entries, {"format"});
    EXPECT_EQ(text.find("\"format\""), text.find('"')) << "the listed keys come first: " << text;
    EXPECT_EQ(dtokd::parse_tuning_json(text), entries);
}

TEST(TuningJson, ErrorsSayWhy) {
    EXPECT_NE(error_of("{\"a\": 1}").find("value of 'a' is not a string"), std::string::npos);
    EXPECT_NE(error_of("{\"a\": \"b\",}").find("not valid JSON"), std::string::npos);
    EXPECT_NE(error_of("{\"a\": \"b\",}").find("line 1, column 11"), std::string::npos) << error_of("{\"a\": \"b\",}");
    EXPECT_NE(error_of("{\"a\": \"b\", \"a\": \"c\"}").find("duplicate key 'a'"), std::string::npos);
    EXPECT_NE(error_of("[\"a\"]").find("not a JSON object but a array"), std::string::npos);
    EXPECT_NE(error_of("").find("not valid JSON"), std::string::npos);
}

// Fuzz regression (fuzz_tuning, tests/data/fuzz-regressions/tuning/nul-escape.json): a
// backslash before a NUL byte once put the raw NUL into the message, cutting it short
// where the warning prints it as a C string. The message names the place and shows the
// byte as text.
TEST(TuningJson, FuzzRegressionNulAfterBackslashIsShownInTheMessage) {
    const std::string path = std::string(DTOKD_SOURCE_DIR) + "/tests/data/fuzz-regressions/tuning/nul-escape.json";
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_NE(text.find(std::string("\\\0", 2)), std::string::npos) << "the reproducer lost its NUL";
    const std::string what = error_of(text);
    EXPECT_EQ(std::strlen(what.c_str()), what.size()) << "a NUL byte in the message";
    EXPECT_NE(what.find("<U+0000>"), std::string::npos) << what;
    EXPECT_NE(what.find("line 1"), std::string::npos) << what;
}

// Fuzz regression (fuzz_tuning, tests/data/fuzz-regressions/tuning/number-overflow.json):
// "7E0807E0" made nlohmann throw out_of_range (a number overflow), which is not a
// parse_error and escaped the reader as an unhandled exception (abort).
TEST(TuningJson, FuzzRegressionNumberOverflowIsOneError) {
    const std::string path = std::string(DTOKD_SOURCE_DIR) + "/tests/data/fuzz-regressions/tuning/number-overflow.json";
    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_EQ(text, "7E0807E0");
    EXPECT_NE(error_of(text).find("not valid JSON"), std::string::npos) << error_of(text);
    EXPECT_NE(error_of("{\"a\": 1e999999}").find("not valid JSON"), std::string::npos);
}

}  // namespace
