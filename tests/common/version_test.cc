#include "common/version.h"

#include <catch2/catch.hpp>

using redflag::Version;

namespace {
int Cmp(const char* a, const char* b) { return Version::Parse(a)->Compare(*Version::Parse(b)); }
}  // namespace

TEST_CASE("versions compare numerically, not as text", "[version]") {
  CHECK(Cmp("0.1.22", "0.1.3") > 0);
  CHECK(Cmp("1.10.0", "1.9.9") > 0);
  CHECK(Cmp("v2.0.0", "2.0.0") == 0);
  CHECK(Cmp("2.0.0+build.7", "2.0.0") == 0);
}

TEST_CASE("pre-releases rank below their release, by semver rules", "[version]") {
  CHECK(Cmp("1.0.0-rc.1", "1.0.0") < 0);
  CHECK(Cmp("1.0.0-alpha", "1.0.0-alpha.1") < 0);
  CHECK(Cmp("1.0.0-alpha.1", "1.0.0-alpha.beta") < 0);
  CHECK(Cmp("1.0.0-beta.2", "1.0.0-beta.11") < 0);
  CHECK(Cmp("1.0.0-rc.1", "0.9.9") > 0);
}

TEST_CASE("malformed versions get a clear error", "[version]") {
  for (const char* bad : {"", "1", "1.2", "1.2.3.4", "a.b.c", "1.2.-3", "01.2.3", "1.2.3-",
                          "1.2.3-a..b", "1.2.3-a$", "99999999999999999999.0.0"}) {
    INFO(bad);
    auto v = Version::Parse(bad);
    REQUIRE_FALSE(v.ok());
    CHECK_THAT(std::string(v.status().message()), Catch::Contains("not a semantic version"));
  }
}
