// packed_texts: the layout (4-byte little-endian length, then the bytes) written out byte by byte
// here, not by PackTexts, so that the two functions are not only checked against each other.
#include "services/discriminative/core/packed_texts.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace maas::discriminative {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

TEST_CASE("PackTexts writes each length as 4 little-endian bytes before the text") {
  const std::string long_text(0x010203, 'x');
  const std::string packed = PackTexts({"ab"sv, ""sv, "\xCE\xB1"sv, long_text});
  REQUIRE(packed.size() == 4 * 4 + 2 + 0 + 2 + long_text.size());
  CHECK(packed.substr(0, 6) ==
        "\x02\x00\x00\x00"
        "ab"sv);
  CHECK(packed.substr(6, 4) == "\x00\x00\x00\x00"sv);
  CHECK(packed.substr(10, 6) == "\x02\x00\x00\x00\xCE\xB1"sv);
  CHECK(packed.substr(16, 4) == "\x03\x02\x01\x00"sv);
  CHECK(PackTexts({}).empty());
}

TEST_CASE("UnpackTexts reads the texts in place, empty and non-UTF-8 ones included") {
  const std::string packed =
      "\x03\x00\x00\x00"
      "cat"
      "\x00\x00\x00\x00"
      "\x02\x00\x00\x00\xFF\xFE"s;
  std::vector<std::string_view> texts = {"left over"};
  REQUIRE(UnpackTexts(packed, 10, &texts).ok());
  REQUIRE(texts.size() == 3);
  CHECK(texts[0] == "cat");
  CHECK(texts[1].empty());
  CHECK(texts[2] == "\xFF\xFE"sv);
  CHECK(texts[0].data() == packed.data() + 4);  // a view, not a copy
  REQUIRE(UnpackTexts("", 10, &texts).ok());
  CHECK(texts.empty());
  const std::vector<std::string_view> many = {"one", "two", "three", "", "f\xC3\xBCnf"};
  const std::string packed_many = PackTexts(many);
  REQUIRE(UnpackTexts(packed_many, 5, &texts).ok());
  CHECK(texts == many);
}

TEST_CASE("UnpackTexts refuses a cut length, a length past the end and too many texts") {
  std::vector<std::string_view> texts;
  const absl::Status cut = UnpackTexts(
      "\x01\x00\x00\x00"
      "a"
      "\x05\x00"sv,
      10, &texts);
  CHECK(absl::IsInvalidArgument(cut));
  CHECK_THAT(std::string(cut.message()),
             Catch::Contains("text 1's length at byte 5 is cut short (2 of 4 bytes)"));
  const absl::Status over = UnpackTexts(
      "\x01\x00\x00\x00"
      "a"
      "\x05\x00\x00\x00"
      "abc"sv,
      10, &texts);
  CHECK(absl::IsInvalidArgument(over));
  CHECK_THAT(std::string(over.message()),
             Catch::Contains("text 1 at byte 5 claims 5 bytes, but 3 follow"));
  // A length near 4 GiB is refused by the comparison, not by an overflowing sum.
  const absl::Status huge = UnpackTexts(
      "\xFF\xFF\xFF\xFF"
      "abc"sv,
      10, &texts);
  CHECK_THAT(std::string(huge.message()), Catch::Contains("claims 4294967295 bytes, but 3 follow"));
  const absl::Status too_many = UnpackTexts(PackTexts({"a"sv, "b"sv, "c"sv}), 2, &texts);
  CHECK(absl::IsResourceExhausted(too_many));
  CHECK_THAT(std::string(too_many.message()), Catch::Contains("more than 2 texts"));
  CHECK_THAT(std::string(too_many.message()), Catch::Contains("--max_texts_per_request"));
  REQUIRE(UnpackTexts(PackTexts({"a"sv, "b"sv}), 2, &texts).ok());
}

}  // namespace
}  // namespace maas::discriminative
