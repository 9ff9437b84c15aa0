// The edge checks on untrusted input: what each accepts, what it refuses and how it says so.
#include "common/validate.h"

#include <catch2/catch.hpp>

using namespace redflag;

TEST_CASE("safe names refuse dot names, paths and hidden files", "[validate]") {
  // std::string: a temporary's c_str() in the list would dangle (ASan caught it).
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string(".."), std::string(".hidden"),
        std::string("a/b"), std::string("-x"), std::string("A"), std::string(65, 'a')}) {
    INFO(bad);
    CHECK(ValidateSafeName("name", bad, 64).code() == absl::StatusCode::kInvalidArgument);
  }
  for (const char* good : {"a", "pkg-1.2_x", "0day"})
    CHECK(ValidateSafeName("name", good, 64).ok());
  CHECK(ValidateSafeName("platform", "Linux-x86_64", 64, /*allow_upper=*/true).ok());
}

TEST_CASE("text refuses control characters and NUL, and names the field", "[validate]") {
  CHECK(ValidateText("label", "plain text é", 64).ok());
  absl::Status nul = ValidateText("label", std::string("a\0b", 3), 64);
  CHECK(nul.message() == "label contains control characters");
  CHECK(ValidateText("label", "", 64, /*allow_empty=*/false).message() == "label is required");
  CHECK(ValidateText("label", std::string(65, 'a'), 64).message() ==
        "label is longer than 64 bytes (65)");
}

TEST_CASE("UUIDs are checked in their canonical text form", "[validate]") {
  CHECK(ValidateUuid("id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427").ok());
  CHECK(ValidateUuid("id", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427").ok());
  for (const char* bad :
       {"", "1b4e28ba2fa111d2883f0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca42g",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca4270"}) {
    CHECK(ValidateUuid("id", bad).message() == "id must be a UUID");
  }
}

TEST_CASE("text is cut on a UTF-8 boundary and made storable", "[validate]") {
  CHECK(TruncateUtf8("abc", 5) == "abc");
  CHECK(TruncateUtf8("ab\xc3\xa9", 3) == "ab");  // not half of é
  CHECK(TruncateUtf8("ab\xc3\xa9", 4) == "ab\xc3\xa9");
  CHECK(TruncateUtf8("\xf0\x9f\x94\x92x", 3).empty());  // a 4-byte sequence, whole or not at all
  CHECK(StorableText(std::string("a\0b\n", 4), 100) == "a\\x00b\\x0a");
  CHECK(StorableText(std::string(10, '\n'), 9) == "\\x0a\\x0a");
}
